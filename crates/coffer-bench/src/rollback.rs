//! Rollback figures: rolling a key back to a version of a large object, and
//! the same for a 1 KiB object, whose time the large one's should match
//! (a rollback references the old bytes; it never copies them).

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use coffer::{ObjectVersion, PutOptions, Store};

use crate::data::XorShift;
use crate::samples::Samples;

/// Rollbacks timed of each object.
pub const ROLLBACKS: usize = 20;
/// Size of the small object.
pub const SMALL_SIZE: usize = 1024;

const LARGE_KEY: &str = "rollback/large.bin";
const SMALL_KEY: &str = "rollback/small.bin";
const SEED: u64 = 0x5EED_0100;

/// The rollback figures.
#[derive(Debug, Clone)]
pub struct RollbackFigures {
    /// Size of the large object, bytes.
    pub size: u64,
    /// Time of the put that stored it (`Store::put` of the file).
    pub put: Duration,
    /// Each rollback of the large object's key.
    pub large: Samples,
    /// Each rollback of the small object's key.
    pub small: Samples,
}

/// Put the file at `source` (`size` bytes) as version 1 of a key and a small
/// content as version 2, the same for a 1 KiB object, then time [`ROLLBACKS`]
/// rollbacks of each key to its version 1, alternating between the two.
pub async fn run(store: &Store, source: &Path, size: u64) -> Result<RollbackFigures> {
    eprintln!("versions: rollback: putting the {} MiB object", size >> 20);
    let file = tokio::fs::File::open(source)
        .await
        .with_context(|| format!("cannot open {}", source.display()))?;
    let start = Instant::now();
    let large_v1 = store
        .put(LARGE_KEY, file, PutOptions::default())
        .await
        .with_context(|| format!("put {LARGE_KEY} failed"))?;
    let put = start.elapsed();
    if large_v1.size != size {
        bail!("put {LARGE_KEY} stored {} bytes of {size}", large_v1.size);
    }
    put_small(store, LARGE_KEY, SEED + 1).await?;
    let small_v1 = put_small(store, SMALL_KEY, SEED + 2).await?;
    put_small(store, SMALL_KEY, SEED + 3).await?;

    eprintln!("versions: rollback: {ROLLBACKS} rollbacks of each key");
    let (mut large, mut small) = (Samples::default(), Samples::default());
    for _ in 0..ROLLBACKS {
        large.push(timed_rollback(store, &large_v1).await?);
        small.push(timed_rollback(store, &small_v1).await?);
    }
    Ok(RollbackFigures {
        size,
        put,
        large,
        small,
    })
}

async fn put_small(store: &Store, key: &str, seed: u64) -> Result<ObjectVersion> {
    store
        .put_bytes(key, XorShift::new(seed).bytes(SMALL_SIZE), PutOptions::default())
        .await
        .with_context(|| format!("put {key} failed"))
}

/// Roll `target`'s key back to it; the new version must carry its content.
async fn timed_rollback(store: &Store, target: &ObjectVersion) -> Result<Duration> {
    let key = target.key.as_str();
    let start = Instant::now();
    let made = store
        .rollback(key, &target.version_id, Some("bench"))
        .await
        .with_context(|| format!("rollback of {key} to {} failed", target.version_id))?;
    let elapsed = start.elapsed();
    if made.sha256 != target.sha256 || made.size != target.size || made.version_id == target.version_id {
        bail!("rollback of {key} made {made:?}, not a new version with the content of {target:?}");
    }
    Ok(elapsed)
}
