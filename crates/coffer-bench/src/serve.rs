//! The server group (`--serve`): `coffer serve` measured from outside, as
//! its users meet it.
//!
//! - The AWS CLI against the S3 endpoint of `coffer serve` (local disk and
//!   SQLite in the work directory) and against Garage (whose data is on the
//!   same disk, scripts/services/garage.sh): `aws s3 cp` of one large object
//!   (1 GiB) up and back, and `aws s3 cp --recursive` of 1,000 objects of
//!   1 MiB up and back; each copy checked byte for byte. Target: coffer at
//!   least as fast as Garage on each row.
//! - Small GETs of one 4 KiB object through the REST API, by `wrk` (Debian;
//!   scripts/services/clients.sh) with 2 threads and 64 connections for
//!   10 s on the same two cores as the server. Target: 20,000 requests/s or
//!   more, p99 under 10 ms.
//! - The server's peak RSS (`VmHWM` of its process) after the large object
//!   went up and came back. Target: under 128 MiB.
//!
//! The transfers run in rounds (3; `--quick`: 1), the two endpoints in
//! turn, the first of them alternating; each round copies bytes of its own
//! (both stores keep content once, so a second copy of the same bytes would
//! be cheap), the disk is synced before each copy, and each row is the
//! median of the rounds.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::data;
use crate::measure::ChildRun;
use crate::objects::{Endpoint, aws, client, garage, same_file, same_tree, write_files};

/// How much to move.
#[derive(Debug, Clone, Copy)]
pub struct Sizes {
    /// The large object, MiB.
    pub large_mib: u64,
    /// Objects of 1 MiB.
    pub files: usize,
    /// Rounds of the transfers.
    pub rounds: usize,
}

/// One endpoint's transfers.
#[derive(Debug, Clone, Copy)]
pub struct Transfers {
    pub put_large: ChildRun,
    pub get_large: ChildRun,
    pub put_files: ChildRun,
    pub get_files: ChildRun,
}

/// What wrk measured.
#[derive(Debug, Clone, Copy)]
pub struct Load {
    pub requests_per_sec: f64,
    pub p99: Duration,
}

/// The group's figures.
#[derive(Debug, Clone)]
pub struct ServeFigures {
    pub sizes: Sizes,
    pub coffer: Transfers,
    pub garage: Transfers,
    pub small_gets: Load,
    /// The server's peak resident set after the large object, MiB.
    pub server_peak_rss_mib: f64,
}

/// A running `coffer serve`; killed when dropped.
struct Server {
    child: Child,
    rest: String,
    s3: String,
}

impl Server {
    fn start(coffer: &Path, config: &Path) -> Result<Server> {
        let mut child = Command::new(coffer)
            .arg("--config")
            .arg(config)
            .args(["serve", "--listen", "127.0.0.1:0", "--s3-listen", "127.0.0.1:0"])
            // One log line per request would cost the server more than the requests.
            .env("COFFER_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context("cannot start coffer serve")?;
        let stderr = child.stderr.take().context("no stderr")?;
        let mut lines = BufReader::new(stderr).lines();
        let (mut rest, mut s3) = (None, None);
        while rest.is_none() {
            let Some(line) = lines.next().transpose()? else {
                bail!("coffer serve stopped before it listened");
            };
            if let Some(url) = line.strip_prefix("coffer: the S3 endpoint on ") {
                s3 = Some(url.to_owned());
            }
            if let Some(url) = line.strip_prefix("coffer: serving on ") {
                rest = url.split(' ').next().map(str::to_owned);
            }
        }
        // Keep draining its stderr, so it never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        Ok(Server {
            child,
            rest: rest.context("no REST address")?,
            s3: s3.context("no S3 endpoint address")?,
        })
    }

    /// The peak resident set of the process so far, MiB.
    fn peak_rss_mib(&self) -> Result<f64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))?;
        let kib: f64 = status
            .lines()
            .find_map(|line| line.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .context("no VmHWM in /proc/PID/status")?;
        Ok(kib / 1024.0)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Copy the large object and the files up to `bucket` at `endpoint` (under
/// `round/`) and back, checking what comes back; each copy starts with the
/// disk synced.
fn transfers(
    aws_bin: &Path,
    endpoint: &Endpoint<'_>,
    bucket: &str,
    round: usize,
    work: &Path,
    count: usize,
) -> Result<Transfers> {
    let tag = endpoint.region;
    let (large, files) = (work.join("large.bin"), work.join("files"));
    let back = work.join("back").join(tag);
    if back.exists() {
        crate::versions::remove_dir(&back)?;
    }
    std::fs::create_dir_all(&back)?;
    let run = |args: &[&str]| {
        crate::versions::sync_all()?;
        aws(aws_bin, endpoint, args)
    };
    let large_back = back.join("large.bin");
    let files_back = back.join("files");
    let target = |path: &str| format!("s3://{bucket}/r{round}/{path}");
    let put_large = run(&[
        "s3",
        "cp",
        data::path_str(&large)?,
        &target("large.bin"),
        "--only-show-errors",
    ])?;
    let get_large = run(&[
        "s3",
        "cp",
        &target("large.bin"),
        data::path_str(&large_back)?,
        "--only-show-errors",
    ])?;
    same_file(&large, &large_back)?;
    let put_files = run(&[
        "s3",
        "cp",
        "--recursive",
        data::path_str(&files)?,
        &target("files/"),
        "--only-show-errors",
    ])?;
    let get_files = run(&[
        "s3",
        "cp",
        "--recursive",
        &target("files/"),
        data::path_str(&files_back)?,
        "--only-show-errors",
    ])?;
    same_tree(&files, &files_back, count)?;
    Ok(Transfers {
        put_large,
        get_large,
        put_files,
        get_files,
    })
}

/// Run the group: `coffer` is a CLI built with the `server` feature.
pub fn run(coffer: &Path, work: &Path, sizes: Sizes) -> Result<ServeFigures> {
    let garage_addr = std::env::var("COFFER_TEST_GARAGE").unwrap_or_else(|_| "127.0.0.1:3900".to_owned());
    if std::net::TcpStream::connect(&garage_addr).is_err() {
        bail!("no Garage at {garage_addr}: start it with scripts/services/garage.sh");
    }
    let aws_bin = client("aws")?;
    let wrk = client("wrk")?;

    let config = work.join("coffer.toml");
    std::fs::write(
        &config,
        format!("data_dir = \"{}\"\n", work.join("coffer-data").display()),
    )?;
    let coffer_cli = |args: &[&str]| -> Result<String> {
        let output = Command::new(coffer).arg("--config").arg(&config).args(args).output()?;
        if !output.status.success() {
            bail!("coffer {args:?}: {}", String::from_utf8_lossy(&output.stderr));
        }
        Ok(String::from_utf8(output.stdout)?)
    };
    coffer_cli(&["init"])?;
    let made: serde_json::Value = serde_json::from_str(&coffer_cli(&[
        "token", "create", "--s3", "--scope", "write", "--name", "bench", "--json",
    ])?)?;
    let field = |path: &[&str]| -> Result<String> {
        let mut value = &made;
        for name in path {
            value = &value[*name];
        }
        value
            .as_str()
            .map(str::to_owned)
            .context("token create --json lacks a field")
    };
    let (access_key, secret_key, bearer) = (
        field(&["token", "access_key"])?,
        field(&["s3_secret_key"])?,
        field(&["secret"])?,
    );
    let server = Server::start(coffer, &config)?;
    let coffer_endpoint = Endpoint {
        url: &server.s3,
        keys: (&access_key, &secret_key),
        region: "us-east-1",
    };
    let run_id = std::process::id();
    let (coffer_bucket, garage_bucket) = (format!("bench-serve-{run_id}"), format!("bench-serve-aws-{run_id}"));
    let garage_url = format!("http://{garage_addr}");
    let garage_endpoint = garage(&garage_url);
    aws(
        &aws_bin,
        &coffer_endpoint,
        &["s3", "mb", &format!("s3://{coffer_bucket}")],
    )?;
    aws(
        &aws_bin,
        &garage_endpoint,
        &["s3", "mb", &format!("s3://{garage_bucket}")],
    )?;

    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for round in 0..sizes.rounds {
        eprintln!(
            "round {} of {}: writing the {} MiB object and {} objects of 1 MiB",
            round + 1,
            sizes.rounds,
            sizes.large_mib,
            sizes.files
        );
        let seed = (round * (sizes.files + 1)) as u64;
        data::write_random_file(&work.join("large.bin"), sizes.large_mib << 20, 11 + seed)?;
        write_files(&work.join("files"), sizes.files, seed)?;
        for coffer_now in [round % 2 == 0, round % 2 == 1] {
            let (name, endpoint, bucket) = match coffer_now {
                true => ("coffer serve", &coffer_endpoint, &coffer_bucket),
                false => ("Garage", &garage_endpoint, &garage_bucket),
            };
            eprintln!("aws s3 to {name}: large put/get, files put/get");
            let done = transfers(&aws_bin, endpoint, bucket, round, work, sizes.files)?;
            eprintln!(
                "  large put {:.2} s, get {:.2} s; files put {:.2} s, get {:.2} s",
                done.put_large.wall.as_secs_f64(),
                done.get_large.wall.as_secs_f64(),
                done.put_files.wall.as_secs_f64(),
                done.get_files.wall.as_secs_f64()
            );
            match coffer_now {
                true => ours.push(done),
                false => theirs.push(done),
            }
        }
    }
    let server_peak_rss_mib = server.peak_rss_mib()?;

    eprintln!("wrk: small GETs through the REST API");
    let small = work.join("small.bin");
    data::write_random_file(&small, 4096, 7)?;
    coffer_cli(&["put", "bench/small.bin", "--file", data::path_str(&small)?])?;
    let output = Command::new(&wrk)
        .args(["-t2", "-c64", "-d10s", "--latency", "-H"])
        .arg(format!("Authorization: Bearer {bearer}"))
        .arg(format!("{}/api/v1/objects/bench/small.bin", server.rest))
        .output()
        .context("cannot run wrk")?;
    let report = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() || report.contains("Non-2xx") {
        bail!("wrk failed or saw errors:\n{report}");
    }
    Ok(ServeFigures {
        sizes,
        coffer: median(&ours),
        garage: median(&theirs),
        small_gets: parse_wrk(&report)?,
        server_peak_rss_mib,
    })
}

/// Each transfer's median over the rounds.
fn median(rounds: &[Transfers]) -> Transfers {
    let of = |pick: fn(&Transfers) -> ChildRun| {
        let mut runs: Vec<ChildRun> = rounds.iter().map(pick).collect();
        runs.sort_by_key(|run| run.wall);
        runs[runs.len() / 2]
    };
    Transfers {
        put_large: of(|t| t.put_large),
        get_large: of(|t| t.get_large),
        put_files: of(|t| t.put_files),
        get_files: of(|t| t.get_files),
    }
}

/// Requests/s and the 99th percentile from wrk's `--latency` report.
fn parse_wrk(report: &str) -> Result<Load> {
    let requests_per_sec = report
        .lines()
        .find_map(|l| l.trim().strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .context("no Requests/sec in wrk's report")?;
    let p99 = report
        .lines()
        .find_map(|l| l.trim().strip_prefix("99%"))
        .map(str::trim)
        .and_then(parse_latency)
        .context("no 99% latency in wrk's report")?;
    Ok(Load { requests_per_sec, p99 })
}

/// wrk's `1.23ms`, `850.00us`, `1.02s`.
fn parse_latency(text: &str) -> Option<Duration> {
    let split = text.find(|c: char| c.is_ascii_alphabetic())?;
    let (number, unit) = text.split_at(split);
    let value: f64 = number.parse().ok()?;
    let seconds = match unit {
        "us" => value / 1e6,
        "ms" => value / 1e3,
        "s" => value,
        "m" => value * 60.0,
        _ => return None,
    };
    Some(Duration::from_secs_f64(seconds))
}

/// Print the group's figures side by side, with the targets.
pub fn print(system: &crate::system::System, figures: &ServeFigures) {
    let sizes = figures.sizes;
    println!();
    println!(
        "coffer bench, server group: the AWS CLI against coffer serve (local disk) and against Garage, on {} ({} cores); medians of {} rounds",
        system.disk, system.cores, sizes.rounds
    );
    println!("{:<34}{:>22}{:>22}{:>10}", "", "coffer serve", "Garage", "ratio");
    let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
    let large_bytes = (sizes.large_mib << 20) as f64;
    let files_bytes = (sizes.files << 20) as f64;
    let cell = |bytes: f64, run: &ChildRun| {
        format!(
            "{:.2} s {:>5.0} MB/s",
            run.wall.as_secs_f64(),
            bytes / run.wall.as_secs_f64() / 1e6
        )
    };
    let mut all_met = true;
    for (label, bytes, pick) in [
        (
            format!("put {} MiB object", sizes.large_mib),
            large_bytes,
            (|t: &Transfers| t.put_large) as fn(&Transfers) -> ChildRun,
        ),
        (
            format!("get {} MiB object", sizes.large_mib),
            large_bytes,
            |t: &Transfers| t.get_large,
        ),
        (
            format!("put {} objects of 1 MiB", sizes.files),
            files_bytes,
            |t: &Transfers| t.put_files,
        ),
        (
            format!("get {} objects of 1 MiB", sizes.files),
            files_bytes,
            |t: &Transfers| t.get_files,
        ),
    ] {
        let (ours, theirs) = (pick(&figures.coffer), pick(&figures.garage));
        let ratio = theirs.wall.as_secs_f64() / ours.wall.as_secs_f64();
        all_met &= ratio >= 1.0;
        println!(
            "{label:<34}{:>22}{:>22}{ratio:>10.2}",
            cell(bytes, &ours),
            cell(bytes, &theirs)
        );
    }
    println!(
        "speed ratio = Garage's time / coffer's (target >= 1.00 on each row): {}",
        verdict(all_met)
    );
    let load = figures.small_gets;
    println!(
        "small GETs of 4 KiB through the REST API (wrk, 64 connections, 10 s): {:.0} requests/s, p99 {:.2} ms (target >= 20000/s and p99 < 10 ms): {}",
        load.requests_per_sec,
        load.p99.as_secs_f64() * 1000.0,
        verdict(load.requests_per_sec >= 20_000.0 && load.p99 < Duration::from_millis(10))
    );
    println!(
        "server peak RSS after the {} MiB object went up and back: {:.0} MiB (target < 128 MiB): {}",
        sizes.large_mib,
        figures.server_peak_rss_mib,
        verdict(figures.server_peak_rss_mib < 128.0)
    );
}
