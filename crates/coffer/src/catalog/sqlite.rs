//! The embedded catalog: SQLite in WAL mode through sqlx.
//!
//! Writes go through one writer task per process that commits whatever is
//! queued in a single transaction (group commit), each change inside its own
//! savepoint so a failed precondition rolls back only that change. With
//! `synchronous = FULL` every acknowledged change is on disk; batching is what
//! makes that affordable. Separate processes serialize on SQLite's own lock.

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
    Precondition, VersionContent,
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
        let mut writer = SqliteConnection::connect_with(&options)
            .await
            .map_err(|e| db_error(&format!("cannot open {}", path.display()), e))?;
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

/// Run every job of the batch in one transaction, each in its own savepoint,
/// and answer each only once the transaction has committed.
async fn commit_batch(conn: &mut SqliteConnection, batch: Vec<WriteJob>) {
    let fail_all = |batch: Vec<WriteJob>, err: &Error| {
        for job in batch {
            let error = Error::new(err.kind(), err.message().to_owned());
            let _ = job
                .reply
                .send(Err(if err.is_retryable() { error.retryable() } else { error }));
        }
    };
    if let Err(err) = exec(conn, "BEGIN IMMEDIATE").await {
        return fail_all(batch, &err);
    }
    let mut outcomes = Vec::with_capacity(batch.len());
    for job in &batch {
        if let Err(err) = exec(conn, "SAVEPOINT change").await {
            let _ = exec(conn, "ROLLBACK").await;
            return fail_all(batch, &err);
        }
        let outcome = match &job.op {
            WriteOp::Commit(version) => apply_commit(conn, version).await.map(WriteOutcome::Committed),
            WriteOp::DeleteVersion { key, version_id, actor } => apply_delete_version(conn, key, version_id, actor)
                .await
                .map(WriteOutcome::Deleted),
        };
        let closed = if outcome.is_ok() {
            exec(conn, "RELEASE change").await
        } else {
            match exec(conn, "ROLLBACK TO change").await {
                Ok(()) => exec(conn, "RELEASE change").await,
                Err(e) => Err(e),
            }
        };
        if let Err(err) = closed {
            let _ = exec(conn, "ROLLBACK").await;
            return fail_all(batch, &err);
        }
        outcomes.push(outcome);
    }
    if let Err(err) = exec(conn, "COMMIT").await {
        let _ = exec(conn, "ROLLBACK").await;
        return fail_all(batch, &err);
    }
    for (job, outcome) in batch.into_iter().zip(outcomes) {
        let _ = job.reply.send(outcome);
    }
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

/// The key's current version id, whether it is a delete marker, and its ETag.
async fn current(conn: &mut SqliteConnection, key: &str) -> Result<Option<(String, bool, Option<String>)>> {
    sqlx::query_as(
        "SELECT l.version_id, l.is_delete_marker, v.etag FROM latest l \
         JOIN versions v ON v.key = l.key AND v.version_id = l.version_id WHERE l.key = ?",
    )
    .bind(key)
    .fetch_optional(&mut *conn)
    .await
    .map_err(|e| db_error("reading the current version", e))
}

fn normalize_etag(etag: &str) -> &str {
    etag.trim().trim_matches('"')
}

fn check_precondition(
    key: &ObjectKey,
    precondition: &Precondition,
    current: Option<&(String, bool, Option<String>)>,
) -> Result<()> {
    let live = current.filter(|(_, is_marker, _)| !is_marker);
    match precondition {
        Precondition::None => Ok(()),
        Precondition::MustExist if live.is_some() => Ok(()),
        Precondition::MustExist => Err(Error::not_found(format!("no such key: {key}"))),
        Precondition::IfNoneMatch => match live {
            None => Ok(()),
            Some(_) => Err(Error::conflict(format!(
                "precondition failed: {key} already exists (if-none-match *)"
            ))),
        },
        Precondition::IfMatch(expected) => match live {
            Some((_, _, Some(etag))) if etag == normalize_etag(expected) => Ok(()),
            Some((_, _, etag)) => Err(Error::conflict(format!(
                "precondition failed: {key} has etag {}, not {}",
                etag.as_deref().unwrap_or("-"),
                normalize_etag(expected)
            ))),
            None => Err(Error::conflict(format!(
                "precondition failed: {key} does not exist (if-match)"
            ))),
        },
    }
}

async fn insert_audit(
    conn: &mut SqliteConnection,
    at: Timestamp,
    actor: &str,
    action: &str,
    key: &str,
    version_id: &str,
    detail: &serde_json::Value,
) -> Result<()> {
    sqlx::query("INSERT INTO audit (at, actor, action, key, version_id, detail) VALUES (?, ?, ?, ?, ?, ?)")
        .bind(at.as_micros())
        .bind(actor)
        .bind(action)
        .bind(key)
        .bind(version_id)
        .bind(detail.to_string())
        .execute(&mut *conn)
        .await
        .map(|_| ())
        .map_err(|e| db_error("writing the audit row", e))
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

async fn apply_commit(conn: &mut SqliteConnection, new: &NewVersion) -> Result<ObjectVersion> {
    let key = new.key.as_str();
    let version_id = new.version_id.as_str();
    let current = current(conn, key).await?;
    check_precondition(&new.key, &new.precondition, current.as_ref())?;

    let (blob_sha256, size, etag) = match &new.content {
        VersionContent::DeleteMarker => (None, 0, None),
        VersionContent::Blob(blob) => {
            let referenced = sqlx::query("UPDATE blobs SET refcount = refcount + 1 WHERE sha256 = ?")
                .bind(&blob.sha256)
                .execute(&mut *conn)
                .await
                .map_err(|e| db_error("referencing the blob", e))?
                .rows_affected();
            if referenced == 0 {
                let Some(path) = &blob.new_path else {
                    return Err(Error::not_found(format!("the content of {key} is no longer stored")));
                };
                sqlx::query(
                    "INSERT INTO blobs (sha256, md5, size, locator, refcount, created_at) VALUES (?, ?, ?, ?, 1, ?)",
                )
                .bind(&blob.sha256)
                .bind(&blob.md5)
                .bind(to_i64(blob.size))
                .bind(path)
                .bind(new.created_at.as_micros())
                .execute(&mut *conn)
                .await
                .map_err(|e| db_error("registering the blob", e))?;
            }
            (Some(blob.sha256.as_str()), blob.size, Some(blob.md5.as_str()))
        }
    };
    let metadata = serde_json::to_string(&new.metadata)
        .map_err(|e| Error::invalid_input(format!("metadata cannot be encoded: {e}")))?;
    sqlx::query(
        "INSERT INTO versions (key, version_id, is_delete_marker, blob_sha256, size, etag, content_type, \
         metadata, created_at, created_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(key)
    .bind(version_id)
    .bind(blob_sha256.is_none())
    .bind(blob_sha256)
    .bind(to_i64(size))
    .bind(etag)
    .bind(&new.content_type)
    .bind(metadata)
    .bind(new.created_at.as_micros())
    .bind(&new.created_by)
    .execute(&mut *conn)
    .await
    .map_err(|e| match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            Error::conflict(format!("version {version_id} of {key} already exists"))
        }
        _ => db_error("recording the version", e),
    })?;

    let newest = current
        .as_ref()
        .is_none_or(|(latest_id, _, _)| version_id > latest_id.as_str());
    if newest {
        sqlx::query(
            "INSERT INTO latest (key, version_id, is_delete_marker) VALUES (?, ?, ?) \
             ON CONFLICT (key) DO UPDATE SET version_id = excluded.version_id, is_delete_marker = excluded.is_delete_marker",
        )
        .bind(key)
        .bind(version_id)
        .bind(blob_sha256.is_none())
        .execute(&mut *conn)
        .await
        .map_err(|e| db_error("moving the latest pointer", e))?;
    }
    insert_audit(
        conn,
        new.created_at,
        &new.created_by,
        new.action,
        key,
        version_id,
        &new.audit_detail,
    )
    .await?;
    fetch_version(conn, key, version_id)
        .await?
        .ok_or_else(|| Error::new(ErrorKind::Catalog, "catalog lost a version it just wrote"))
}

async fn apply_delete_version(
    conn: &mut SqliteConnection,
    key: &ObjectKey,
    version_id: &VersionId,
    actor: &str,
) -> Result<DeletedVersion> {
    let Some(version) = fetch_version(conn, key.as_str(), version_id.as_str()).await? else {
        return Err(Error::not_found(format!("no version {version_id} of {key}")));
    };
    if version.is_latest {
        let successor: Option<(String, bool)> = sqlx::query_as(
            "SELECT version_id, is_delete_marker FROM versions WHERE key = ? AND version_id <> ? \
             ORDER BY version_id DESC LIMIT 1",
        )
        .bind(key.as_str())
        .bind(version_id.as_str())
        .fetch_optional(&mut *conn)
        .await
        .map_err(|e| db_error("finding the previous version", e))?;
        let moved = match successor {
            Some((id, is_marker)) => {
                sqlx::query("UPDATE latest SET version_id = ?, is_delete_marker = ? WHERE key = ?")
                    .bind(id)
                    .bind(is_marker)
                    .bind(key.as_str())
            }
            None => sqlx::query("DELETE FROM latest WHERE key = ?").bind(key.as_str()),
        };
        moved
            .execute(&mut *conn)
            .await
            .map_err(|e| db_error("moving the latest pointer", e))?;
    }
    sqlx::query("DELETE FROM versions WHERE key = ? AND version_id = ?")
        .bind(key.as_str())
        .bind(version_id.as_str())
        .execute(&mut *conn)
        .await
        .map_err(|e| db_error("removing the version", e))?;
    let mut unreferenced_blob = None;
    if let Some(sha256) = &version.sha256 {
        // The last reference takes the blob row with it; any other just counts down.
        unreferenced_blob = sqlx::query("DELETE FROM blobs WHERE sha256 = ? AND refcount = 1 RETURNING locator")
            .bind(sha256)
            .fetch_optional(&mut *conn)
            .await
            .map_err(|e| db_error("releasing the blob", e))?
            .map(|row| row.get::<String, _>(0));
        if unreferenced_blob.is_none() {
            sqlx::query("UPDATE blobs SET refcount = refcount - 1 WHERE sha256 = ?")
                .bind(sha256)
                .execute(&mut *conn)
                .await
                .map_err(|e| db_error("releasing the blob", e))?;
        }
    }
    let detail = serde_json::json!({ "size": version.size, "sha256": version.sha256, "was_delete_marker": version.is_delete_marker });
    insert_audit(
        conn,
        Timestamp::now(),
        actor,
        "delete_version",
        key.as_str(),
        version_id.as_str(),
        &detail,
    )
    .await?;
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
