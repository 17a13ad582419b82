//! History figures: `Store::history` and `Store::versions` of a key with many
//! versions, against a bare SQLite read of the same rows from the catalog file.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use coffer::{PutOptions, Store};
use futures::{StreamExt, TryStreamExt};
use sqlx::Connection;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};

use crate::data::XorShift;
use crate::samples::Samples;
use crate::versions::open;

/// Calls timed of each kind.
pub const CALLS: usize = 20;
/// Puts in flight while the key's versions are made.
pub const IN_FLIGHT: usize = 64;
/// Size of each version's content.
pub const VERSION_SIZE: usize = 64;

const KEY: &str = "history/notes.bin";
const SEED: u64 = 0x5EED_0200;

/// The history figures.
#[derive(Debug, Clone)]
pub struct HistoryFigures {
    /// Versions of the key.
    pub versions: usize,
    /// Time to put them all.
    pub fill: Duration,
    /// Each `Store::history(key, None)`.
    pub history: Samples,
    /// Each `Store::versions(key)`.
    pub versions_call: Samples,
    /// Each bare `SELECT` of the key's rows from the catalog.
    pub sqlite: Samples,
}

/// Make `count` versions of one key in a store in `data_dir`, then time
/// [`CALLS`] calls of each kind, interleaved.
pub async fn run(data_dir: &Path, count: usize) -> Result<HistoryFigures> {
    eprintln!("versions: history: putting {count} versions of one key, {IN_FLIGHT} in flight");
    let store = open(data_dir).await?;
    let start = Instant::now();
    fill(&store, count).await?;
    let fill = start.elapsed();

    let mut peer = connect(&data_dir.join("catalog.db")).await?;
    eprintln!("versions: history: {CALLS} calls of each kind");
    let (mut history, mut versions_call, mut sqlite) = (Samples::default(), Samples::default(), Samples::default());
    for _ in 0..CALLS {
        let start = Instant::now();
        let entries = store.history(KEY, None).await.context("Store::history failed")?;
        history.push(start.elapsed());
        expect_count("Store::history", entries.len(), count)?;

        let start = Instant::now();
        let versions = store.versions(KEY).await.context("Store::versions failed")?;
        versions_call.push(start.elapsed());
        expect_count("Store::versions", versions.len(), count)?;

        let start = Instant::now();
        let rows = sqlx::query("SELECT * FROM versions WHERE key = ? ORDER BY version_id DESC")
            .bind(KEY)
            .fetch_all(&mut peer)
            .await
            .context("cannot read the key's rows from the catalog")?;
        sqlite.push(start.elapsed());
        expect_count("the bare SELECT", rows.len(), count)?;
    }
    peer.close().await.context("cannot close the catalog")?;
    Ok(HistoryFigures {
        versions: count,
        fill,
        history,
        versions_call,
        sqlite,
    })
}

/// Put `count` distinct small contents as versions of [`KEY`], [`IN_FLIGHT`] at a time.
async fn fill(store: &Store, count: usize) -> Result<()> {
    futures::stream::iter(0..count)
        .map(|i| async move {
            let body = XorShift::new(SEED + i as u64).bytes(VERSION_SIZE);
            store
                .put_bytes(KEY, body, PutOptions::default())
                .await
                .with_context(|| format!("put {i} of {KEY} failed"))
        })
        .buffer_unordered(IN_FLIGHT)
        .try_for_each(|_| async { Ok(()) })
        .await
}

/// A read-only connection to the catalog the store uses.
async fn connect(path: &Path) -> Result<SqliteConnection> {
    let options = SqliteConnectOptions::new().filename(path).read_only(true);
    SqliteConnection::connect_with(&options)
        .await
        .with_context(|| format!("cannot open {} read-only", path.display()))
}

fn expect_count(what: &str, found: usize, expected: usize) -> Result<()> {
    if found != expected {
        bail!("{what} returned {found} versions of {KEY}, not {expected}");
    }
    Ok(())
}
