//! The limit for durable small objects stored one file each on this disk:
//! new 4 KiB files created, written and fsynced with their directory, as many
//! at a time as coffer's small-put run keeps in flight. A coffer put makes two
//! such files (the blob and the manifest), so half this rate is its ceiling.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use futures::StreamExt;

use crate::small::{IN_FLIGHT, OBJECT_SIZE};

/// Shard directories, as coffer spreads blobs over `blobs/<2 hex digits>/`.
const SHARDS: usize = 256;

/// Make `count` durable files of [`OBJECT_SIZE`] bytes under `work/disk`, [`IN_FLIGHT`] at a time.
pub async fn run(work: &Path, count: usize) -> Result<Duration> {
    eprintln!("disk: durable new-file loop");
    let root = work.join("disk");
    for shard in 0..SHARDS {
        std::fs::create_dir_all(root.join(format!("{shard:02x}"))).context("cannot create the shard directories")?;
    }
    let started = Instant::now();
    let results: Vec<Result<()>> = futures::stream::iter(0..count)
        .map(|i| {
            let path = root.join(format!("{:02x}", i % SHARDS)).join(format!("file-{i}"));
            async move {
                tokio::task::spawn_blocking(move || durable_file(&path))
                    .await
                    .context("writer thread died")?
            }
        })
        .buffer_unordered(IN_FLIGHT)
        .collect()
        .await;
    let elapsed = started.elapsed();
    results.into_iter().collect::<Result<Vec<()>>>()?;
    Ok(elapsed)
}

fn durable_file(path: &PathBuf) -> Result<()> {
    let mut file = std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(&[0x5a; OBJECT_SIZE]).context("cannot write")?;
    file.sync_all().context("cannot fsync the file")?;
    let dir = path.parent().context("a file without a directory")?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .context("cannot fsync the directory")
}
