//! The limit for durable small writes on this disk: a bare SQLite commit loop
//! with the durability settings coffer's catalog uses.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqliteSynchronous};
use sqlx::{Connection, Executor};

/// Rows per transaction in the batched loop.
pub const BATCH: usize = 64;
/// The batched loop commits this many times fewer transactions than the single-row one.
const BATCHED_TRANSACTIONS_DIVISOR: usize = 8;

/// The bare-SQLite figures.
#[derive(Debug, Clone)]
pub struct SqliteFigures {
    /// Single-row transactions committed.
    pub commits: usize,
    /// Their total time.
    pub single: Duration,
    /// Rows inserted by the batched loop.
    pub batched_rows: usize,
    /// Its total time.
    pub batched: Duration,
}

/// Run `commits` single-row transactions, then `commits / 8` transactions of [`BATCH`] rows.
pub async fn run(work: &Path, commits: usize) -> Result<SqliteFigures> {
    eprintln!("sqlite: bare commit loop");
    let mut conn = connect(&work.join("bare.db")).await?;
    conn.execute("CREATE TABLE rows (id INTEGER PRIMARY KEY, body TEXT NOT NULL)")
        .await
        .context("cannot create the table")?;
    let single = insert_loop(&mut conn, commits, 1).await?;
    let batched_transactions = (commits / BATCHED_TRANSACTIONS_DIVISOR).max(1);
    let batched = insert_loop(&mut conn, batched_transactions, BATCH).await?;
    conn.close().await.context("cannot close the database")?;
    Ok(SqliteFigures {
        commits,
        single,
        batched_rows: batched_transactions * BATCH,
        batched,
    })
}

async fn connect(path: &Path) -> Result<SqliteConnection> {
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full);
    SqliteConnection::connect_with(&options)
        .await
        .with_context(|| format!("cannot open {}", path.display()))
}

/// Commit `transactions` transactions of `rows_per_transaction` 100-byte rows each, one after another.
async fn insert_loop(
    conn: &mut SqliteConnection,
    transactions: usize,
    rows_per_transaction: usize,
) -> Result<Duration> {
    let body = "x".repeat(100);
    let start = Instant::now();
    for _ in 0..transactions {
        let mut tx = conn.begin().await.context("cannot begin a transaction")?;
        for _ in 0..rows_per_transaction {
            sqlx::query("INSERT INTO rows (body) VALUES (?)")
                .bind(&body)
                .execute(&mut *tx)
                .await
                .context("insert failed")?;
        }
        tx.commit().await.context("commit failed")?;
    }
    Ok(start.elapsed())
}
