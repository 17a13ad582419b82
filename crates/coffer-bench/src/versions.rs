//! The versions group (`--versions`, the speed targets of issue 4): rollback,
//! history, import and verify, each beside a peer measured in the same run.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use coffer::{Config, Store};
use tokio::runtime::Runtime;

use crate::history::{self, HistoryFigures};
use crate::import::{self, ImportFigures};
use crate::rollback::{self, RollbackFigures};
use crate::verify::{self, VerifyFigures};
use crate::{data, limit};

/// Seed of the large object's bytes (the other data use seeds of their own).
const SEED: u64 = 0x5EED_0004;
/// Timed pairs (coffer and peer) repeated this many times; the median is reported.
pub const REPEATS: usize = 3;
/// Pairs that copy a large object of at least [`FULL_SIZE_MIB`] are repeated only this many times.
pub const LARGE_REPEATS: usize = 2;
/// The full-size large object, MiB.
const FULL_SIZE_MIB: u64 = 1024;

/// How big the versions group's data are.
#[derive(Debug, Clone, Copy)]
pub struct Sizes {
    /// The large object, MiB.
    pub size_mib: u64,
    /// Versions of the key whose history is read.
    pub history_versions: usize,
    /// Files of [`import::TREE_FILE_SIZE`] bytes in the imported tree.
    pub import_files: usize,
}

/// Every figure of the versions group.
#[derive(Debug, Clone)]
pub struct VersionsFigures {
    /// Rollback of the large object and of a 1 KiB one.
    pub rollback: RollbackFigures,
    /// History and versions of a key with many versions.
    pub history: HistoryFigures,
    /// Import of a tree of small files.
    pub tree_import: ImportFigures,
    /// Import of a directory holding the large object.
    pub large_import: ImportFigures,
    /// Verify of the store holding the large object.
    pub verify: VerifyFigures,
    /// The one-minute load average before the group ran and after, when known
    /// (other work on the machine skews the figures).
    pub load: (Option<f64>, Option<f64>),
}

/// Run the versions group in `work`.
pub fn run(runtime: &Runtime, work: &Path, sizes: Sizes) -> Result<VersionsFigures> {
    let load_before = load_average();
    let size = sizes.size_mib << 20;
    let root = work.join("versions");
    let large_source = root.join("large-src");
    std::fs::create_dir_all(&large_source).with_context(|| format!("cannot create {}", large_source.display()))?;
    let large_file = large_source.join("object.bin");
    eprintln!("versions: generating {} MiB of pseudo-random bytes", sizes.size_mib);
    data::write_random_file(&large_file, size, SEED)?;
    data::fsync(&large_source)?;
    // Moving the large object at 10 MiB/s at least, or it is taken for hung.
    let transfer_limit = limit::for_work(sizes.size_mib, Duration::from_millis(100));

    // Rollback, then verify over the same store (it holds the large blob).
    let store_dir = root.join("rollback-store");
    let store = runtime.block_on(open(&store_dir))?;
    let rollback = runtime.block_on(limit::within(
        transfer_limit,
        "the rollback figures",
        rollback::run(&store, &large_file, size),
    ))?;
    let verify = verify::run(runtime, &store, &store_dir, transfer_limit, REPEATS)?;
    drop(store);
    remove_dir(&store_dir)?;

    let history_limit = limit::for_work(sizes.history_versions as u64, Duration::from_millis(100));
    let history = runtime.block_on(limit::within(
        history_limit,
        "the history figures",
        history::run(&root.join("history-store"), sizes.history_versions),
    ))?;
    remove_dir(&root.join("history-store"))?;

    let tree_source = root.join("tree-src");
    import::make_tree(&tree_source, sizes.import_files)?;
    let tree_limit = limit::for_work(sizes.import_files as u64, Duration::from_millis(100));
    let tree_import = import::run(runtime, &tree_source, &root, tree_limit, REPEATS)?;
    remove_dir(&tree_source)?;

    let large_repeats = if sizes.size_mib >= FULL_SIZE_MIB {
        LARGE_REPEATS
    } else {
        REPEATS
    };
    let large_import = import::run(runtime, &large_source, &root, transfer_limit, large_repeats)?;
    remove_dir(&root)?;

    Ok(VersionsFigures {
        rollback,
        history,
        tree_import,
        large_import,
        verify,
        load: (load_before, load_average()),
    })
}

/// The one-minute load average, from /proc/loadavg.
fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Open (creating) the embedded store in `data_dir`, through the library.
pub async fn open(data_dir: &Path) -> Result<Store> {
    let config = Config {
        data_dir: data_dir.to_path_buf(),
        ..Config::default()
    };
    Store::open(&config)
        .await
        .with_context(|| format!("cannot open the store in {}", data_dir.display()))
}

/// Flush every dirty page to disk (`sync`, untimed), so a timed run does not
/// pay for writes made before it.
pub fn sync_all() -> Result<()> {
    let status = Command::new("sync").status().context("cannot run sync")?;
    if !status.success() {
        bail!("sync failed ({status})");
    }
    Ok(())
}

/// Remove a directory and everything in it.
pub fn remove_dir(dir: &Path) -> Result<()> {
    std::fs::remove_dir_all(dir).with_context(|| format!("cannot remove {}", dir.display()))
}

/// Every regular file under `dir`, with its size, sorted by path.
pub fn files_under(dir: &Path) -> Result<Vec<(PathBuf, u64)>> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let entries = std::fs::read_dir(&dir).with_context(|| format!("cannot read {}", dir.display()))?;
        for entry in entries {
            let entry = entry.with_context(|| format!("cannot read {}", dir.display()))?;
            let metadata = entry
                .metadata()
                .with_context(|| format!("cannot stat {}", entry.path().display()))?;
            if metadata.is_dir() {
                pending.push(entry.path());
            } else if metadata.is_file() {
                found.push((entry.path(), metadata.len()));
            }
        }
    }
    found.sort();
    Ok(found)
}
