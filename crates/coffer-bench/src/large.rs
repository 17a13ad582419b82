//! The large-object figures: put, get and copy of one big file, against a plain durable copy.

use std::ffi::OsStr;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use coffer::{Config, CopyOptions, Store};
use tokio::runtime::Runtime;

use crate::measure::{ChildRun, measure};
use crate::{data, limit};

const KEY: &str = "big/object.bin";
const CLI_COPY_KEY: &str = "big/copy.bin";
const LIBRARY_COPY_KEY: &str = "big/copy2.bin";
const SEED: u64 = 0xC0FF_EE00;

/// The large-object figures.
#[derive(Debug, Clone)]
pub struct LargeFigures {
    /// Object size, bytes.
    pub size: u64,
    /// Plain copy + fsync, before the coffer put.
    pub plain_put: Duration,
    /// `coffer put`.
    pub coffer_put: ChildRun,
    /// Plain copy + fsync, right before the coffer get.
    pub plain_get: Duration,
    /// `coffer get`, its wall time including the fsync of the output that follows it.
    pub coffer_get: ChildRun,
    /// That fsync alone: near zero when coffer syncs the output itself.
    pub get_output_fsync: Duration,
    /// `coffer copy`, process start included.
    pub copy_cli: Duration,
    /// `Store::copy` on an open store.
    pub copy_library: Duration,
}

/// Run the large-object figures with an object of `size_mib` MiB, in `work`.
pub fn run(runtime: &Runtime, coffer: &Path, work: &Path, size_mib: u64) -> Result<LargeFigures> {
    let size = size_mib << 20;
    // At least 10 MiB/s, or the child is taken for hung.
    let transfer_limit = limit::for_work(size_mib, Duration::from_millis(100));
    let copy_limit = limit::for_work(0, Duration::ZERO);
    let source = work.join("source.bin");
    let plain = work.join("plain.bin");
    let output = work.join("out.bin");
    let data_dir = work.join("data");

    eprintln!("large object: generating {size_mib} MiB of pseudo-random bytes");
    data::write_random_file(&source, size, SEED)?;

    eprintln!("large object: put");
    let plain_put = plain_copy(&source, &plain, work)?;
    let put = [
        OsStr::new("put"),
        OsStr::new(KEY),
        OsStr::new("--file"),
        source.as_os_str(),
    ];
    let coffer_put = measure(coffer.as_os_str(), &with_data_dir(&data_dir, &put), transfer_limit)?;

    eprintln!("large object: get");
    let plain_get = plain_copy(&source, &plain, work)?;
    let get = [
        OsStr::new("get"),
        OsStr::new(KEY),
        OsStr::new("--output"),
        output.as_os_str(),
    ];
    let mut coffer_get = measure(coffer.as_os_str(), &with_data_dir(&data_dir, &get), transfer_limit)?;
    let get_output_fsync = data::fsync(&output)?;
    coffer_get.wall += get_output_fsync;
    verify_output(&source, &output)?;

    eprintln!("large object: copy");
    let copy = [OsStr::new("copy"), OsStr::new(KEY), OsStr::new(CLI_COPY_KEY)];
    let copy_cli = measure(coffer.as_os_str(), &with_data_dir(&data_dir, &copy), copy_limit)?.wall;
    let copy_library = runtime.block_on(limit::within(copy_limit, "Store::copy", library_copy(&data_dir)))?;

    for file in [&source, &output] {
        std::fs::remove_file(file).with_context(|| format!("cannot remove {}", file.display()))?;
    }
    Ok(LargeFigures {
        size,
        plain_put,
        coffer_put,
        plain_get,
        coffer_get,
        get_output_fsync,
        copy_cli,
        copy_library,
    })
}

/// `coffer --data-dir DIR` followed by `args`.
fn with_data_dir<'a>(data_dir: &'a Path, args: &[&'a OsStr]) -> Vec<&'a OsStr> {
    [OsStr::new("--data-dir"), data_dir.as_os_str()]
        .into_iter()
        .chain(args.iter().copied())
        .collect()
}

/// Time a durable plain copy: `fs::copy`, then fsync of the copy and of its
/// directory. The copy is removed afterwards (not timed).
fn plain_copy(source: &Path, destination: &Path, dir: &Path) -> Result<Duration> {
    let start = Instant::now();
    std::fs::copy(source, destination)
        .with_context(|| format!("cannot copy {} to {}", source.display(), destination.display()))?;
    data::fsync(destination)?;
    data::fsync(dir)?;
    let elapsed = start.elapsed();
    std::fs::remove_file(destination).with_context(|| format!("cannot remove {}", destination.display()))?;
    Ok(elapsed)
}

fn verify_output(source: &Path, output: &Path) -> Result<()> {
    eprintln!("large object: comparing the output of coffer get with the source");
    if !data::files_identical(source, output)? {
        bail!(
            "coffer get wrote {} but it differs from the source {}",
            output.display(),
            source.display()
        );
    }
    Ok(())
}

/// Time `Store::copy` inside this process; opening the store is not timed.
async fn library_copy(data_dir: &Path) -> Result<Duration> {
    let store = Store::open(&Config::embedded(data_dir))
        .await
        .context("cannot open the store")?;
    let start = Instant::now();
    store
        .copy(KEY, LIBRARY_COPY_KEY, CopyOptions::default())
        .await
        .context("Store::copy failed")?;
    Ok(start.elapsed())
}
