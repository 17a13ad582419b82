//! The embedded catalog: SQLite in WAL mode through sqlx.
//!
//! Writes go through one writer task per process that commits whatever is
//! queued in a single transaction (group commit). With `synchronous = FULL`
//! every acknowledged change is on disk; batching is what makes that
//! affordable. A change checks its preconditions before it writes, so one
//! refused change does not disturb the others in its batch. Separate processes
//! serialize on SQLite's own lock.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Connection, FromRow, Row};
use tokio::sync::{mpsc, oneshot};

use super::{
    AuditEntry, AuditQuery, BlobRecord, Catalog, CatalogStats, DeletedVersion, KeyQuery, NewVersion, ObjectVersion,
    VersionContent,
};
use crate::error::{Error, ErrorKind, Result};
use crate::key::{Metadata, ObjectKey};
use crate::time::Timestamp;
use crate::version::VersionId;

/// Most changes committed in one transaction.
const MAX_BATCH: usize = 512;
/// How long a writer waits for another process's transaction before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(60);

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// A catalog in one SQLite file.
pub struct SqliteCatalog {
    path: PathBuf,
    readers: SqlitePool,
    writer: mpsc::Sender<WriteJob>,
}

enum WriteOp {
    Commit(Box<NewVersion>),
    DeleteVersion {
        key: ObjectKey,
        version_id: VersionId,
        actor: String,
    },
}

enum WriteOutcome {
    Committed(ObjectVersion),
    Deleted(DeletedVersion),
}

struct WriteJob {
    op: WriteOp,
    reply: oneshot::Sender<Result<WriteOutcome>>,
}

fn db_error(context: &str, err: sqlx::Error) -> Error {
    let busy =
        matches!(&err, sqlx::Error::Database(db) if db.message().contains("locked") || db.message().contains("busy"));
    let error = Error::new(ErrorKind::Catalog, format!("catalog: {context}: {err}")).with_source(err);
    if busy { error.retryable() } else { error }
}

fn corrupt(what: &str, err: Error) -> Error {
    Error::new(
        ErrorKind::Catalog,
        format!("catalog holds an invalid {what}: {}", err.message()),
    )
}

impl SqliteCatalog {
    /// Open (creating and migrating if needed) the catalog in the file at `path`.
    pub async fn open(path: &Path) -> Result<Self> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true);
        let mut writer = connect(&options, path).await?;
        migrate(&mut writer).await?;
        let readers = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .map_err(|e| db_error("cannot open readers", e))?;
        let (sender, receiver) = mpsc::channel(MAX_BATCH * 2);
        tokio::spawn(write_loop(writer, receiver));
        Ok(SqliteCatalog {
            path: path.to_path_buf(),
            readers,
            writer: sender,
        })
    }

    async fn write(&self, op: WriteOp) -> Result<WriteOutcome> {
        let (reply, outcome) = oneshot::channel();
        let gone = || Error::new(ErrorKind::Catalog, "catalog writer has stopped");
        self.writer.send(WriteJob { op, reply }).await.map_err(|_| gone())?;
        outcome.await.map_err(|_| gone())?
    }
}

/// Connect, retrying while another process holds the lock that switching a
/// new database to WAL needs (SQLite reports that at once, without waiting).
async fn connect(options: &SqliteConnectOptions, path: &Path) -> Result<SqliteConnection> {
    let mut attempt = 0;
    loop {
        match SqliteConnection::connect_with(options).await {
            Ok(conn) => return Ok(conn),
            Err(e) => {
                let err = db_error(&format!("cannot open {}", path.display()), e);
                if !err.is_retryable() || attempt == 20 {
                    return Err(err);
                }
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(10 * attempt)).await;
            }
        }
    }
}

/// Apply the migrations. Two processes opening a new catalog at once may race;
/// the loser sees the winner's work on its next attempt.
async fn migrate(conn: &mut SqliteConnection) -> Result<()> {
    let mut attempt = 0;
    loop {
        match MIGRATOR.run(&mut *conn).await {
            Ok(()) => return Ok(()),
            Err(_) if attempt < 5 => {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(50 * attempt)).await;
            }
            Err(e) => {
                return Err(Error::new(ErrorKind::Catalog, format!("catalog migration failed: {e}")).with_source(e));
            }
        }
    }
}

async fn write_loop(mut conn: SqliteConnection, mut receiver: mpsc::Receiver<WriteJob>) {
    while let Some(first) = receiver.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match receiver.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        commit_batch(&mut conn, batch).await;
    }
}

async fn exec(conn: &mut SqliteConnection, sql: &str) -> Result<()> {
    sqlx::query(sql)
        .execute(&mut *conn)
        .await
        .map(|_| ())
        .map_err(|e| db_error(sql, e))
}

/// Why a change did not apply.
enum Refused {
    /// Refused before writing anything (a failed precondition, a missing
    /// version): the transaction is untouched and the batch goes on.
    Clean(Error),
    /// Failed after writing part of the change: the transaction must be rolled back.
    Dirty(Error),
}

fn copy_error(err: &Error) -> Error {
    let copy = Error::new(err.kind(), err.message().to_owned());
    if err.is_retryable() { copy.retryable() } else { copy }
}

async fn apply(conn: &mut SqliteConnection, op: &WriteOp) -> Result<WriteOutcome, Refused> {
    match op {
        WriteOp::Commit(version) => apply_commit(conn, version).await.map(WriteOutcome::Committed),
        WriteOp::DeleteVersion { key, version_id, actor } => apply_delete_version(conn, key, version_id, actor)
            .await
            .map(WriteOutcome::Deleted),
    }
}

/// Run the batch in one transaction and answer each job only once it has
/// committed. Changes check everything they can before writing, so a refused
/// change leaves the transaction clean; if one fails half-way, the batch is
/// rolled back and every job is run again in a transaction of its own.
async fn commit_batch(conn: &mut SqliteConnection, batch: Vec<WriteJob>) {
    match run_batch(conn, &batch).await {
        Ok(outcomes) => {
            for (job, outcome) in batch.into_iter().zip(outcomes) {
                let _ = job.reply.send(outcome);
            }
        }
        Err(_) if batch.len() > 1 => {
            for job in batch {
                let outcome = run_batch(conn, std::slice::from_ref(&job)).await;
                let _ = job.reply.send(outcome.and_then(|mut outcomes| {
                    outcomes
                        .pop()
                        .unwrap_or_else(|| Err(Error::new(ErrorKind::Catalog, "catalog lost a change")))
                }));
            }
        }
        Err(err) => {
            for job in batch {
                let _ = job.reply.send(Err(copy_error(&err)));
            }
        }
    }
}

/// One transaction over `jobs`: the outcome of each, or the error that rolled all back.
async fn run_batch(conn: &mut SqliteConnection, jobs: &[WriteJob]) -> Result<Vec<Result<WriteOutcome>>> {
    exec(conn, "BEGIN IMMEDIATE").await?;
    let mut outcomes = Vec::with_capacity(jobs.len());
    for job in jobs {
        match apply(conn, &job.op).await {
            Ok(outcome) => outcomes.push(Ok(outcome)),
            Err(Refused::Clean(err)) => outcomes.push(Err(err)),
            Err(Refused::Dirty(err)) => {
                let _ = exec(conn, "ROLLBACK").await;
                return Err(err);
            }
        }
    }
    if let Err(err) = exec(conn, "COMMIT").await {
        let _ = exec(conn, "ROLLBACK").await;
        return Err(err);
    }
    Ok(outcomes)
}

/// The columns of a version row joined with its blob and latest pointer.
const VERSION_COLUMNS: &str = "v.key, v.version_id, v.is_delete_marker, (l.version_id IS NOT NULL) AS is_latest, \
     v.size, v.etag, v.blob_sha256, v.content_type, v.metadata, v.created_at, v.created_by, b.locator";
const VERSION_JOINS: &str = "LEFT JOIN latest l ON l.key = v.key AND l.version_id = v.version_id \
     LEFT JOIN blobs b ON b.sha256 = v.blob_sha256";

#[derive(FromRow)]
struct VersionRow {
    key: String,
    version_id: String,
    is_delete_marker: bool,
    is_latest: bool,
    size: i64,
    etag: Option<String>,
    blob_sha256: Option<String>,
    content_type: Option<String>,
    metadata: String,
    created_at: i64,
    created_by: String,
    locator: Option<String>,
}

impl TryFrom<VersionRow> for ObjectVersion {
    type Error = Error;
    fn try_from(row: VersionRow) -> Result<Self> {
        let metadata: Metadata = serde_json::from_str(&row.metadata)
            .map_err(|e| Error::new(ErrorKind::Catalog, format!("catalog holds invalid metadata JSON: {e}")))?;
        Ok(ObjectVersion {
            key: ObjectKey::new(row.key).map_err(|e| corrupt("key", e))?,
            version_id: VersionId::from_str(&row.version_id).map_err(|e| corrupt("version id", e))?,
            is_delete_marker: row.is_delete_marker,
            is_latest: row.is_latest,
            size: u64::try_from(row.size).unwrap_or(0),
            etag: row.etag,
            sha256: row.blob_sha256,
            content_type: row.content_type,
            metadata,
            created_at: Timestamp::from_micros(row.created_at),
            created_by: row.created_by,
            blob_path: row.locator,
        })
    }
}

async fn fetch_version(conn: &mut SqliteConnection, key: &str, version_id: &str) -> Result<Option<ObjectVersion>> {
    let sql = format!("SELECT {VERSION_COLUMNS} FROM versions v {VERSION_JOINS} WHERE v.key = ? AND v.version_id = ?");
    let row: Option<VersionRow> = sqlx::query_as(&sql)
        .bind(key)
        .bind(version_id)
        .fetch_optional(&mut *conn)
        .await
        .map_err(|e| db_error("reading a version", e))?;
    row.map(ObjectVersion::try_from).transpose()
}

/// The key's current version as a precondition sees it.
struct Current {
    version_id: String,
    is_delete_marker: bool,
    etag: Option<String>,
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

const INSERT_AUDIT: &str = "INSERT INTO audit (at, actor, action, key, version_id, detail) VALUES (?, ?, ?, ?, ?, ?);";

/// Record a version: one read, then one multi-statement write, so a commit
/// costs two round trips to SQLite's thread whatever it touches.
async fn apply_commit(conn: &mut SqliteConnection, new: &NewVersion) -> Result<ObjectVersion, Refused> {
    let key = new.key.as_str();
    let version_id = new.version_id.as_str();
    let blob = match &new.content {
        VersionContent::Blob(blob) => Some(blob),
        VersionContent::DeleteMarker => None,
    };
    type CurrentRow = (Option<String>, Option<bool>, Option<String>, Option<String>);
    let (current_id, current_marker, current_etag, stored_path): CurrentRow = sqlx::query_as(
        "SELECT l.version_id, l.is_delete_marker, v.etag, (SELECT locator FROM blobs WHERE sha256 = ?) \
         FROM (SELECT 1) LEFT JOIN latest l ON l.key = ? \
         LEFT JOIN versions v ON v.key = l.key AND v.version_id = l.version_id",
    )
    .bind(blob.map(|b| b.sha256.as_str()))
    .bind(key)
    .fetch_one(&mut *conn)
    .await
    .map_err(|e| Refused::Clean(db_error("reading the current version", e)))?;
    let current = current_id.map(|version_id| Current {
        version_id,
        is_delete_marker: current_marker.unwrap_or(false),
        etag: current_etag,
    });
    let live_etag = current
        .as_ref()
        .filter(|c| !c.is_delete_marker)
        .map(|c| c.etag.as_deref());
    new.precondition.check(&new.key, live_etag).map_err(Refused::Clean)?;
    let becomes_latest = current.as_ref().is_none_or(|c| version_id > c.version_id.as_str());
    let blob_path = match (blob, &stored_path) {
        (None, _) => None,
        (Some(_), Some(stored)) => Some(stored.clone()),
        (Some(blob), None) => match &blob.new_path {
            Some(path) => Some(path.clone()),
            None => {
                return Err(Refused::Clean(Error::not_found(format!(
                    "the content of {key} is no longer stored"
                ))));
            }
        },
    };

    let mut sql = String::new();
    if blob.is_some() {
        sql.push_str(if stored_path.is_some() {
            "UPDATE blobs SET refcount = refcount + 1 WHERE sha256 = ?;"
        } else {
            "INSERT INTO blobs (sha256, md5, size, locator, refcount, created_at) VALUES (?, ?, ?, ?, 1, ?);"
        });
    }
    sql.push_str(
        "INSERT INTO versions (key, version_id, is_delete_marker, blob_sha256, size, etag, content_type, \
         metadata, created_at, created_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?);",
    );
    if becomes_latest {
        sql.push_str(
            "INSERT INTO latest (key, version_id, is_delete_marker) VALUES (?, ?, ?) ON CONFLICT (key) \
             DO UPDATE SET version_id = excluded.version_id, is_delete_marker = excluded.is_delete_marker;",
        );
    }
    sql.push_str(INSERT_AUDIT);

    let metadata = serde_json::to_string(&new.metadata)
        .map_err(|e| Refused::Clean(Error::invalid_input(format!("metadata cannot be encoded: {e}"))))?;
    let (sha256, size, etag) = match blob {
        Some(b) => (Some(b.sha256.as_str()), b.size, Some(b.md5.as_str())),
        None => (None, 0, None),
    };
    let mut query = sqlx::query(&sql);
    if let Some(blob) = blob {
        query = query.bind(&blob.sha256);
        if stored_path.is_none() {
            query = query
                .bind(&blob.md5)
                .bind(to_i64(blob.size))
                .bind(&blob_path)
                .bind(new.created_at.as_micros());
        }
    }
    query = query
        .bind(key)
        .bind(version_id)
        .bind(blob.is_none())
        .bind(sha256)
        .bind(to_i64(size))
        .bind(etag)
        .bind(&new.content_type)
        .bind(metadata)
        .bind(new.created_at.as_micros())
        .bind(&new.created_by);
    if becomes_latest {
        query = query.bind(key).bind(version_id).bind(blob.is_none());
    }
    query = query
        .bind(new.created_at.as_micros())
        .bind(&new.created_by)
        .bind(new.action)
        .bind(key)
        .bind(version_id)
        .bind(new.audit_detail.to_string());
    query.execute(&mut *conn).await.map_err(|e| {
        Refused::Dirty(match &e {
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                Error::conflict(format!("version {version_id} of {key} already exists"))
            }
            _ => db_error("recording the version", e),
        })
    })?;
    Ok(ObjectVersion {
        key: new.key.clone(),
        version_id: new.version_id.clone(),
        is_delete_marker: blob.is_none(),
        is_latest: becomes_latest,
        size,
        etag: etag.map(str::to_owned),
        sha256: sha256.map(str::to_owned),
        content_type: new.content_type.clone(),
        metadata: new.metadata.clone(),
        created_at: new.created_at,
        created_by: new.created_by.clone(),
        blob_path,
    })
}

async fn apply_delete_version(
    conn: &mut SqliteConnection,
    key: &ObjectKey,
    version_id: &VersionId,
    actor: &str,
) -> Result<DeletedVersion, Refused> {
    let found = fetch_version(conn, key.as_str(), version_id.as_str())
        .await
        .map_err(Refused::Clean)?;
    let Some(version) = found else {
        return Err(Refused::Clean(Error::not_found(format!(
            "no version {version_id} of {key}"
        ))));
    };
    let successor: Option<(String, bool)> = if version.is_latest {
        sqlx::query_as(
            "SELECT version_id, is_delete_marker FROM versions WHERE key = ? AND version_id <> ? \
             ORDER BY version_id DESC LIMIT 1",
        )
        .bind(key.as_str())
        .bind(version_id.as_str())
        .fetch_optional(&mut *conn)
        .await
        .map_err(|e| Refused::Clean(db_error("finding the previous version", e)))?
    } else {
        None
    };

    let mut sql = String::new();
    match (&successor, version.is_latest) {
        (Some(_), true) => sql.push_str("UPDATE latest SET version_id = ?, is_delete_marker = ? WHERE key = ?;"),
        (None, true) => sql.push_str("DELETE FROM latest WHERE key = ?;"),
        (_, false) => {}
    }
    sql.push_str("DELETE FROM versions WHERE key = ? AND version_id = ?;");
    if version.sha256.is_some() {
        // The last reference takes the blob row with it; any other just counts down.
        sql.push_str(
            "DELETE FROM blobs WHERE sha256 = ? AND refcount = 1 RETURNING locator;\
             UPDATE blobs SET refcount = refcount - 1 WHERE sha256 = ?;",
        );
    }
    sql.push_str(INSERT_AUDIT);

    let mut query = sqlx::query(&sql);
    match (&successor, version.is_latest) {
        (Some((id, is_marker)), true) => query = query.bind(id).bind(is_marker).bind(key.as_str()),
        (None, true) => query = query.bind(key.as_str()),
        (_, false) => {}
    }
    query = query.bind(key.as_str()).bind(version_id.as_str());
    if let Some(sha256) = &version.sha256 {
        query = query.bind(sha256).bind(sha256);
    }
    let detail = serde_json::json!({
        "size": version.size, "sha256": version.sha256, "was_delete_marker": version.is_delete_marker,
    });
    query = query
        .bind(Timestamp::now().as_micros())
        .bind(actor)
        .bind("delete_version")
        .bind(key.as_str())
        .bind(version_id.as_str())
        .bind(detail.to_string());
    let released = query
        .fetch_all(&mut *conn)
        .await
        .map_err(|e| Refused::Dirty(db_error("removing the version", e)))?;
    let unreferenced_blob = released.first().map(|row| row.get::<String, _>(0));
    Ok(DeletedVersion {
        version,
        unreferenced_blob,
    })
}

impl fmt::Display for SqliteCatalog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sqlite:{}", self.path.display())
    }
}

impl fmt::Debug for SqliteCatalog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteCatalog").field("path", &self.path).finish()
    }
}

#[derive(FromRow)]
struct BlobRow {
    sha256: String,
    size: i64,
    locator: String,
    refcount: i64,
}

impl From<BlobRow> for BlobRecord {
    fn from(row: BlobRow) -> Self {
        BlobRecord {
            sha256: row.sha256,
            size: u64::try_from(row.size).unwrap_or(0),
            path: row.locator,
            refcount: u64::try_from(row.refcount).unwrap_or(0),
        }
    }
}

/// The smallest string greater than every string that starts with `prefix`,
/// or `None` if there is none (an empty prefix, or one of only U+10FFFF).
pub(crate) fn prefix_upper_bound(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let next = (u32::from(last) + 1..=0x10FFFF).find_map(char::from_u32);
        if let Some(next) = next {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

#[async_trait]
impl Catalog for SqliteCatalog {
    async fn commit_version(&self, version: NewVersion) -> Result<ObjectVersion> {
        match self.write(WriteOp::Commit(Box::new(version))).await? {
            WriteOutcome::Committed(version) => Ok(version),
            WriteOutcome::Deleted(_) => Err(Error::new(
                ErrorKind::Catalog,
                "catalog writer answered the wrong request",
            )),
        }
    }

    async fn delete_version(&self, key: &ObjectKey, version_id: &VersionId, actor: &str) -> Result<DeletedVersion> {
        let op = WriteOp::DeleteVersion {
            key: key.clone(),
            version_id: version_id.clone(),
            actor: actor.to_owned(),
        };
        match self.write(op).await? {
            WriteOutcome::Deleted(deleted) => Ok(deleted),
            WriteOutcome::Committed(_) => Err(Error::new(
                ErrorKind::Catalog,
                "catalog writer answered the wrong request",
            )),
        }
    }

    async fn version(&self, key: &ObjectKey, version_id: Option<&VersionId>) -> Result<Option<ObjectVersion>> {
        let mut conn = self.readers.acquire().await.map_err(|e| db_error("connecting", e))?;
        match version_id {
            Some(id) => fetch_version(&mut conn, key.as_str(), id.as_str()).await,
            None => {
                let sql = format!(
                    "SELECT {VERSION_COLUMNS} FROM latest l2 \
                     JOIN versions v ON v.key = l2.key AND v.version_id = l2.version_id {VERSION_JOINS} WHERE l2.key = ?"
                );
                let row: Option<VersionRow> = sqlx::query_as(&sql)
                    .bind(key.as_str())
                    .fetch_optional(&mut *conn)
                    .await
                    .map_err(|e| db_error("reading the latest version", e))?;
                row.map(ObjectVersion::try_from).transpose()
            }
        }
    }

    async fn versions(&self, key: &ObjectKey) -> Result<Vec<ObjectVersion>> {
        let sql = format!(
            "SELECT {VERSION_COLUMNS} FROM versions v {VERSION_JOINS} WHERE v.key = ? ORDER BY v.version_id DESC"
        );
        let rows: Vec<VersionRow> = sqlx::query_as(&sql)
            .bind(key.as_str())
            .fetch_all(&self.readers)
            .await
            .map_err(|e| db_error("listing versions", e))?;
        rows.into_iter().map(ObjectVersion::try_from).collect()
    }

    async fn list_latest(&self, query: &KeyQuery) -> Result<Vec<ObjectVersion>> {
        // The tightest of the lower bounds; `start_after` is the only exclusive one.
        let mut lower = query.prefix.clone();
        let mut exclusive = false;
        if let Some(at) = query.start_at.as_ref().filter(|at| at.as_str() > lower.as_str()) {
            lower = at.clone();
        }
        if let Some(after) = query
            .start_after
            .as_ref()
            .filter(|after| after.as_str() >= lower.as_str())
        {
            lower = after.clone();
            exclusive = true;
        }
        let upper = prefix_upper_bound(&query.prefix);
        let sql = format!(
            "SELECT {VERSION_COLUMNS} FROM latest l2 \
             JOIN versions v ON v.key = l2.key AND v.version_id = l2.version_id {VERSION_JOINS} \
             WHERE NOT l2.is_delete_marker AND l2.key {} ? {} ORDER BY l2.key LIMIT ?",
            if exclusive { ">" } else { ">=" },
            if upper.is_some() { "AND l2.key < ?" } else { "" },
        );
        let mut q = sqlx::query_as::<_, VersionRow>(&sql).bind(lower);
        if let Some(upper) = upper {
            q = q.bind(upper);
        }
        let rows = q
            .bind(to_i64(query.limit as u64))
            .fetch_all(&self.readers)
            .await
            .map_err(|e| db_error("listing keys", e))?;
        rows.into_iter().map(ObjectVersion::try_from).collect()
    }

    async fn blob(&self, sha256: &str) -> Result<Option<BlobRecord>> {
        let row: Option<BlobRow> = sqlx::query_as("SELECT sha256, size, locator, refcount FROM blobs WHERE sha256 = ?")
            .bind(sha256)
            .fetch_optional(&self.readers)
            .await
            .map_err(|e| db_error("reading a blob", e))?;
        Ok(row.map(BlobRecord::from))
    }

    async fn blobs(&self) -> Result<Vec<BlobRecord>> {
        let rows: Vec<BlobRow> = sqlx::query_as("SELECT sha256, size, locator, refcount FROM blobs ORDER BY sha256")
            .fetch_all(&self.readers)
            .await
            .map_err(|e| db_error("listing blobs", e))?;
        Ok(rows.into_iter().map(BlobRecord::from).collect())
    }

    async fn stats(&self) -> Result<CatalogStats> {
        let row = sqlx::query(
            "SELECT \
               (SELECT COUNT(*) FROM latest WHERE NOT is_delete_marker), \
               (SELECT COALESCE(SUM(v.size), 0) FROM latest l JOIN versions v \
                  ON v.key = l.key AND v.version_id = l.version_id WHERE NOT l.is_delete_marker), \
               (SELECT COUNT(*) FROM versions), \
               (SELECT COALESCE(SUM(size), 0) FROM versions), \
               (SELECT COUNT(*) FROM versions WHERE is_delete_marker), \
               (SELECT COUNT(*) FROM blobs), \
               (SELECT COALESCE(SUM(size), 0) FROM blobs)",
        )
        .fetch_one(&self.readers)
        .await
        .map_err(|e| db_error("computing totals", e))?;
        let n = |i: usize| u64::try_from(row.get::<i64, _>(i)).unwrap_or(0);
        Ok(CatalogStats {
            objects: n(0),
            object_bytes: n(1),
            versions: n(2),
            version_bytes: n(3),
            delete_markers: n(4),
            blobs: n(5),
            blob_bytes: n(6),
        })
    }

    async fn audit(&self, query: &AuditQuery) -> Result<Vec<AuditEntry>> {
        let sql = format!(
            "SELECT id, at, actor, action, key, version_id, detail FROM audit {} ORDER BY id DESC LIMIT ?",
            if query.key.is_some() { "WHERE key = ?" } else { "" }
        );
        let mut q = sqlx::query_as::<_, (i64, i64, String, String, Option<String>, Option<String>, String)>(&sql);
        if let Some(key) = &query.key {
            q = q.bind(key.as_str());
        }
        let rows = q
            .bind(to_i64(query.limit as u64))
            .fetch_all(&self.readers)
            .await
            .map_err(|e| db_error("reading the audit log", e))?;
        Ok(rows
            .into_iter()
            .map(|(id, at, actor, action, key, version_id, detail)| AuditEntry {
                id,
                at: Timestamp::from_micros(at),
                actor,
                action,
                key,
                version_id,
                detail: serde_json::from_str(&detail).unwrap_or(serde_json::Value::Null),
            })
            .collect())
    }

    async fn check_consistency(&self) -> Result<Vec<String>> {
        let mut problems = Vec::new();
        let mut conn = self.readers.acquire().await.map_err(|e| db_error("connecting", e))?;
        let integrity: String = sqlx::query_scalar("PRAGMA integrity_check")
            .fetch_one(&mut *conn)
            .await
            .map_err(|e| db_error("integrity check", e))?;
        if integrity != "ok" {
            problems.push(format!("sqlite integrity_check: {integrity}"));
        }
        let checks: [(&str, &str); 4] = [
            (
                "version references a missing blob",
                "SELECT v.key || ' ' || v.version_id FROM versions v LEFT JOIN blobs b ON b.sha256 = v.blob_sha256 \
                 WHERE v.blob_sha256 IS NOT NULL AND b.sha256 IS NULL",
            ),
            (
                "blob reference count is wrong",
                "SELECT b.sha256 || ' refcount ' || b.refcount || ' but ' || \
                 (SELECT COUNT(*) FROM versions v WHERE v.blob_sha256 = b.sha256) || ' versions' FROM blobs b \
                 WHERE b.refcount <> (SELECT COUNT(*) FROM versions v WHERE v.blob_sha256 = b.sha256)",
            ),
            (
                "latest pointer is not the newest version",
                "SELECT l.key FROM latest l WHERE l.version_id <> \
                 (SELECT MAX(v.version_id) FROM versions v WHERE v.key = l.key) OR l.is_delete_marker <> \
                 (SELECT v.is_delete_marker FROM versions v WHERE v.key = l.key AND v.version_id = l.version_id)",
            ),
            (
                "key has versions but no latest pointer",
                "SELECT DISTINCT v.key FROM versions v LEFT JOIN latest l ON l.key = v.key WHERE l.key IS NULL",
            ),
        ];
        for (what, sql) in checks {
            let found: Vec<String> = sqlx::query_scalar(sql)
                .fetch_all(&mut *conn)
                .await
                .map_err(|e| db_error("consistency check", e))?;
            problems.extend(found.into_iter().map(|item| format!("{what}: {item}")));
        }
        Ok(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::prefix_upper_bound;

    #[test]
    fn upper_bounds_of_prefixes() {
        assert_eq!(prefix_upper_bound("invoices/"), Some("invoices0".into()));
        assert_eq!(prefix_upper_bound("a"), Some("b".into()));
        assert_eq!(prefix_upper_bound(""), None);
        assert_eq!(prefix_upper_bound("a\u{10FFFF}"), Some("b".into()));
        assert_eq!(prefix_upper_bound("\u{D7FF}"), Some("\u{E000}".into()));
    }
}
