//! The small-put figures: many 4 KiB durable puts from one process, then from four.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use coffer::{Config, PutOptions, Store};
use futures::{StreamExt, TryStreamExt};
use tokio::runtime::Runtime;

use crate::data::XorShift;
use crate::limit;

/// The hidden first argument that runs one of the four put workers.
pub const WORKER_SUBCOMMAND: &str = "__put-worker";

/// Size of each small object.
pub const OBJECT_SIZE: usize = 4096;
/// Puts in flight per process.
pub const IN_FLIGHT: usize = 64;
/// Processes sharing one store in the multi-process run.
pub const PROCESSES: usize = 4;

/// How long `count` puts may take before the run is taken for hung (at least 10 puts/s).
pub(crate) fn time_limit(count: usize) -> Duration {
    limit::for_work(count as u64, Duration::from_millis(100))
}

/// The small-put figures.
#[derive(Debug, Clone)]
pub struct SmallFigures {
    /// Objects put in each run.
    pub count: usize,
    /// Time of the puts from one process (store already open).
    pub one_process: Duration,
    /// Wall time of the four worker processes, start to last exit.
    pub four_processes: Duration,
}

/// Run both small-put figures with `count` objects each, in `work`.
pub fn run(runtime: &Runtime, work: &Path, count: usize) -> Result<SmallFigures> {
    eprintln!("small puts: {count} from one process");
    let one_process = runtime.block_on(one_process(&work.join("small1"), count))?;
    eprintln!("small puts: {count} from {PROCESSES} processes");
    let four_processes = several_processes(runtime, &work.join("small4"), count)?;
    Ok(SmallFigures {
        count,
        one_process,
        four_processes,
    })
}

async fn one_process(data_dir: &Path, count: usize) -> Result<Duration> {
    let store = open(data_dir).await?;
    let start = Instant::now();
    limit::within(time_limit(count), "the puts", put_many(&store, 0, count)).await?;
    let elapsed = start.elapsed();
    verify(&store, count).await?;
    Ok(elapsed)
}

/// Time [`PROCESSES`] worker processes putting `total` objects into one store.
pub(crate) fn several_processes(runtime: &Runtime, data_dir: &Path, total: usize) -> Result<Duration> {
    // Create the store first, so the workers race on puts, not on creating it.
    runtime.block_on(open(data_dir))?;
    let start = Instant::now();
    let mut workers = Vec::with_capacity(PROCESSES);
    for index in 0..PROCESSES {
        match spawn_worker(data_dir, index, share(total, index)) {
            Ok(child) => workers.push(child),
            Err(e) => {
                stop(workers);
                return Err(e);
            }
        }
    }
    let mut failures = Vec::new();
    for (index, mut child) in workers.into_iter().enumerate() {
        let status = child
            .wait()
            .with_context(|| format!("cannot wait for put worker {index}"))?;
        if !status.success() {
            failures.push(format!("worker {index}: {status}"));
        }
    }
    let elapsed = start.elapsed();
    if !failures.is_empty() {
        bail!("put workers failed: {}", failures.join(", "));
    }
    runtime.block_on(async { verify(&open(data_dir).await?, total).await })?;
    Ok(elapsed)
}

/// How many of `total` objects worker `index` puts (the shares add up to `total`).
fn share(total: usize, index: usize) -> usize {
    total / PROCESSES + usize::from(index < total % PROCESSES)
}

fn spawn_worker(data_dir: &Path, index: usize, count: usize) -> Result<Child> {
    let exe = std::env::current_exe().context("cannot locate the bench executable")?;
    Command::new(exe)
        .arg(WORKER_SUBCOMMAND)
        .arg(data_dir)
        .arg(index.to_string())
        .arg(count.to_string())
        .spawn()
        .with_context(|| format!("cannot start put worker {index}"))
}

/// Kill and reap workers already started when a later one could not be.
fn stop(workers: Vec<Child>) {
    for mut child in workers {
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// The `__put-worker DATA_DIR INDEX COUNT` side: put COUNT objects, exit non-zero on any error.
pub fn run_worker_subcommand(args: &[OsString]) -> Result<()> {
    let [data_dir, index, count] = args else {
        bail!("usage: {WORKER_SUBCOMMAND} DATA_DIR INDEX COUNT");
    };
    let number = |arg: &OsString| {
        arg.to_str()
            .and_then(|s| s.parse::<usize>().ok())
            .context("not a number")
    };
    let (index, count) = (number(index)?, number(count)?);
    let data_dir = PathBuf::from(data_dir);
    let runtime = Runtime::new().context("cannot start the tokio runtime")?;
    runtime.block_on(async {
        let store = open(&data_dir).await?;
        put_many(&store, index, count).await
    })
}

async fn open(data_dir: &Path) -> Result<Store> {
    Store::open(&Config::embedded(data_dir))
        .await
        .with_context(|| format!("cannot open the store in {}", data_dir.display()))
}

/// Put `count` distinct 4 KiB objects under `small/p{process}/`, [`IN_FLIGHT`] at a time.
pub(crate) async fn put_many(store: &Store, process: usize, count: usize) -> Result<()> {
    futures::stream::iter(0..count)
        .map(Ok)
        .try_for_each_concurrent(IN_FLIGHT, |i| async move {
            let key = format!("small/p{process}/{i:06}");
            let body = XorShift::new(((process as u64) << 32) | i as u64).bytes(OBJECT_SIZE);
            store
                .put_bytes(&key, body, PutOptions::default())
                .await
                .with_context(|| format!("put {key} failed"))?;
            Ok(())
        })
        .await
}

/// Fail unless the store holds exactly `expected` objects and is consistent.
pub(crate) async fn verify(store: &Store, expected: usize) -> Result<()> {
    let objects = store
        .info()
        .await
        .context("cannot read the store's info")?
        .stats
        .objects;
    if objects != expected as u64 {
        bail!("the store holds {objects} objects after {expected} puts");
    }
    let problems = store
        .check_consistency()
        .await
        .context("the consistency check failed to run")?;
    if !problems.is_empty() {
        bail!("the store is inconsistent after the puts:\n  {}", problems.join("\n  "));
    }
    Ok(())
}
