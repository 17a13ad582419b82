//! The encryption group (`--encryption`): what client-side encryption costs,
//! each figure beside its peer in the same run.
//!
//! - **put / get of the large object** (`--size-mib`, default 1024):
//!   `coffer put` and `coffer get` as child processes into an unencrypted
//!   store and an encrypted one (a key file), alternating which goes first,
//!   five times each, medians, each after a `sync` (untimed); peak RSS of
//!   each. And `coffer get` to /dev/null (standard output), both ways: the
//!   reading, decryption and hashing without the disk's writes, which swing
//!   by a factor of three between runs on this machine. The output must match the
//!   source byte for byte. Target: encrypted/unencrypted throughput >= 0.8,
//!   peak RSS < 64 MiB.
//! - **sealing alone**: the same file (in the page cache) sealed, and
//!   opened back, the output to /dev/null, with [`coffer::crypto::seal`] /
//!   [`coffer::crypto::open`] in this process, against `age -e -r RECIPIENT`
//!   and `age -d -i IDENTITY` (the Debian package, installed by
//!   `scripts/services/clients.sh`; process start included), three times
//!   each, medians. Each side's round trip to a file is checked against the
//!   source first. Target: at least as fast.
//! - **small puts**: `--small` (default 10,000) distinct 4 KiB objects, 64
//!   in flight, through the library into an unencrypted store and an
//!   encrypted one, twice each, alternating; the better of each. Target:
//!   encrypted/unencrypted >= 0.8.

use std::ffi::OsStr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use coffer::{Config, Store};
use futures::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio::runtime::Runtime;

use crate::measure::{ChildRun, measure};
use crate::samples::Samples;
use crate::{data, limit, small};

const KEY: &str = "big/object.bin";
const SEED: u64 = 0xE5C2_0001;
/// Rounds of each timed pair: five for the large object, whose writes to
/// this machine's disk swing between runs.
const ROUNDS: usize = 3;
const LARGE_ROUNDS: usize = 5;

/// One side of a comparison: unencrypted (or the peer) and encrypted (or coffer).
#[derive(Debug, Clone, Default)]
pub struct Pair {
    /// The baseline: unencrypted coffer, or age.
    pub peer: Samples,
    /// Coffer, encrypted.
    pub coffer: Samples,
}

/// The encryption figures.
#[derive(Debug, Clone)]
pub struct EncryptionFigures {
    /// Large object size, bytes.
    pub size: u64,
    /// `coffer put`: unencrypted vs encrypted.
    pub put: Pair,
    /// `coffer get`: unencrypted vs encrypted.
    pub get: Pair,
    /// `coffer get` to standard output on /dev/null: the reading alone.
    pub read: Pair,
    /// Highest peak RSS of the encrypted puts and gets, KiB.
    pub peak_rss_kib: u64,
    /// Sealing the file: `age -e` vs coffer.
    pub seal: Pair,
    /// Opening it: `age -d` vs coffer.
    pub open: Pair,
    /// Small puts: unencrypted vs encrypted (the better of two runs each).
    pub small: (usize, Duration, Duration),
}

/// Run the encryption group in `work`.
pub fn run(
    runtime: &Runtime,
    coffer: &Path,
    work: &Path,
    size_mib: u64,
    small_count: usize,
) -> Result<EncryptionFigures> {
    let size = size_mib << 20;
    let transfer_limit = limit::for_work(size_mib, Duration::from_millis(100));
    let source = work.join("source.bin");
    eprintln!("encryption: generating {size_mib} MiB of pseudo-random bytes");
    data::write_random_file(&source, size, SEED)?;
    let key_file = work.join("k.key");
    let generated = Command::new(coffer)
        .args([OsStr::new("keys"), OsStr::new("generate"), key_file.as_os_str()])
        .output()
        .context("cannot run coffer keys generate")?;
    if !generated.status.success() {
        bail!(
            "coffer keys generate failed: {}",
            String::from_utf8_lossy(&generated.stderr)
        );
    }
    let config = work.join("encrypted.toml");
    std::fs::write(
        &config,
        format!("[encryption]\nkey_file = {:?}\n", key_file.display().to_string()),
    )?;

    let (mut put, mut get, mut read, mut peak_rss_kib) = (Pair::default(), Pair::default(), Pair::default(), 0);
    for round in 0..LARGE_ROUNDS {
        for encrypted in [round % 2 == 0, round % 2 != 0] {
            eprintln!("encryption: put and get, round {}, {}", round + 1, side(encrypted));
            let data_dir = work.join(format!("store-{round}-{encrypted}"));
            let mut args: Vec<&OsStr> = vec![OsStr::new("--data-dir"), data_dir.as_os_str()];
            if encrypted {
                args.extend([OsStr::new("--config"), config.as_os_str()]);
            }
            // Each after a sync: neither side pays for the other's writes
            // still in the page cache.
            let run = |command: &[&OsStr]| {
                crate::versions::sync_all()?;
                measure(coffer.as_os_str(), &[&args[..], command].concat(), transfer_limit)
            };
            let put_run = run(&[
                OsStr::new("put"),
                OsStr::new(KEY),
                OsStr::new("--file"),
                source.as_os_str(),
            ])?;
            let output = work.join("out.bin");
            let mut get_run = run(&[
                OsStr::new("get"),
                OsStr::new(KEY),
                OsStr::new("--output"),
                output.as_os_str(),
            ])?;
            get_run.wall += data::fsync(&output)?;
            if !data::files_identical(&source, &output)? {
                bail!("coffer get ({}) wrote something else than the source", side(encrypted));
            }
            std::fs::remove_file(&output)?;
            let read_run = run(&[OsStr::new("get"), OsStr::new(KEY)])?;
            std::fs::remove_dir_all(&data_dir)?;
            record(&mut put, encrypted, &put_run);
            record(&mut get, encrypted, &get_run);
            record(&mut read, encrypted, &read_run);
            if encrypted {
                peak_rss_kib = peak_rss_kib.max(put_run.peak_rss_kib).max(get_run.peak_rss_kib);
            }
        }
    }

    let (seal, open) = runtime.block_on(sealing(work, &source, size))?;
    let small = runtime.block_on(small_puts(work, &config, small_count))?;
    std::fs::remove_file(&source)?;
    Ok(EncryptionFigures {
        size,
        put,
        get,
        read,
        peak_rss_kib,
        seal,
        open,
        small,
    })
}

fn side(encrypted: bool) -> &'static str {
    if encrypted { "encrypted" } else { "unencrypted" }
}

fn record(pair: &mut Pair, encrypted: bool, run: &ChildRun) {
    match encrypted {
        true => pair.coffer.push(run.wall),
        false => pair.peer.push(run.wall),
    }
}

/// Seal the file and open it back, with coffer in this process and with
/// age, in turn, the outputs going to /dev/null: what is timed is the
/// cipher and the reading of a cached file, not the disk. Each tool's sealed
/// file is made once beforehand (untimed) to open from, and opened back to a
/// file and compared with the source.
async fn sealing(work: &Path, source: &Path, size: u64) -> Result<(Pair, Pair)> {
    let identity = work.join("age.key");
    run_tool("age-keygen", &[OsStr::new("-o"), identity.as_os_str()])?;
    let recipient = String::from_utf8(
        Command::new("age-keygen")
            .args([OsStr::new("-y"), identity.as_os_str()])
            .output()
            .context("cannot run age-keygen -y")?
            .stdout,
    )?;
    let recipient = OsStr::new(recipient.trim());
    let null = Path::new("/dev/null");
    let age_sealed = work.join("age.sealed");
    let coffer_sealed = work.join("coffer.sealed");
    let opened = work.join("opened.bin");
    let age_seal = |output: &Path| {
        run_tool(
            "age",
            &[
                OsStr::new("-e"),
                OsStr::new("-r"),
                recipient,
                OsStr::new("-o"),
                output.as_os_str(),
                source.as_os_str(),
            ],
        )
    };
    let age_open = |output: &Path| {
        run_tool(
            "age",
            &[
                OsStr::new("-d"),
                OsStr::new("-i"),
                identity.as_os_str(),
                OsStr::new("-o"),
                output.as_os_str(),
                age_sealed.as_os_str(),
            ],
        )
    };
    age_seal(&age_sealed)?;
    age_open(&opened)?;
    check_same(source, &opened, "age")?;
    let (key, stream) = coffer::crypto::seal(coffer::body::reader_stream(tokio::fs::File::open(source).await?))?;
    write_stream(stream, &coffer_sealed).await?;
    let body = coffer::body::reader_stream(tokio::fs::File::open(&coffer_sealed).await?);
    write_stream(coffer::crypto::open(&key, size, body)?, &opened).await?;
    check_same(source, &opened, "coffer")?;
    crate::versions::sync_all()?;
    let (mut seal, mut open) = (Pair::default(), Pair::default());
    for round in 0..ROUNDS {
        eprintln!("encryption: sealing alone, round {}", round + 1);
        let start = Instant::now();
        age_seal(null)?;
        seal.peer.push(start.elapsed());
        let start = Instant::now();
        age_open(null)?;
        open.peer.push(start.elapsed());
        let start = Instant::now();
        let (_, stream) = coffer::crypto::seal(coffer::body::reader_stream(tokio::fs::File::open(source).await?))?;
        write_stream(stream, null).await?;
        seal.coffer.push(start.elapsed());
        let start = Instant::now();
        let body = coffer::body::reader_stream(tokio::fs::File::open(&coffer_sealed).await?);
        write_stream(coffer::crypto::open(&key, size, body)?, null).await?;
        open.coffer.push(start.elapsed());
    }
    for file in [&age_sealed, &coffer_sealed, &opened] {
        std::fs::remove_file(file)?;
    }
    Ok((seal, open))
}

fn run_tool(program: &str, args: &[&OsStr]) -> Result<()> {
    let status = Command::new(program)
        .args(args)
        .status()
        .with_context(|| format!("cannot run {program} (scripts/services/clients.sh installs age)"))?;
    if !status.success() {
        bail!("{program} failed: {status}");
    }
    Ok(())
}

async fn write_stream(mut stream: coffer::body::ByteStream, path: &Path) -> Result<()> {
    let mut file = tokio::io::BufWriter::with_capacity(1 << 20, tokio::fs::File::create(path).await?);
    while let Some(chunk) = stream.next().await {
        file.write_all(&chunk?).await?;
    }
    file.flush().await?;
    Ok(())
}

fn check_same(source: &Path, opened: &Path, tool: &str) -> Result<()> {
    if !data::files_identical(source, opened)? {
        bail!("{tool} opened something else than the source");
    }
    Ok(())
}

/// The small puts, unencrypted and encrypted, twice each, alternating.
async fn small_puts(work: &Path, config: &Path, count: usize) -> Result<(usize, Duration, Duration)> {
    let (mut plain, mut sealed) = (Duration::MAX, Duration::MAX);
    for round in 0..2 {
        for encrypted in [round == 0, round != 0] {
            eprintln!(
                "encryption: {count} small puts, round {}, {}",
                round + 1,
                side(encrypted)
            );
            let data_dir = work.join(format!("small-{round}-{encrypted}"));
            let mut store_config = match encrypted {
                true => Config::from_file(config)?,
                false => Config::default(),
            };
            store_config.data_dir.clone_from(&data_dir);
            let store = Store::open(&store_config)
                .await
                .context("cannot open the small-put store")?;
            let start = Instant::now();
            limit::within(small::time_limit(count), "the puts", small::put_many(&store, 0, count)).await?;
            let elapsed = start.elapsed();
            small::verify(&store, count).await?;
            let best = if encrypted { &mut sealed } else { &mut plain };
            *best = (*best).min(elapsed);
            drop(store);
            std::fs::remove_dir_all(&data_dir)?;
        }
    }
    Ok((count, plain, sealed))
}

/// Print the figures as a table.
pub fn print(system: &crate::system::System, figures: &EncryptionFigures) {
    let mib = figures.size as f64 / f64::from(1 << 20);
    let rate = |d: Duration| figures.size as f64 / d.as_secs_f64() / 1e6;
    println!();
    println!(
        "coffer bench, encryption group ({mib:.0} MiB object, work dir on {}, {} cores); medians of {LARGE_ROUNDS} (large object), {ROUNDS} (sealing)",
        system.disk, system.cores
    );
    println!(
        "{:<36}{:>20}{:>20}{:>10}{:>10}",
        "", "peer", "coffer", "ratio", "target"
    );
    let row = |label: &str, peer_name: &str, pair: &Pair, target: &str| {
        let (p, c) = (pair.peer.median(), pair.coffer.median());
        println!(
            "{label:<36}{:>20}{:>20}{:>10.2}{:>10}",
            format!("{peer_name} {:.0} MB/s", rate(p)),
            format!("{:.0} MB/s", rate(c)),
            p.as_secs_f64() / c.as_secs_f64(),
            target
        );
    };
    row("put, encrypted vs unencrypted", "plain", &figures.put, ">= 0.80");
    row("get, encrypted vs unencrypted", "plain", &figures.get, ">= 0.80");
    row("  get to /dev/null (reading alone)", "plain", &figures.read, "");
    row("sealing alone vs age -e", "age", &figures.seal, ">= 1.00");
    row("opening alone vs age -d", "age", &figures.open, ">= 1.00");
    let (count, plain, sealed) = figures.small;
    let per_second = |d: Duration| count as f64 / d.as_secs_f64();
    println!(
        "{:<36}{:>20}{:>20}{:>10.2}{:>10}",
        format!("{count} small puts, 4 KiB"),
        format!("plain {:.0}/s", per_second(plain)),
        format!("{:.0}/s", per_second(sealed)),
        plain.as_secs_f64() / sealed.as_secs_f64(),
        ">= 0.80"
    );
    println!(
        "{:<36}{:>40}{:>20}",
        "peak RSS, encrypted put/get",
        format!("{:.1} MiB", figures.peak_rss_kib as f64 / 1024.0),
        "< 64 MiB"
    );
}
