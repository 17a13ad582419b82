//! The embedded catalog: SQLite in WAL mode through sqlx.
//!
//! Writes go through one writer task per process that commits whatever is
//! queued in a single transaction (group commit). With `synchronous = FULL`
//! every acknowledged change is on disk; batching is what makes that
//! affordable. A change checks its preconditions before it writes, so one
//! refused change does not disturb the others in its batch. Separate processes
//! serialize on SQLite's own lock.

#[cfg(feature = "catalog-postgres")]
mod transfer;

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Connection, Row};
use tokio::sync::{mpsc, oneshot};

use super::plan::{self, AnnotatePlan, AuditRecord, CommitPlan, CurrentVersion, PURGE_BATCH, PurgePlan, RepairPlan};
use super::rows::{
    AuditRow, BlobRow, Param, VERSION_JOINS, audit_select, bind_params, decode_versions, dry_run_release,
    list_latest_select, to_i64, version_refs_select,
};
use super::{
    Annotation, AuditEntry, AuditQuery, BlobRecord, Catalog, CatalogStats, DeletedVersion, KeyQuery, NewVersion,
    ObjectVersion, PrunePolicy, Repair, SearchPage, SearchQuery, VersionContent, VersionRef,
};
use crate::error::{Error, ErrorKind, Result};
use crate::events::built_in;
use crate::key::ObjectKey;
use crate::time::Timestamp;
use crate::version::VersionId;

/// Most changes committed in one transaction.
const MAX_BATCH: usize = 512;
/// How much of the catalog file each connection maps into memory.
const MMAP_BYTES: u64 = 1 << 30;
/// Page cache of each connection, KiB.
const CACHE_KIB: u64 = 32 * 1024;
/// How long a writer waits for another process's transaction before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(60);

mod outbox;
mod search;

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
    Annotate {
        key: ObjectKey,
        version_id: VersionId,
        annotation: Annotation,
        actor: String,
    },
    Prune {
        key: ObjectKey,
        policy: PrunePolicy,
        actor: String,
        dry_run: bool,
    },
    Repair {
        repair: Repair,
        actor: String,
    },
    /// One batch of an audit purge.
    PurgeAudit(PurgePlan),
    RecordRead {
        key: ObjectKey,
        version_id: VersionId,
        actor: String,
        detail: serde_json::Value,
    },
    Outbox(Box<outbox::OutboxOp>),
}

enum WriteOutcome {
    Version(Box<ObjectVersion>),
    Removed(Vec<DeletedVersion>),
    Count(u64),
    Done,
    Outbox(outbox::OutboxReply),
}

impl WriteOutcome {
    fn into_version(self) -> Result<ObjectVersion> {
        match self {
            WriteOutcome::Version(version) => Ok(*version),
            _ => Err(wrong_answer()),
        }
    }

    fn into_removed(self) -> Result<Vec<DeletedVersion>> {
        match self {
            WriteOutcome::Removed(removed) => Ok(removed),
            _ => Err(wrong_answer()),
        }
    }

    fn into_count(self) -> Result<u64> {
        match self {
            WriteOutcome::Count(count) => Ok(count),
            _ => Err(wrong_answer()),
        }
    }
}

fn wrong_answer() -> Error {
    Error::new(ErrorKind::Catalog, "catalog writer answered the wrong request")
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

impl SqliteCatalog {
    /// Open (creating and migrating if needed) the catalog in the file at `path`.
    pub async fn open(path: &Path) -> Result<Self> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true)
            // Large catalogs: reads map the file instead of copying each page
            // in with a system call, and keep more pages of their own.
            .pragma("mmap_size", MMAP_BYTES.to_string())
            .pragma("cache_size", format!("-{CACHE_KIB}"));
        let mut writer = connect(&options, path).await?;
        migrate(&mut writer).await?;
        search::backfill(&mut writer).await?;
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
        WriteOp::Commit(version) => apply_commit(conn, version)
            .await
            .map(|v| WriteOutcome::Version(Box::new(v))),
        WriteOp::DeleteVersion { key, version_id, actor } => apply_delete_version(conn, key, version_id, actor)
            .await
            .map(|deleted| WriteOutcome::Removed(vec![deleted])),
        WriteOp::Annotate {
            key,
            version_id,
            annotation,
            actor,
        } => apply_annotate(conn, key, version_id, annotation, actor)
            .await
            .map(|v| WriteOutcome::Version(Box::new(v))),
        WriteOp::Prune {
            key,
            policy,
            actor,
            dry_run,
        } => apply_prune(conn, key, *policy, actor, *dry_run)
            .await
            .map(WriteOutcome::Removed),
        WriteOp::Repair { repair, actor } => apply_repair(conn, repair, actor).await.map(|()| WriteOutcome::Done),
        WriteOp::PurgeAudit(purge) => apply_purge_audit(conn, purge).await.map(WriteOutcome::Count),
        WriteOp::RecordRead {
            key,
            version_id,
            actor,
            detail,
        } => bind_params!(
            sqlx::query(INSERT_AUDIT),
            audit_params(&plan::read_record(key, version_id, actor, detail, Timestamp::now()))
        )
        .execute(&mut *conn)
        .await
        .map(|_| WriteOutcome::Done)
        .map_err(|e| Refused::Dirty(db_error("recording a read", e))),
        WriteOp::Outbox(op) => outbox::apply(conn, op).await.map(WriteOutcome::Outbox),
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

/// A version's tags as a JSON object, looked up for the row.
const TAGS_OF_ROW: &str = "(SELECT json_group_object(t.name, t.value) FROM version_tags t \
     WHERE t.key = v.key AND t.version_id = v.version_id)";
/// A version's comments as a JSON array, oldest first, looked up for the row.
const COMMENTS_OF_ROW: &str = "(SELECT json_group_array(json_object('at', c.at, 'actor', c.actor, 'text', c.text) \
     ORDER BY c.seq) FROM version_comments c WHERE c.key = v.key AND c.version_id = v.version_id)";

/// The aggregate that turns the versions a query selects (as `v`, joined by
/// [`VERSION_JOINS`]) into one JSON array, each version an array in
/// [`super::rows::JsonVersion`]'s field order, with tags and comments from the SQL given.
///
/// Versions are read as one JSON document: handing rows one by one through
/// sqlx costs several times what SQLite itself spends (`history` of a key
/// with 10,000 versions must stay well under 50 ms), and arrays without field
/// names halve the text to build and parse. The order is not kept: callers sort.
fn versions_as_json(tags: &str, comments: &str) -> String {
    format!("json_group_array({})", version_as_json(tags, comments))
}

/// One version (`v`, joined by [`VERSION_JOINS`]) as the JSON array [`versions_as_json`] collects.
fn version_as_json(tags: &str, comments: &str) -> String {
    format!(
        "json_array(v.key, v.version_id, v.is_delete_marker, l.version_id IS NOT NULL, v.size, \
         v.etag, v.blob_sha256, v.content_type, json(v.metadata), v.created_at, v.created_by, b.locator, \
         b.damaged, json({tags}), json({comments}))"
    )
}

async fn fetch_version(conn: &mut SqliteConnection, key: &str, version_id: &str) -> Result<Option<ObjectVersion>> {
    let sql = format!(
        "SELECT {} FROM versions v {VERSION_JOINS} WHERE v.key = ? AND v.version_id = ?",
        versions_as_json(TAGS_OF_ROW, COMMENTS_OF_ROW)
    );
    let json: String = sqlx::query_scalar(&sql)
        .bind(key)
        .bind(version_id)
        .fetch_one(&mut *conn)
        .await
        .map_err(|e| db_error("reading a version", e))?;
    Ok(decode_versions(&json)?.pop())
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
    type CurrentRow = (
        Option<String>,
        Option<bool>,
        Option<String>,
        Option<String>,
        Option<String>,
    );
    let (current_id, current_marker, current_etag, stored_path, stored_damage): CurrentRow = sqlx::query_as(
        "SELECT l.version_id, l.is_delete_marker, v.etag, b.locator, b.damaged \
         FROM (SELECT 1) LEFT JOIN latest l ON l.key = ? \
         LEFT JOIN versions v ON v.key = l.key AND v.version_id = l.version_id \
         LEFT JOIN blobs b ON b.sha256 = ?",
    )
    .bind(key)
    .bind(blob.map(|b| b.sha256.as_str()))
    .fetch_one(&mut *conn)
    .await
    .map_err(|e| Refused::Clean(db_error("reading the current version", e)))?;
    let current = current_id.map(|version_id| CurrentVersion {
        version_id,
        is_delete_marker: current_marker.unwrap_or(false),
        etag: current_etag,
    });
    plan::admit_commit(new, current.as_ref()).map_err(Refused::Clean)?;

    /// What the version does to its blob's row.
    enum BlobChange {
        None,
        Insert,
        Reference,
        /// The stored copy is damaged and this version brings a sound one.
        Heal,
    }
    let (blob_change, blob_path) = match (blob, &stored_path, &blob.and_then(|b| b.new_path.clone())) {
        (None, _, _) => (BlobChange::None, None),
        (Some(_), Some(_), Some(fresh)) if stored_damage.is_some() => (BlobChange::Heal, Some(fresh.clone())),
        (Some(_), Some(_), None) if stored_damage.is_some() => {
            return Err(Refused::Clean(Error::new(
                ErrorKind::IntegrityMismatch,
                format!(
                    "the content of {key} is damaged ({})",
                    stored_damage.unwrap_or_default()
                ),
            )));
        }
        (Some(_), Some(stored), _) => (BlobChange::Reference, Some(stored.clone())),
        (Some(_), None, Some(fresh)) => (BlobChange::Insert, Some(fresh.clone())),
        (Some(_), None, None) => {
            return Err(Refused::Clean(Error::not_found(format!(
                "the content of {key} is no longer stored"
            ))));
        }
    };

    let (sha256, size, etag) = match blob {
        Some(b) => (Some(b.sha256.as_str()), b.size, Some(b.md5.as_str())),
        None => (None, 0, None),
    };
    let CommitPlan {
        committed,
        becomes_latest,
        document,
        events,
    } = plan::plan_commit(new, current.as_ref(), blob_path);

    let mut sql = String::new();
    sql.push_str(match blob_change {
        BlobChange::None => "",
        BlobChange::Insert => {
            "INSERT INTO blobs (sha256, md5, size, locator, refcount, created_at) VALUES (?, ?, ?, ?, 1, ?);"
        }
        BlobChange::Reference => "UPDATE blobs SET refcount = refcount + 1 WHERE sha256 = ?;",
        BlobChange::Heal => "UPDATE blobs SET refcount = refcount + 1, locator = ?, damaged = NULL WHERE sha256 = ?;",
    });
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
    for _ in &new.tags {
        sql.push_str(INSERT_TAG);
    }
    for _ in &new.comments {
        sql.push_str(INSERT_COMMENT);
    }
    if document.is_some() {
        sql.push_str(search::INSERT_DOCUMENT);
    }
    sql.push_str(INSERT_AUDIT);
    // The events go in the same statement as the version: no extra round trip.
    if !events.is_empty() {
        sql.push_str(&outbox::insert_events_sql(events.len()));
    }

    let metadata = serde_json::to_string(&new.metadata)
        .map_err(|e| Refused::Clean(Error::invalid_input(format!("metadata cannot be encoded: {e}"))))?;
    let mut query = sqlx::query(&sql);
    if let Some(blob) = blob {
        query = match blob_change {
            BlobChange::None => query,
            BlobChange::Insert => query
                .bind(&blob.sha256)
                .bind(&blob.md5)
                .bind(to_i64(blob.size))
                .bind(&committed.blob_path)
                .bind(new.created_at.as_micros()),
            BlobChange::Reference => query.bind(&blob.sha256),
            BlobChange::Heal => query.bind(&committed.blob_path).bind(&blob.sha256),
        };
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
    for (name, value) in &new.tags {
        query = query.bind(key).bind(version_id).bind(name).bind(value);
    }
    for (seq, comment) in new.comments.iter().enumerate() {
        query = query
            .bind(key)
            .bind(version_id)
            .bind(to_i64(seq as u64 + 1))
            .bind(comment.at.as_micros())
            .bind(&comment.actor)
            .bind(&comment.text);
    }
    if let Some(document) = document {
        query = query.bind(key).bind(version_id).bind(document);
    }
    query = query
        .bind(new.created_at.as_micros())
        .bind(&new.created_by)
        .bind(new.action)
        .bind(key)
        .bind(version_id)
        .bind(new.audit_detail.to_string());
    query = outbox::bind_events(query, &events);
    query.execute(&mut *conn).await.map_err(|e| {
        Refused::Dirty(match &e {
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                Error::conflict(format!("version {version_id} of {key} already exists"))
            }
            _ => db_error("recording the version", e),
        })
    })?;
    Ok(committed)
}

const INSERT_TAG: &str = "INSERT INTO version_tags (key, version_id, name, value) VALUES (?, ?, ?, ?) \
     ON CONFLICT (key, version_id, name) DO UPDATE SET value = excluded.value;";
const INSERT_COMMENT: &str =
    "INSERT INTO version_comments (key, version_id, seq, at, actor, text) VALUES (?, ?, ?, ?, ?, ?);";

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
    remove_version(conn, version, successor, "delete_version", actor).await
}

/// Remove `version` (its tags and comments go with it), moving the latest
/// pointer to `successor` if it was the latest, and release its blob.
async fn remove_version(
    conn: &mut SqliteConnection,
    version: ObjectVersion,
    successor: Option<(String, bool)>,
    action: &str,
    actor: &str,
) -> Result<DeletedVersion, Refused> {
    let key = version.key.as_str();
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
        (Some((id, is_marker)), true) => query = query.bind(id).bind(is_marker).bind(key),
        (None, true) => query = query.bind(key),
        (_, false) => {}
    }
    query = query.bind(key).bind(version.version_id.as_str());
    if let Some(sha256) = &version.sha256 {
        query = query.bind(sha256).bind(sha256);
    }
    let detail = serde_json::json!({
        "size": version.size, "sha256": version.sha256, "was_delete_marker": version.is_delete_marker,
    });
    query = query
        .bind(Timestamp::now().as_micros())
        .bind(actor)
        .bind(action)
        .bind(key)
        .bind(version.version_id.as_str())
        .bind(detail.to_string());
    let released = query
        .fetch_all(&mut *conn)
        .await
        .map_err(|e| Refused::Dirty(db_error("removing the version", e)))?;
    let unreferenced_blob = released.first().map(|row| row.get::<String, _>(0));
    let event = built_in::removed_version(&version, action, actor, Timestamp::now());
    outbox::insert_events(conn, &[event]).await.map_err(Refused::Dirty)?;
    Ok(DeletedVersion {
        version,
        unreferenced_blob,
    })
}

async fn apply_prune(
    conn: &mut SqliteConnection,
    key: &ObjectKey,
    policy: PrunePolicy,
    actor: &str,
    dry_run: bool,
) -> Result<Vec<DeletedVersion>, Refused> {
    plan::check_prune(key, policy).map_err(Refused::Clean)?;
    let versions = fetch_versions(conn, key.as_str(), None).await.map_err(Refused::Clean)?;
    let doomed = plan::plan_prune(key, versions, policy).map_err(Refused::Clean)?;
    if dry_run {
        return dry_run_removals(conn, doomed).await.map_err(Refused::Clean);
    }
    let mut removed = Vec::with_capacity(doomed.len());
    for version in doomed {
        removed.push(remove_version(conn, version, None, "prune", actor).await?);
    }
    Ok(removed)
}

/// What removing `doomed` would release, without removing anything.
async fn dry_run_removals(conn: &mut SqliteConnection, doomed: Vec<ObjectVersion>) -> Result<Vec<DeletedVersion>> {
    let mut refcounts = std::collections::HashMap::new();
    for sha256 in doomed.iter().filter_map(|v| v.sha256.as_deref()) {
        if !refcounts.contains_key(sha256) {
            let refcount: i64 = sqlx::query_scalar("SELECT refcount FROM blobs WHERE sha256 = ?")
                .bind(sha256)
                .fetch_one(&mut *conn)
                .await
                .map_err(|e| db_error("reading a blob", e))?;
            refcounts.insert(sha256.to_owned(), refcount);
        }
    }
    Ok(dry_run_release(doomed, refcounts))
}

async fn apply_annotate(
    conn: &mut SqliteConnection,
    key: &ObjectKey,
    version_id: &VersionId,
    annotation: &Annotation,
    actor: &str,
) -> Result<ObjectVersion, Refused> {
    let found = fetch_version(conn, key.as_str(), version_id.as_str())
        .await
        .map_err(Refused::Clean)?;
    let Some(version) = found else {
        return Err(Refused::Clean(Error::not_found(format!(
            "no version {version_id} of {key}"
        ))));
    };
    let AnnotatePlan {
        version,
        comment,
        document,
        audit,
        event,
    } = plan::plan_annotate(version, annotation, actor, Timestamp::now()).map_err(Refused::Clean)?;
    let (k, v) = (key.as_str(), version_id.as_str());
    let mut sql = String::new();
    let mut params = Vec::new();
    if let Annotation::Tags { set, remove } = annotation {
        for name in remove {
            sql.push_str("DELETE FROM version_tags WHERE key = ? AND version_id = ? AND name = ?;");
            params.extend([k, v, name].map(|p| Param::Text(p.to_owned())));
        }
        for (name, value) in set {
            sql.push_str(INSERT_TAG);
            params.extend([k, v, name, value].map(|p| Param::Text(p.to_owned())));
        }
    }
    if let Some(comment) = &comment {
        sql.push_str(
            "INSERT INTO version_comments (key, version_id, seq, at, actor, text) \
             SELECT ?, ?, COALESCE(MAX(seq), 0) + 1, ?, ?, ? FROM version_comments \
             WHERE key = ? AND version_id = ?;",
        );
        params.extend([
            Param::Text(k.to_owned()),
            Param::Text(v.to_owned()),
            Param::Int(comment.at.as_micros()),
            Param::Text(comment.actor.clone()),
            Param::Text(comment.text.clone()),
            Param::Text(k.to_owned()),
            Param::Text(v.to_owned()),
        ]);
    }
    if let Some(document) = document {
        sql.push_str(search::REWRITE_DOCUMENT);
        params.extend([document, k.to_owned(), v.to_owned()].map(Param::Text));
    }
    sql.push_str(INSERT_AUDIT);
    params.extend(audit_params(&audit));
    bind_params!(sqlx::query(&sql), params)
        .execute(&mut *conn)
        .await
        .map_err(|e| Refused::Dirty(db_error("annotating the version", e)))?;
    outbox::insert_events(conn, &[event]).await.map_err(Refused::Dirty)?;
    Ok(version)
}

/// The values of [`INSERT_AUDIT`] for `row`.
fn audit_params(row: &AuditRecord) -> [Param; 6] {
    let text = |value: &Option<String>| value.clone().map_or(Param::Null, Param::Text);
    [
        Param::Int(row.at.as_micros()),
        Param::Text(row.actor.clone()),
        Param::Text(row.action.clone()),
        text(&row.key),
        text(&row.version_id),
        Param::Text(row.detail.to_string()),
    ]
}

async fn apply_repair(conn: &mut SqliteConnection, repair: &Repair, actor: &str) -> Result<(), Refused> {
    let query = match plan::plan_repair(repair, actor, Timestamp::now()) {
        // One audit row for each version whose content this is.
        RepairPlan::MarkDamaged {
            sha256,
            problem,
            at,
            actor,
            detail,
        } => bind_params!(
            sqlx::query(
                "UPDATE blobs SET damaged = ? WHERE sha256 = ?; \
                 INSERT INTO audit (at, actor, action, key, version_id, detail) \
                 SELECT ?, ?, 'repair', key, version_id, ? FROM versions WHERE blob_sha256 = ?;",
            ),
            [
                Param::Text(problem),
                Param::Text(sha256.clone()),
                Param::Int(at.as_micros()),
                Param::Text(actor),
                Param::Text(detail.to_string()),
                Param::Text(sha256),
            ]
        ),
        RepairPlan::Audit(row) => bind_params!(sqlx::query(INSERT_AUDIT), audit_params(&row)),
    };
    query
        .execute(&mut *conn)
        .await
        .map(|_| ())
        .map_err(|e| Refused::Dirty(db_error("recording a repair", e)))
}

/// Remove up to [`PURGE_BATCH`] audit rows of `purge` (older than its line,
/// no newer than its `up_to_id`), oldest first, and record that in an
/// `audit_purge` row. The guard row lets the `audit_no_delete` trigger pass
/// these deletes only; it is gone again before the transaction commits.
async fn apply_purge_audit(conn: &mut SqliteConnection, purge: &PurgePlan) -> Result<u64, Refused> {
    let failed = |e| Refused::Dirty(db_error("purging the audit log", e));
    sqlx::query("INSERT INTO audit_purge_guard (before) VALUES (?)")
        .bind(purge.before.as_micros())
        .execute(&mut *conn)
        .await
        .map_err(failed)?;
    let removed = sqlx::query(
        "DELETE FROM audit WHERE id IN (SELECT id FROM audit WHERE at < ? AND id <= ? ORDER BY id LIMIT ?)",
    )
    .bind(purge.before.as_micros())
    .bind(purge.up_to_id)
    .bind(to_i64(PURGE_BATCH))
    .execute(&mut *conn)
    .await
    .map_err(failed)?
    .rows_affected();
    let record = purge.record(removed, Timestamp::now());
    let sql = format!("DELETE FROM audit_purge_guard; {INSERT_AUDIT}");
    bind_params!(sqlx::query(&sql), audit_params(&record))
        .execute(&mut *conn)
        .await
        .map_err(failed)?;
    Ok(removed)
}

/// A key's versions, newest first. Tags and comments are grouped once for the
/// key instead of looked up per version.
async fn fetch_versions(conn: &mut SqliteConnection, key: &str, limit: Option<usize>) -> Result<Vec<ObjectVersion>> {
    let sql = format!(
        "SELECT {} FROM (SELECT * FROM versions WHERE key = ?1 ORDER BY version_id DESC LIMIT ?2) v {VERSION_JOINS} \
         LEFT JOIN (SELECT version_id, json_group_object(name, value) AS tags FROM version_tags \
                    WHERE key = ?1 GROUP BY version_id) t ON t.version_id = v.version_id \
         LEFT JOIN (SELECT version_id, json_group_array(json_object('at', at, 'actor', actor, 'text', text) \
                    ORDER BY seq) AS comments FROM version_comments WHERE key = ?1 GROUP BY version_id) c \
                   ON c.version_id = v.version_id",
        versions_as_json("COALESCE(t.tags, '{}')", "COALESCE(c.comments, '[]')")
    );
    let json: String = sqlx::query_scalar(&sql)
        .bind(key)
        .bind(limit.map_or(-1, |n| to_i64(n as u64)))
        .fetch_one(&mut *conn)
        .await
        .map_err(|e| db_error("listing versions", e))?;
    let mut versions = decode_versions(&json)?;
    versions.sort_unstable_by(|a, b| b.version_id.cmp(&a.version_id));
    Ok(versions)
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

#[async_trait]
impl Catalog for SqliteCatalog {
    async fn commit_version(&self, version: NewVersion) -> Result<ObjectVersion> {
        self.write(WriteOp::Commit(Box::new(version))).await?.into_version()
    }

    async fn delete_version(&self, key: &ObjectKey, version_id: &VersionId, actor: &str) -> Result<DeletedVersion> {
        let op = WriteOp::DeleteVersion {
            key: key.clone(),
            version_id: version_id.clone(),
            actor: actor.to_owned(),
        };
        self.write(op).await?.into_removed()?.pop().ok_or_else(wrong_answer)
    }

    async fn annotate(
        &self,
        key: &ObjectKey,
        version_id: &VersionId,
        annotation: Annotation,
        actor: &str,
    ) -> Result<ObjectVersion> {
        let op = WriteOp::Annotate {
            key: key.clone(),
            version_id: version_id.clone(),
            annotation,
            actor: actor.to_owned(),
        };
        self.write(op).await?.into_version()
    }

    async fn prune(
        &self,
        key: &ObjectKey,
        policy: PrunePolicy,
        actor: &str,
        dry_run: bool,
    ) -> Result<Vec<DeletedVersion>> {
        let op = WriteOp::Prune {
            key: key.clone(),
            policy,
            actor: actor.to_owned(),
            dry_run,
        };
        self.write(op).await?.into_removed()
    }

    async fn repair(&self, repair: &Repair, actor: &str) -> Result<()> {
        let op = WriteOp::Repair {
            repair: repair.clone(),
            actor: actor.to_owned(),
        };
        self.write(op).await.map(|_| ())
    }

    async fn purge_audit(
        &self,
        before: Timestamp,
        actor: &str,
        detail: serde_json::Value,
        dry_run: bool,
    ) -> Result<u64> {
        if dry_run {
            let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit WHERE at < ?")
                .bind(before.as_micros())
                .fetch_one(&self.readers)
                .await
                .map_err(|e| db_error("counting audit rows", e))?;
            return Ok(u64::try_from(count).unwrap_or(0));
        }
        // Rows the purge writes itself come after the rows that exist now.
        let up_to_id: Option<i64> = sqlx::query_scalar("SELECT MAX(id) FROM audit")
            .fetch_one(&self.readers)
            .await
            .map_err(|e| db_error("reading the audit log", e))?;
        let purge = PurgePlan::new(before, up_to_id, actor, detail);
        let mut total = 0;
        loop {
            let removed = self.write(WriteOp::PurgeAudit(purge.clone())).await?.into_count()?;
            total += removed;
            if PurgePlan::finished(removed) {
                return Ok(total);
            }
        }
    }

    async fn record_read(
        &self,
        key: &ObjectKey,
        version_id: &VersionId,
        actor: &str,
        detail: serde_json::Value,
    ) -> Result<()> {
        let op = WriteOp::RecordRead {
            key: key.clone(),
            version_id: version_id.clone(),
            actor: actor.to_owned(),
            detail,
        };
        self.write(op).await.map(|_| ())
    }

    async fn version_refs(&self, prefix: &str) -> Result<Vec<VersionRef>> {
        let (sql, params) = version_refs_select(prefix);
        let rows: Vec<(String, String, Option<String>)> = bind_params!(sqlx::query_as(&sql), params)
            .fetch_all(&self.readers)
            .await
            .map_err(|e| db_error("listing versions", e))?;
        rows.into_iter().map(VersionRef::try_from).collect()
    }

    async fn version(&self, key: &ObjectKey, version_id: Option<&VersionId>) -> Result<Option<ObjectVersion>> {
        let mut conn = self.readers.acquire().await.map_err(|e| db_error("connecting", e))?;
        match version_id {
            Some(id) => fetch_version(&mut conn, key.as_str(), id.as_str()).await,
            None => {
                let sql = format!(
                    "SELECT {} FROM latest l2 \
                     JOIN versions v ON v.key = l2.key AND v.version_id = l2.version_id {VERSION_JOINS} WHERE l2.key = ?",
                    versions_as_json(TAGS_OF_ROW, COMMENTS_OF_ROW)
                );
                let json: String = sqlx::query_scalar(&sql)
                    .bind(key.as_str())
                    .fetch_one(&mut *conn)
                    .await
                    .map_err(|e| db_error("reading the latest version", e))?;
                Ok(decode_versions(&json)?.pop())
            }
        }
    }

    async fn versions(&self, key: &ObjectKey, limit: Option<usize>) -> Result<Vec<ObjectVersion>> {
        let mut conn = self.readers.acquire().await.map_err(|e| db_error("connecting", e))?;
        fetch_versions(&mut conn, key.as_str(), limit).await
    }

    async fn list_latest(&self, query: &KeyQuery) -> Result<Vec<ObjectVersion>> {
        let (sql, params) = list_latest_select(query, &versions_as_json(TAGS_OF_ROW, COMMENTS_OF_ROW));
        let json: String = bind_params!(sqlx::query_scalar(&sql), params)
            .fetch_one(&self.readers)
            .await
            .map_err(|e| db_error("listing keys", e))?;
        let mut versions = decode_versions(&json)?;
        versions.sort_unstable_by(|a, b| a.key.as_str().cmp(b.key.as_str()));
        Ok(versions)
    }

    async fn blob(&self, sha256: &str) -> Result<Option<BlobRecord>> {
        let row: Option<BlobRow> =
            sqlx::query_as("SELECT sha256, size, locator, refcount, damaged FROM blobs WHERE sha256 = ?")
                .bind(sha256)
                .fetch_optional(&self.readers)
                .await
                .map_err(|e| db_error("reading a blob", e))?;
        Ok(row.map(BlobRecord::from))
    }

    async fn blobs(&self) -> Result<Vec<BlobRecord>> {
        let rows: Vec<BlobRow> =
            sqlx::query_as("SELECT sha256, size, locator, refcount, damaged FROM blobs ORDER BY sha256")
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
        let (sql, params) = audit_select(query, "detail");
        let rows: Vec<AuditRow> = bind_params!(sqlx::query_as(&sql), params)
            .fetch_all(&self.readers)
            .await
            .map_err(|e| db_error("reading the audit log", e))?;
        Ok(rows.into_iter().map(AuditEntry::from).collect())
    }

    async fn search(&self, query: &SearchQuery) -> Result<SearchPage> {
        search::search(&self.readers, query).await
    }

    async fn check_consistency(&self) -> Result<Vec<String>> {
        let mut problems = Vec::new();
        // On a connection of its own: on a long-lived reader, SQLite's (3.46)
        // FTS5 integrity check has reported "malformed inverted index" after
        // concurrent commits for an index that a new connection finds sound.
        let mut fresh = connect(&self.readers.connect_options(), &self.path).await?;
        let integrity: String = sqlx::query_scalar("PRAGMA integrity_check")
            .fetch_one(&mut fresh)
            .await
            .map_err(|e| db_error("integrity check", e))?;
        drop(fresh);
        let mut conn = self.readers.acquire().await.map_err(|e| db_error("connecting", e))?;
        if integrity != "ok" {
            problems.push(format!("sqlite integrity_check: {integrity}"));
        }
        let checks: [(&str, &str); 6] = [
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
            (
                "version has no search document",
                "SELECT v.key || ' ' || v.version_id FROM versions v LEFT JOIN search_docs d \
                 ON d.key = v.key AND d.version_id = v.version_id WHERE NOT v.is_delete_marker AND d.id IS NULL",
            ),
            (
                "search index holds a removed document",
                "SELECT 'id ' || f.rowid FROM search_fts f LEFT JOIN search_docs d ON d.id = f.rowid WHERE d.id IS NULL",
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
    #![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

    use super::*;

    /// Run `sql` on its own connection to the catalog's file, as a stray client would.
    async fn raw(path: &Path, sql: &str) -> std::result::Result<u64, String> {
        let mut conn = SqliteConnection::connect_with(&SqliteConnectOptions::new().filename(path))
            .await
            .unwrap();
        sqlx::query(sql)
            .execute(&mut conn)
            .await
            .map(|done| done.rows_affected())
            .map_err(|e| e.to_string())
    }

    #[tokio::test]
    async fn only_a_purge_removes_audit_rows_and_nothing_changes_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("catalog.db");
        let catalog = SqliteCatalog::open(&path).await.unwrap();
        let key = ObjectKey::new("k").unwrap();
        let version = VersionId::generate();
        catalog
            .record_read(&key, &version, "reader", serde_json::Value::Null)
            .await
            .unwrap();

        for sql in [
            "DELETE FROM audit",
            "UPDATE audit SET actor = 'someone else'",
            // A guard row lets through only rows older than its cutoff.
            "INSERT INTO audit_purge_guard (before) VALUES (1); DELETE FROM audit",
        ] {
            let err = raw(&path, sql).await.expect_err(sql);
            assert!(err.contains("append-only"), "{sql}: {err}");
        }
        let rows = catalog
            .audit(&AuditQuery {
                limit: 10,
                ..AuditQuery::default()
            })
            .await
            .unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].actor, "reader");

        let far_future = Timestamp::from_micros(i64::MAX);
        assert_eq!(
            catalog
                .purge_audit(far_future, "purger", serde_json::Value::Null, false)
                .await
                .unwrap(),
            1
        );
        let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_purge_guard")
            .fetch_one(&catalog.readers)
            .await
            .unwrap();
        assert_eq!(left, 0, "the guard row never outlives the purge");
        let rows = catalog
            .audit(&AuditQuery {
                limit: 10,
                ..AuditQuery::default()
            })
            .await
            .unwrap();
        assert_eq!(rows.len(), 1, "the purge keeps the row that records it");
        assert_eq!(
            (rows[0].action.as_str(), rows[0].detail["removed"].as_u64()),
            ("audit_purge", Some(1))
        );
        assert!(raw(&path, "DELETE FROM audit").await.is_err());
    }

    #[tokio::test]
    async fn a_large_purge_runs_in_batches_each_audited() {
        let dir = tempfile::tempdir().unwrap();
        let catalog = SqliteCatalog::open(&dir.path().join("catalog.db")).await.unwrap();
        let rows = PURGE_BATCH * 2 + 10;
        sqlx::query(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?) \
             INSERT INTO audit (at, actor, action, key, version_id, detail) SELECT i, 'old', 'put', NULL, NULL, '{}' FROM n",
        )
        .bind(to_i64(rows))
        .execute(&catalog.readers)
        .await
        .unwrap();
        let before = Timestamp::from_micros(1_000_000);
        assert_eq!(
            catalog
                .purge_audit(before, "purger", serde_json::Value::Null, true)
                .await
                .unwrap(),
            rows
        );
        assert_eq!(
            catalog
                .purge_audit(before, "purger", serde_json::Value::Null, false)
                .await
                .unwrap(),
            rows
        );
        let purges = catalog
            .audit(&AuditQuery {
                action: Some("audit_purge".into()),
                oldest_first: true,
                limit: 10,
                ..AuditQuery::default()
            })
            .await
            .unwrap();
        let removed: Vec<u64> = purges.iter().filter_map(|row| row.detail["removed"].as_u64()).collect();
        assert_eq!(removed, [PURGE_BATCH, PURGE_BATCH, 10]);
        let left = catalog
            .audit(&AuditQuery {
                limit: 10,
                ..AuditQuery::default()
            })
            .await
            .unwrap();
        assert!(left.iter().all(|row| row.action == "audit_purge"), "{left:?}");
    }
}
