//! The hot store group: durable 4 KiB puts with the hot store on and off,
//! each beside the disk's durable new-file loop in the same run; from four
//! processes; on PostgreSQL; the flusher's drain rate; and the backlog a
//! sustained load leaves while the flusher runs beside it.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use coffer::hot::{FLUSH_INTERVAL, HotConfig};
use coffer::testkit::TestDatabase;
use coffer::{Config, Store};
use futures::StreamExt;
use tokio::runtime::Runtime;

use crate::report::{per_sec, verdict};
use crate::small::{self, IN_FLIGHT, OBJECT_SIZE};
use crate::{data::XorShift, disk_limit, limit};

/// The hot store group's figures.
#[derive(Debug)]
pub struct HotFigures {
    /// Objects put in each run.
    pub count: usize,
    /// The disk's durable new-file loop, before the hot run and before the cold one.
    pub disk: (Duration, Duration),
    /// One process, the hot store on (the default).
    pub hot: Duration,
    /// One process, the hot store off.
    pub cold: Duration,
    /// Four processes, the hot store on.
    pub four: Duration,
    /// One process on a PostgreSQL catalog, if a server answered.
    pub postgres: Option<Duration>,
    /// `flush_hot` of the one-process run's backlog.
    pub drain: Duration,
    /// The sustained load: its length, puts made, and the backlog at its end and at most.
    pub sustained: Sustained,
    /// This process's peak resident set, KiB, and at the end its part that
    /// is not file pages (the catalog maps its file: SQLite's `mmap_size`).
    pub peak_rss_kib: u64,
    pub anonymous_rss_kib: u64,
}

/// What a sustained load with the flusher beside it left.
#[derive(Debug, Default)]
pub struct Sustained {
    pub length: Duration,
    pub puts: usize,
    pub backlog_at_end: u64,
    pub largest_backlog: u64,
}

/// Run the group with `count` objects per run and a sustained load of `seconds`.
pub fn run(runtime: &Runtime, work: &Path, count: usize, seconds: u64) -> Result<HotFigures> {
    let disk_before_hot = runtime.block_on(disk_limit::run(&work.join("disk-1"), count))?;
    eprintln!("hot: {count} puts from one process, the hot store on");
    let (hot, drain) = runtime.block_on(hot_then_flush(&work.join("hot"), count))?;
    let disk_before_cold = runtime.block_on(disk_limit::run(&work.join("disk-2"), count))?;
    eprintln!("hot: {count} puts from one process, the hot store off");
    let cold = runtime.block_on(one_process(&config(&work.join("cold"), HotConfig::off()), count))?;
    eprintln!("hot: {count} puts from {} processes", small::PROCESSES);
    let four = small::several_processes(runtime, &work.join("four"), count)?;
    let postgres = runtime.block_on(on_postgres(&work.join("pg"), count))?;
    eprintln!("hot: a sustained load of {seconds} s with the flusher running");
    let sustained = runtime.block_on(sustained(&work.join("sustained"), Duration::from_secs(seconds)))?;
    Ok(HotFigures {
        count,
        disk: (disk_before_hot, disk_before_cold),
        hot,
        cold,
        four,
        postgres,
        drain,
        sustained,
        peak_rss_kib: status_kib("VmHWM:"),
        anonymous_rss_kib: status_kib("RssAnon:"),
    })
}

fn config(data_dir: &Path, hot: HotConfig) -> Config {
    Config {
        hot,
        ..Config::embedded(data_dir)
    }
}

async fn open(config: &Config) -> Result<Store> {
    Store::open(config).await.context("cannot open the store")
}

/// Time `count` puts from one process (the store already open), then check them.
async fn one_process(config: &Config, count: usize) -> Result<Duration> {
    let store = open(config).await?;
    let start = Instant::now();
    limit::within(small::time_limit(count), "the puts", small::put_many(&store, 0, count)).await?;
    let elapsed = start.elapsed();
    small::verify(&store, count).await?;
    Ok(elapsed)
}

/// Time `count` hot puts, then the flush of all of them (checked after each).
async fn hot_then_flush(data_dir: &Path, count: usize) -> Result<(Duration, Duration)> {
    let config = config(data_dir, HotConfig::default());
    let puts = one_process(&config, count).await?;
    let store = open(&config).await?;
    let start = Instant::now();
    let flushed = store.flush_hot().await.context("the flush failed")?;
    let drain = start.elapsed();
    if flushed.versions != count as u64 || flushed.blobs != count as u64 {
        bail!("the flush wrote {flushed:?} for {count} puts");
    }
    small::verify(&store, count).await?;
    Ok((puts, drain))
}

/// The one-process run on a fresh PostgreSQL database, if a server answers.
async fn on_postgres(data_dir: &Path, count: usize) -> Result<Option<Duration>> {
    let Some(database) = TestDatabase::create().await? else {
        eprintln!("hot: no PostgreSQL answers: its row is left out");
        return Ok(None);
    };
    eprintln!("hot: {count} puts from one process on PostgreSQL");
    let config = Config {
        catalog_url: Some(database.url().to_owned()),
        ..config(data_dir, HotConfig::default())
    };
    let elapsed = one_process(&config, count).await?;
    drop(database);
    Ok(Some(elapsed))
}

/// Put for `length` with [`IN_FLIGHT`] in flight while the flusher runs as
/// a long-running process runs it; sample the backlog every second.
async fn sustained(data_dir: &Path, length: Duration) -> Result<Sustained> {
    let store = open(&config(data_dir, HotConfig::default())).await?;
    let flusher = store.spawn_hot(FLUSH_INTERVAL);
    let start = Instant::now();
    let puts = futures::stream::iter(0..)
        .take_while(|_| std::future::ready(start.elapsed() < length))
        .map(|i: usize| {
            let store = store.clone();
            async move {
                let body = XorShift::new((7 << 40) | i as u64).bytes(OBJECT_SIZE);
                store
                    .put_bytes(&format!("load/{i:08}"), body, coffer::PutOptions::default())
                    .await
            }
        })
        .buffer_unordered(IN_FLIGHT);
    let sampler = async {
        let mut largest = 0;
        while start.elapsed() < length {
            tokio::time::sleep(Duration::from_secs(1)).await;
            largest = largest.max(store.hot_status().await?.stats.pending_versions);
        }
        Ok::<u64, coffer::Error>(largest)
    };
    let (made, largest) = tokio::join!(puts.collect::<Vec<_>>(), sampler);
    let length = start.elapsed();
    let made: Vec<_> = made.into_iter().collect::<coffer::Result<Vec<_>>>()?;
    let backlog_at_end = store.hot_status().await?.stats.pending_versions;
    drop(flusher);
    Ok(Sustained {
        length,
        puts: made.len(),
        backlog_at_end,
        largest_backlog: largest?,
    })
}

/// A figure of this process's `/proc/self/status` (`VmHWM:`), KiB.
fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix(field))
                .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// Print the group's table.
pub fn print(system: &crate::system::System, f: &HotFigures) {
    let rate = |d: Duration| per_sec(f.count, d);
    println!();
    println!(
        "coffer bench, hot store group ({} durable 4 KiB puts per run, {IN_FLIGHT} in flight; work dir on {}, {} cores)",
        f.count, system.disk, system.cores
    );
    println!("{:<52}{:>16}{:>14}{:>8}{:>18}", "", "peer", "coffer", "ratio", "target");
    let vs_disk = |label: &str, disk: Duration, coffer: Duration, target: f64, floor: Option<f64>| {
        let ratio = rate(coffer) / rate(disk);
        let met = ratio >= target && floor.is_none_or(|floor| rate(coffer) >= floor);
        let target = match floor {
            Some(floor) => format!(">= {target:.1}, {floor:.0}/s"),
            None => format!(">= {target:.1}"),
        };
        println!(
            "{label:<52}{:>16}{:>14}{:>8.2}{:>18} {}",
            format!("disk {:.0}/s", rate(disk)),
            format!("{:.0}/s", rate(coffer)),
            ratio,
            target,
            verdict(met)
        );
    };
    vs_disk(
        "puts, one process, hot store on (SQLite)",
        f.disk.0,
        f.hot,
        1.0,
        Some(5000.0),
    );
    vs_disk("puts, one process, hot store off", f.disk.1, f.cold, 0.4, None);
    let four_met = rate(f.four) >= rate(f.hot);
    println!(
        "{:<52}{:>16}{:>14}{:>8.2}{:>18} {}",
        format!("puts, {} processes, hot store on", small::PROCESSES),
        format!("1 proc {:.0}/s", rate(f.hot)),
        format!("{:.0}/s", rate(f.four)),
        rate(f.four) / rate(f.hot),
        ">= 1.0",
        verdict(four_met)
    );
    match f.postgres {
        Some(pg) => println!(
            "{:<52}{:>16}{:>14}",
            "puts, one process, hot store on PostgreSQL",
            "",
            format!("{:.0}/s", rate(pg))
        ),
        None => println!(
            "{:<52}{:>30}",
            "puts, one process, hot store on PostgreSQL", "(no server)"
        ),
    }
    let drain = rate(f.drain);
    println!(
        "{:<52}{:>16}{:>14}{:>8.2}{:>18} {}",
        "flusher drain rate vs the put rate",
        format!("puts {:.0}/s", rate(f.hot)),
        format!("{drain:.0}/s"),
        drain / rate(f.hot),
        ">= 1.0",
        verdict(drain >= rate(f.hot))
    );
    let s = &f.sustained;
    println!(
        "{:<52}{:>30}",
        format!("sustained load, {:.0} s, flusher beside it", s.length.as_secs_f64()),
        format!(
            "{:.0} puts/s; backlog {} at the end, {} at most",
            per_sec(s.puts, s.length),
            s.backlog_at_end,
            s.largest_backlog
        )
    );
    println!(
        "{:<52}{:>30}",
        "peak RSS (the catalog's mapped pages included)",
        format!("{:.0} MiB", f.peak_rss_kib as f64 / 1024.0)
    );
    println!(
        "{:<52}{:>30}",
        "  of which not file pages, at the end",
        format!("{:.0} MiB", f.anonymous_rss_kib as f64 / 1024.0)
    );
}
