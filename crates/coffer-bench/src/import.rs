//! Import figures: `Store::import_dir` of a directory, against
//! `cp -r SRC DST && sync` of the same directory on the same disk.

use std::ffi::OsStr;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use coffer::ImportOptions;
use tokio::runtime::Runtime;

use crate::data::{self, XorShift};
use crate::limit;
use crate::measure::measure;
use crate::samples::Samples;
use crate::versions::{files_under, open, remove_dir, sync_all};

/// Size of each file of the generated tree.
pub const TREE_FILE_SIZE: usize = 16 * 1024;
/// Subdirectories the tree's files are spread over.
pub const TREE_DIRS: usize = 100;
/// Files coffer stores at once.
pub const JOBS: usize = 8;

const SEED: u64 = 0x5EED_0300;
/// Threads writing the tree.
const WRITERS: usize = 8;
/// The peer, with the source and destination as `$1` and `$2`.
const PEER_SCRIPT: &str = r#"cp -r "$1" "$2" && sync"#;

/// The import figures of one directory.
#[derive(Debug, Clone)]
pub struct ImportFigures {
    /// Files in the directory.
    pub files: usize,
    /// Their bytes.
    pub bytes: u64,
    /// Each `Store::import_dir`, into a fresh store.
    pub coffer: Samples,
    /// Each `cp -r && sync`, into a fresh directory, process start included.
    pub peer: Samples,
}

/// Write `count` files of [`TREE_FILE_SIZE`] distinct pseudo-random bytes
/// under `dir`, spread over [`TREE_DIRS`] subdirectories, each fsynced, and
/// fsync the directories.
pub fn make_tree(dir: &Path, count: usize) -> Result<()> {
    eprintln!(
        "versions: import: writing {count} files of {} KiB",
        TREE_FILE_SIZE / 1024
    );
    let subdirs: Vec<PathBuf> = (0..TREE_DIRS.min(count).max(1))
        .map(|d| dir.join(format!("d{d:03}")))
        .collect();
    for subdir in &subdirs {
        std::fs::create_dir_all(subdir).with_context(|| format!("cannot create {}", subdir.display()))?;
    }
    let write = |i: usize| -> Result<()> {
        let path = subdirs[i % subdirs.len()].join(format!("f{i:06}.bin"));
        let mut file = std::fs::File::create(&path).with_context(|| format!("cannot create {}", path.display()))?;
        file.write_all(&XorShift::new(SEED + i as u64).bytes(TREE_FILE_SIZE))
            .and_then(|()| file.sync_all())
            .with_context(|| format!("cannot write {}", path.display()))
    };
    std::thread::scope(|scope| {
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| scope.spawn(move || (w..count).step_by(WRITERS).try_for_each(write)))
            .collect();
        writers
            .into_iter()
            .try_for_each(|w| w.join().map_err(|_| anyhow!("a tree writer panicked"))?)
    })?;
    for subdir in subdirs.iter().chain([&dir.to_path_buf()]) {
        data::fsync(subdir)?;
    }
    Ok(())
}

/// Import `source` into a fresh store and copy it with `cp -r && sync` into a
/// fresh directory, both under `scratch`, `repeats` times each, alternating
/// which goes first; each must take less than `limit`.
pub fn run(runtime: &Runtime, source: &Path, scratch: &Path, limit: Duration, repeats: usize) -> Result<ImportFigures> {
    let files = files_under(source)?;
    let bytes: u64 = files.iter().map(|(_, size)| size).sum();
    let count = files.len();
    let (mut coffer, mut peer) = (Samples::default(), Samples::default());
    for repeat in 0..repeats {
        eprintln!(
            "versions: import of {count} file{} ({} MiB), run {} of {repeats}",
            if count == 1 { "" } else { "s" },
            bytes >> 20,
            repeat + 1
        );
        for coffer_turn in [repeat % 2 == 0, repeat % 2 != 0] {
            if coffer_turn {
                let data_dir = scratch.join(format!("import-store-{repeat}"));
                coffer.push(coffer_import(runtime, source, &data_dir, limit, count, bytes)?);
                remove_dir(&data_dir)?;
            } else {
                let destination = scratch.join(format!("import-cp-{repeat}"));
                peer.push(peer_copy(source, &destination, limit, count, bytes)?);
                remove_dir(&destination)?;
            }
        }
    }
    Ok(ImportFigures {
        files: count,
        bytes,
        coffer,
        peer,
    })
}

/// Time `Store::import_dir` of `source` into a new store in `data_dir`
/// (opening the store is not timed); every file must be stored.
fn coffer_import(
    runtime: &Runtime,
    source: &Path,
    data_dir: &Path,
    limit: Duration,
    count: usize,
    bytes: u64,
) -> Result<Duration> {
    let store = runtime.block_on(open(data_dir))?;
    sync_all()?;
    runtime.block_on(async {
        let options = ImportOptions {
            prefix: "import/".to_owned(),
            jobs: JOBS,
            ..ImportOptions::default()
        };
        let start = Instant::now();
        let report = limit::within(limit, "Store::import_dir", async {
            store
                .import_dir(source, &options)
                .await
                .context("Store::import_dir failed")
        })
        .await?;
        let elapsed = start.elapsed();
        if !report.failed.is_empty() || !report.skipped.is_empty() {
            bail!(
                "the import failed on {:?} and skipped {:?}",
                report.failed,
                report.skipped
            );
        }
        if report.files != count as u64 || report.bytes != bytes {
            bail!(
                "the import stored {} files of {} bytes, not {count} of {bytes}",
                report.files,
                report.bytes
            );
        }
        Ok(elapsed)
    })
}

/// Time `cp -r SOURCE DESTINATION && sync`; the copy must hold every file.
fn peer_copy(source: &Path, destination: &Path, limit: Duration, count: usize, bytes: u64) -> Result<Duration> {
    sync_all()?;
    let args = [
        OsStr::new("-c"),
        OsStr::new(PEER_SCRIPT),
        OsStr::new("sh"),
        source.as_os_str(),
        destination.as_os_str(),
    ];
    let wall = measure(OsStr::new("sh"), &args, limit)?.wall;
    let copied = files_under(destination)?;
    let copied_bytes: u64 = copied.iter().map(|(_, size)| size).sum();
    if copied.len() != count || copied_bytes != bytes {
        bail!(
            "cp -r made {} files of {copied_bytes} bytes, not {count} of {bytes}",
            copied.len()
        );
    }
    Ok(wall)
}
