//! The bundles group (`--bundles`): fetching resources into one bundle,
//! beside curl fetching the same URLs, in one run.
//!
//! A web server runs in the bench process on 127.0.0.1
//! (`coffer::testkit::ResourceServer`: HTTP/1.1 with keep-alive; it shares
//! the machine's cores with the fetchers) and serves 1,000 resources of
//! 100 KiB, each a distinct HTML table (deflate shrinks them about
//! threefold, as it does real pages).
//!
//! - **peer**: `curl --parallel --parallel-max 8` fetching every URL to a
//!   file of its own in a fresh directory (one process, its start included).
//!   For reference, the same followed by `sync -f` on the directory's
//!   filesystem: the peer made durable, as coffer's bundle is.
//! - **coffer, directory layout**: `coffer bundle fetch --layout dir --jobs 8
//!   URL...` into a fresh store (each resource a durable object, the bundle
//!   completed with its manifest, audit row and event); peak RSS too.
//! - **coffer, zip layout**: the same with `--layout zip` (one zip object,
//!   each resource deflated at level 1).
//!
//! Each of the four runs three times (once with `--quick`), in turns whose
//! order rotates, each after a `sync` (untimed); medians. Every run's result
//! is checked: 1,000 files of the right size, or a completed bundle of
//! 1,000 resources. Target: each layout at least 0.8x curl's speed.
//!
//! - **memory**: one resource of `--size-mib` (default 1024; 64 with
//!   `--quick`) fetched with the zip layout into a store on Garage
//!   (`COFFER_TEST_GARAGE`, default 127.0.0.1:3900, started by
//!   `scripts/services/garage.sh`): wall time and peak RSS. Target: peak RSS
//!   < 128 MiB.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use coffer::testkit::{Resource, ResourceServer};
use tokio::runtime::Runtime;

use crate::data::{self, XorShift};
use crate::measure::{ChildRun, measure};
use crate::samples::Samples;

const RESOURCES: usize = 1_000;
const RESOURCE_BYTES: usize = 100 * 1024;
const JOBS: &str = "8";
const ACCESS_KEY: &str = coffer::testkit::services::GARAGE_ACCESS_KEY;
const SECRET_KEY: &str = coffer::testkit::services::GARAGE_SECRET_KEY;

/// The bundles figures.
#[derive(Debug, Clone, Default)]
pub struct BundleFigures {
    /// Rounds of each fetch.
    pub rounds: usize,
    /// `curl --parallel` to a directory.
    pub curl: Samples,
    /// The same, then `sync -f`.
    pub curl_synced: Samples,
    /// `coffer bundle fetch`, directory layout.
    pub directory: Samples,
    /// `coffer bundle fetch`, zip layout.
    pub zip: Samples,
    /// Highest peak RSS of the coffer fetches above, KiB.
    pub peak_rss_kib: u64,
    /// The large resource's size, MiB.
    pub large_mib: u64,
    /// The large resource fetched into a zip on Garage.
    pub large: Option<ChildRun>,
}

/// One distinct HTML table of about `RESOURCE_BYTES` bytes.
fn page(index: usize) -> Vec<u8> {
    const WORDS: [&str; 16] = [
        "permit",
        "owner",
        "parcel",
        "approved",
        "pending",
        "county",
        "street",
        "inspection",
        "residential",
        "commercial",
        "fee",
        "issued",
        "expired",
        "zoning",
        "variance",
        "district",
    ];
    let mut dice = XorShift::new(index as u64 + 1);
    let mut html = format!("<!doctype html><title>Permits, page {index}</title><table>\n");
    let mut row = 0u64;
    while html.len() < RESOURCE_BYTES - 200 {
        let mut cells = [0u8; 8];
        dice.fill(&mut cells);
        html.push_str(&format!(
            "<tr><td>{index}-{row}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
            WORDS[usize::from(cells[0] % 16)],
            WORDS[usize::from(cells[1] % 16)],
            u64::from_le_bytes(cells) % 1_000_000
        ));
        row += 1;
    }
    html.push_str("</table>\n");
    html.into_bytes()
}

/// Run the group in `work` with `coffer`, rounds as given.
pub fn run(runtime: &Runtime, coffer: &Path, work: &Path, large_mib: u64, rounds: usize) -> Result<BundleFigures> {
    let pages: Vec<Vec<u8>> = (0..RESOURCES).map(page).collect();
    let sizes: Vec<u64> = pages.iter().map(|p| p.len() as u64).collect();
    let mut resources: BTreeMap<String, Resource> = pages
        .into_iter()
        .enumerate()
        .map(|(i, page)| (format!("/r/{i:05}.html"), Resource::ok("text/html", page)))
        .collect();
    resources.insert(
        "/large.bin".to_owned(),
        Resource::generated("application/octet-stream", large_mib << 20),
    );
    let server = runtime.block_on(ResourceServer::start(resources))?;
    let urls: Vec<String> = (0..RESOURCES).map(|i| server.url(&format!("/r/{i:05}.html"))).collect();
    let curl_config = work.join("curl.conf");
    let downloads = work.join("downloads");
    let mut config = String::new();
    for (i, url) in urls.iter().enumerate() {
        config.push_str(&format!(
            "url = \"{url}\"\noutput = \"{}/{i:05}.html\"\n",
            downloads.display()
        ));
    }
    std::fs::write(&curl_config, config)?;
    let limit = Duration::from_secs(600);
    let mut figures = BundleFigures {
        rounds,
        large_mib,
        ..BundleFigures::default()
    };
    let sides = ["curl", "curl + sync", "dir", "zip"];
    for round in 0..rounds {
        for turn in 0..sides.len() {
            let side = sides[(turn + round) % sides.len()];
            eprintln!("bundles: round {} of {rounds}, {side}", round + 1);
            crate::versions::sync_all()?;
            match side {
                "curl" | "curl + sync" => {
                    std::fs::create_dir_all(&downloads)?;
                    let curl = format!(
                        "curl --parallel --parallel-max {JOBS} --silent --show-error --fail -K '{}'",
                        curl_config.display()
                    );
                    let script = match side {
                        "curl" => curl,
                        _ => format!("{curl} && sync -f '{}'", downloads.display()),
                    };
                    let run = measure(OsStr::new("sh"), &[OsStr::new("-c"), OsStr::new(&script)], limit)?;
                    check_downloads(&downloads, &sizes)?;
                    std::fs::remove_dir_all(&downloads)?;
                    match side {
                        "curl" => figures.curl.push(run.wall),
                        _ => figures.curl_synced.push(run.wall),
                    }
                }
                layout => {
                    let store = work.join(format!("store-{layout}-{round}"));
                    let data_dir = ["--data-dir", data::path_str(&store)?];
                    coffer_ok(coffer, &[&["init"][..], &data_dir].concat())?;
                    let fetch = ["bundle", "fetch", "--layout", layout, "--jobs", JOBS];
                    let mut args: Vec<&OsStr> = fetch.iter().chain(&data_dir).map(OsStr::new).collect();
                    args.extend(urls.iter().map(OsStr::new));
                    let run = measure(coffer.as_os_str(), &args, limit)?;
                    check_bundle(coffer, &data_dir, RESOURCES)?;
                    std::fs::remove_dir_all(&store)?;
                    figures.peak_rss_kib = figures.peak_rss_kib.max(run.peak_rss_kib);
                    match layout {
                        "dir" => figures.directory.push(run.wall),
                        _ => figures.zip.push(run.wall),
                    }
                }
            }
        }
    }
    figures.large = large_to_garage(coffer, work, &server.url("/large.bin"), large_mib)?;
    Ok(figures)
}

/// The large resource through the zip layout into a fresh bucket on
/// Garage; `None` (with a line saying so) when Garage does not answer.
fn large_to_garage(coffer: &Path, work: &Path, url: &str, large_mib: u64) -> Result<Option<ChildRun>> {
    let addr = std::env::var("COFFER_TEST_GARAGE").unwrap_or_else(|_| "127.0.0.1:3900".to_owned());
    if std::net::TcpStream::connect(&addr).is_err() {
        eprintln!("bundles: no Garage at {addr}, so no memory figure: start it with scripts/services/garage.sh");
        return Ok(None);
    }
    eprintln!("bundles: {large_mib} MiB resource, zip layout, to Garage");
    let config = work.join("garage.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = \"{}\"\n[backend]\nkind = \"s3\"\nbucket = \"bench-bundles-{}\"\nregion = \"garage\"\n\
             endpoint = \"http://{addr}\"\naccess_key_id = \"{ACCESS_KEY}\"\nsecret_access_key = \"{SECRET_KEY}\"\n\
             create_bucket = true\n",
            work.join("garage-data").display(),
            std::process::id()
        ),
    )?;
    let config_args = ["--config", data::path_str(&config)?];
    coffer_ok(coffer, &[&["init"][..], &config_args].concat())?;
    crate::versions::sync_all()?;
    let fetch = ["bundle", "fetch", "--layout", "zip", url];
    let args: Vec<&OsStr> = fetch.iter().chain(&config_args).map(OsStr::new).collect();
    let run = measure(
        coffer.as_os_str(),
        &args,
        crate::limit::for_work(large_mib, Duration::from_millis(500)),
    )?;
    check_bundle(coffer, &config_args, 1)?;
    Ok(Some(run))
}

fn coffer_ok(coffer: &Path, args: &[&str]) -> Result<String> {
    let out = std::process::Command::new(coffer)
        .args(args)
        .output()
        .with_context(|| format!("cannot run coffer {}", args.join(" ")))?;
    if !out.status.success() {
        bail!(
            "coffer {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The store holds one completed bundle of `resources` resources.
fn check_bundle(coffer: &Path, store_args: &[&str], resources: usize) -> Result<()> {
    let listed = coffer_ok(coffer, &[&["bundle", "list", "--json"][..], store_args].concat())?;
    let listed: serde_json::Value = serde_json::from_str(&listed)?;
    let [bundle] = listed.as_array().map(Vec::as_slice).unwrap_or_default() else {
        bail!("expected one bundle, found {listed}");
    };
    if bundle["completed_at"].is_null() || bundle["resources_count"] != resources {
        bail!("the bundle is not complete with {resources} resources: {bundle}");
    }
    Ok(())
}

/// The downloads directory holds every resource, each of its size (`sizes`, by index).
fn check_downloads(downloads: &Path, sizes: &[u64]) -> Result<()> {
    for (i, expected) in sizes.iter().enumerate() {
        let path = downloads.join(format!("{i:05}.html"));
        let size = std::fs::metadata(&path).with_context(|| format!("curl did not write {}", path.display()))?;
        if size.len() != *expected {
            bail!("curl wrote {} bytes of {}", size.len(), path.display());
        }
    }
    Ok(())
}

/// Print the group's figures side by side, with the targets.
pub fn print(system: &crate::system::System, figures: &BundleFigures) {
    let bytes = (RESOURCES * RESOURCE_BYTES) as f64;
    println!();
    println!(
        "coffer bench, bundles group: {RESOURCES} resources of {} KiB from a web server on 127.0.0.1 \
         (work dir on {}, {} cores), medians of {}",
        RESOURCE_BYTES / 1024,
        system.disk,
        system.cores,
        figures.rounds
    );
    let row = |label: &str, samples: &Samples| {
        let median = samples.median().as_secs_f64();
        println!("{label:<58}{median:>7.2} s {:>6.0} MB/s", bytes / median / 1e6);
    };
    row("curl --parallel (8 at once) to a directory", &figures.curl);
    row("  the same, then sync -f (durable)", &figures.curl_synced);
    row("coffer bundle fetch --jobs 8, directory layout", &figures.directory);
    row("coffer bundle fetch --jobs 8, zip layout", &figures.zip);
    println!(
        "coffer peak RSS in these fetches: {:.0} MiB",
        figures.peak_rss_kib as f64 / 1024.0
    );
    let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
    let curl = figures.curl.median().as_secs_f64();
    let synced = figures.curl_synced.median().as_secs_f64();
    for (layout, samples) in [("directory", &figures.directory), ("zip", &figures.zip)] {
        let ours = samples.median().as_secs_f64();
        println!(
            "{layout} layout: {:.2}x curl's speed (target >= 0.80): {}; {:.2}x curl + sync",
            curl / ours,
            verdict(curl / ours >= 0.8),
            synced / ours
        );
    }
    match &figures.large {
        Some(run) => println!(
            "{} MiB resource, zip layout, to Garage: {:.1} s ({:.0} MB/s), peak RSS {:.0} MiB (target < 128 MiB): {}",
            figures.large_mib,
            run.wall.as_secs_f64(),
            (figures.large_mib << 20) as f64 / run.wall.as_secs_f64() / 1e6,
            run.peak_rss_mib(),
            verdict(run.peak_rss_mib() < 128.0)
        ),
        None => println!("{} MiB resource to Garage: not measured (no Garage)", figures.large_mib),
    }
}
