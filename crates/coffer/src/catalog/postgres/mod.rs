//! The shared catalog: PostgreSQL through sqlx, for many coffer processes.
//!
//! Every change runs in a transaction of its own on a pooled connection. Two
//! changes to the same key (from any process) are serialized by a
//! transaction-scoped advisory lock on the key, taken before the key's current
//! version is read; blob reference counts change with single-row updates, so
//! a blob row is only ever removed by the transaction that drops its last
//! reference. Transactions that lose a deadlock or a serialization race are
//! run again.

mod search;
mod transfer;

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sha2::{Digest, Sha256};
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions, Postgres};
use sqlx::{Connection, Executor, Row};

use super::plan::{self, AnnotatePlan, AuditRecord, CommitPlan, CurrentVersion, PURGE_BATCH, PurgePlan, RepairPlan};
use super::rows::{
    AuditRow, BlobRow, VERSION_JOINS, audit_select, bind_params, decode_versions, dry_run_release, list_latest_select,
    to_i64, version_refs_select,
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

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Connections per process; several processes share the server's limit.
const POOL_SIZE: u32 = 8;
/// How long a change waits for a connection before failing.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(30);
/// How often a transaction that lost a deadlock or serialization race is tried.
const ATTEMPTS: u32 = 8;

/// A catalog in a PostgreSQL database.
pub struct PostgresCatalog {
    pool: PgPool,
    /// The URL without its password, for display.
    shown: String,
}

fn db_error(context: &str, err: sqlx::Error) -> Error {
    // Lost races (serialization failure, deadlock) and dropped connections are worth another try.
    let retry = match &err {
        sqlx::Error::Database(db) => matches!(db.code().as_deref(), Some("40001" | "40P01")),
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed => true,
        _ => false,
    };
    let error = Error::new(ErrorKind::Catalog, format!("catalog: {context}: {err}")).with_source(err);
    if retry { error.retryable() } else { error }
}

impl PostgresCatalog {
    /// Connect to the database at `url` (`postgres://user:password@host:port/db`),
    /// creating or migrating the schema if needed.
    pub async fn connect(url: &str) -> Result<Self> {
        let shown = crate::config::redact_url(url);
        let options = PgConnectOptions::from_str(url)
            .map_err(|e| Error::invalid_input(format!("invalid catalog URL {shown}: {e}")))?
            .application_name("coffer");
        // One connection first: it fails at once when the server is down (a
        // pool would retry until its timeout), and it runs the migrations.
        // sqlx takes an advisory lock around them, so processes starting together are safe.
        let mut first = PgConnection::connect_with(&options)
            .await
            .map_err(|e| db_error(&format!("cannot connect to {shown}"), e))?;
        MIGRATOR.run(&mut first).await.map_err(|e| {
            Error::new(ErrorKind::Catalog, format!("catalog migration failed on {shown}: {e}")).with_source(e)
        })?;
        search::backfill(&mut first).await?;
        let _ = first.close().await;
        let pool = PgPoolOptions::new()
            .max_connections(POOL_SIZE)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            // A dead connection shows as an error, which is retried; a ping before each use would cost a round trip.
            .test_before_acquire(false)
            .connect_lazy_with(options);
        Ok(PostgresCatalog { pool, shown })
    }
}

/// Run `$change` (an expression using `$conn: &mut PgConnection`) in a
/// transaction on a connection of `$catalog`'s pool, holding the lock of the
/// key `$lock` (an `Option<&str>`) if any, again while it loses races with
/// other writers. A macro rather than a function taking a closure: the
/// futures of closures over borrowed arguments cannot be proven `Send` yet.
macro_rules! in_transaction {
    ($catalog:expr, $lock:expr, |$conn:ident| $change:expr) => {{
        let mut attempt = 0;
        loop {
            attempt += 1;
            let outcome: Result<_> = async {
                let mut pooled = $catalog.pool.acquire().await.map_err(|e| db_error("connecting", e))?;
                begin(&mut pooled, $lock).await?;
                let $conn: &mut PgConnection = &mut pooled;
                let changed = $change.await;
                finish(&mut pooled, changed).await
            }
            .await;
            match outcome {
                Err(err) if err.is_retryable() && attempt < ATTEMPTS => {
                    tokio::time::sleep(Duration::from_millis(5 * u64::from(attempt))).await;
                }
                outcome => break outcome,
            }
        }
    }};
}

mod outbox;

/// Start a transaction and, for a change to one key, take the key's lock,
/// which serializes it with every other change to that key in any process.
/// One round trip: both go as one simple-protocol message, the lock's number
/// written in (it is an integer computed here, never user text).
async fn begin(conn: &mut PoolConnection<Postgres>, lock: Option<&str>) -> Result<()> {
    let sql = match lock {
        Some(key) => format!("BEGIN; SELECT pg_advisory_xact_lock({})", lock_number(key)),
        None => "BEGIN".to_owned(),
    };
    let conn: &mut PgConnection = conn;
    conn.execute(sql.as_str())
        .await
        .map(|_| ())
        .map_err(|e| db_error("starting a transaction", e))
}

/// Commit if `changed` is `Ok`, else roll back; a connection whose
/// transaction cannot be ended is closed rather than handed out again.
async fn finish<T>(conn: &mut PoolConnection<Postgres>, changed: Result<T>) -> Result<T> {
    let end = if changed.is_ok() { "COMMIT" } else { "ROLLBACK" };
    let ended = {
        let conn: &mut PgConnection = conn;
        conn.execute(end).await
    };
    if let Err(e) = ended {
        conn.close_on_drop();
        return Err(match changed {
            Ok(_) => db_error("committing", e),
            Err(err) => err,
        });
    }
    changed
}

/// The advisory lock number of a key: the first 8 bytes of its SHA-256, the
/// same in every process.
fn lock_number(key: &str) -> i64 {
    let digest = Sha256::digest(key.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(first)
}

/// A version's tags as a JSON object, looked up for the row.
const TAGS_OF_ROW: &str = "COALESCE((SELECT json_object_agg(t.name, t.value) FROM version_tags t \
     WHERE t.key = v.key AND t.version_id = v.version_id), '{}'::json)";
/// A version's comments as a JSON array, oldest first, looked up for the row.
const COMMENTS_OF_ROW: &str = "COALESCE((SELECT json_agg(json_build_object('at', c.at, 'actor', c.actor, \
     'text', c.text) ORDER BY c.seq) FROM version_comments c WHERE c.key = v.key AND c.version_id = v.version_id), \
     '[]'::json)";

/// The aggregate that turns the versions a query selects (as `v`, joined by
/// [`VERSION_JOINS`]) into one JSON array in the shape
/// [`super::rows::JsonVersion`] decodes, as text (`NULL` when no row matched).
fn versions_as_json(tags: &str, comments: &str) -> String {
    format!("json_agg({})::text", version_as_json(tags, comments))
}

/// One version (`v`, joined by [`VERSION_JOINS`]) as the JSON array [`versions_as_json`] collects.
fn version_as_json(tags: &str, comments: &str) -> String {
    format!(
        "json_build_array(v.key, v.version_id, v.is_delete_marker::int, (l.version_id IS NOT NULL)::int, \
         v.size, v.etag, v.blob_sha256, v.content_type, v.metadata, v.created_at, v.created_by, b.locator, \
         b.damaged, {tags}, {comments})"
    )
}

fn decode(json: Option<String>) -> Result<Vec<ObjectVersion>> {
    json.map_or_else(|| Ok(Vec::new()), |json| decode_versions(&json))
}

async fn fetch_version(conn: &mut PgConnection, key: &str, version_id: &str) -> Result<Option<ObjectVersion>> {
    let sql = format!(
        "SELECT {} FROM versions v {VERSION_JOINS} WHERE v.key = $1 AND v.version_id = $2",
        versions_as_json(TAGS_OF_ROW, COMMENTS_OF_ROW)
    );
    let json: Option<String> = sqlx::query_scalar(&sql)
        .bind(key)
        .bind(version_id)
        .fetch_one(&mut *conn)
        .await
        .map_err(|e| db_error("reading a version", e))?;
    Ok(decode(json)?.pop())
}

/// A key's versions, newest first; tags and comments are grouped once for the key.
async fn fetch_versions(conn: &mut PgConnection, key: &str, limit: Option<usize>) -> Result<Vec<ObjectVersion>> {
    let sql = format!(
        "SELECT {} FROM (SELECT * FROM versions WHERE key = $1 ORDER BY version_id DESC LIMIT $2) v {VERSION_JOINS} \
         LEFT JOIN (SELECT version_id, json_object_agg(name, value) AS tags FROM version_tags \
                    WHERE key = $1 GROUP BY version_id) t ON t.version_id = v.version_id \
         LEFT JOIN (SELECT version_id, json_agg(json_build_object('at', at, 'actor', actor, 'text', text) \
                    ORDER BY seq) AS comments FROM version_comments WHERE key = $1 GROUP BY version_id) c \
                   ON c.version_id = v.version_id",
        versions_as_json("COALESCE(t.tags, '{}'::json)", "COALESCE(c.comments, '[]'::json)")
    );
    let json: Option<String> = sqlx::query_scalar(&sql)
        .bind(key)
        .bind(limit.map(|n| to_i64(n as u64)))
        .fetch_one(&mut *conn)
        .await
        .map_err(|e| db_error("listing versions", e))?;
    let mut versions = decode(json)?;
    versions.sort_unstable_by(|a, b| b.version_id.cmp(&a.version_id));
    Ok(versions)
}

/// Record a version. The key is locked first, so the current version read
/// next is still current when the new one is written.
async fn apply_commit(conn: &mut PgConnection, new: &NewVersion) -> Result<ObjectVersion> {
    let key = new.key.as_str();
    let version_id = new.version_id.as_str();
    let blob = match &new.content {
        VersionContent::Blob(blob) => Some(blob),
        VersionContent::DeleteMarker => None,
    };
    // The current version, read with the reference on the blob taken in the
    // same statement: a failed precondition rolls the reference back.
    let (current_id, current_marker, current_etag, blob_path) =
        read_current_and_reference_blob(conn, key, blob, new.created_at).await?;
    let current = current_id.map(|version_id| CurrentVersion {
        version_id,
        is_delete_marker: current_marker.unwrap_or(false),
        etag: current_etag,
    });
    plan::admit_commit(new, current.as_ref())?;
    if let (Some(blob), None) = (blob, &blob_path) {
        return Err(unreferenced_blob_error(conn, key, &blob.sha256).await);
    }
    let (sha256, size, etag) = match blob {
        Some(b) => (Some(b.sha256.as_str()), b.size, Some(b.md5.as_str())),
        None => (None, 0, None),
    };
    let metadata = serde_json::to_string(&new.metadata)
        .map_err(|e| Error::invalid_input(format!("metadata cannot be encoded: {e}")))?;
    let (tag_names, tag_values): (Vec<&str>, Vec<&str>) =
        new.tags.iter().map(|(n, v)| (n.as_str(), v.as_str())).unzip();
    let comment_at: Vec<i64> = new.comments.iter().map(|c| c.at.as_micros()).collect();
    let comment_actors: Vec<&str> = new.comments.iter().map(|c| c.actor.as_str()).collect();
    let comment_texts: Vec<&str> = new.comments.iter().map(|c| c.text.as_str()).collect();
    let CommitPlan {
        committed,
        becomes_latest,
        document,
        events,
    } = plan::plan_commit(new, current.as_ref(), blob_path);
    let document = document.map(|document| search::tsvector_literal(&document));
    let columns = outbox::EventColumns::of(&events);
    // The version, its latest pointer, tags, comments, search document,
    // audit row and events in one statement: one round trip, and foreign keys are
    // checked at its end.
    sqlx::query(
        "WITH v AS (INSERT INTO versions (key, version_id, is_delete_marker, blob_sha256, size, etag, \
                    content_type, metadata, created_at, created_by) \
                    VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9, $10) RETURNING key, version_id), \
         l AS (INSERT INTO latest (key, version_id, is_delete_marker) SELECT key, version_id, $3 FROM v WHERE $11 \
               ON CONFLICT (key) DO UPDATE SET version_id = excluded.version_id, \
               is_delete_marker = excluded.is_delete_marker), \
         t AS (INSERT INTO version_tags (key, version_id, name, value) \
               SELECT v.key, v.version_id, n, val FROM v, unnest($12::text[], $13::text[]) AS tag(n, val)), \
         c AS (INSERT INTO version_comments (key, version_id, seq, at, actor, text) \
               SELECT v.key, v.version_id, ord, at, actor, text FROM v, \
               unnest($14::bigint[], $15::text[], $16::text[]) WITH ORDINALITY AS cm(at, actor, text, ord)), \
         s AS (INSERT INTO version_search (key, version_id, document) \
               SELECT key, version_id, $19::tsvector FROM v WHERE $19 IS NOT NULL), \
         e AS (INSERT INTO outbox (event_id, type, key, at, payload) \
               SELECT * FROM unnest($20::text[], $21::text[], $22::text[], $23::bigint[], $24::text[])) \
         INSERT INTO audit (at, actor, action, key, version_id, detail) \
         SELECT $9, $10, $17, key, version_id, $18::jsonb FROM v",
    )
    .bind(key)
    .bind(version_id)
    .bind(blob.is_none())
    .bind(sha256)
    .bind(to_i64(size))
    .bind(etag)
    .bind(&new.content_type)
    .bind(metadata)
    .bind(new.created_at.as_micros())
    .bind(&new.created_by)
    .bind(becomes_latest)
    .bind(tag_names)
    .bind(tag_values)
    .bind(comment_at)
    .bind(comment_actors)
    .bind(comment_texts)
    .bind(new.action)
    .bind(new.audit_detail.to_string())
    .bind(document)
    .bind(columns.ids)
    .bind(columns.types)
    .bind(columns.keys)
    .bind(columns.times)
    .bind(columns.payloads)
    .execute(&mut *conn)
    .await
    .map_err(|e| match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            Error::conflict(format!("version {version_id} of {key} already exists"))
        }
        _ => db_error("recording the version", e),
    })?;
    Ok(committed)
}

/// The key's current version (id, delete marker, ETag), and where the new
/// version's bytes are once it holds a reference on their blob.
///
/// With a fresh copy (`new_path`), the blob row is created, or its count goes
/// up; a damaged stored copy is replaced by the fresh one (healed). Without
/// one, the blob must be stored and sound, else no path comes back. Each is a
/// single-row change, so a concurrent removal of the last reference either
/// happens before (and the fresh copy makes a new row) or waits for this
/// transaction. The caller holds the key's lock, so the current version read
/// here stays current.
async fn read_current_and_reference_blob(
    conn: &mut PgConnection,
    key: &str,
    blob: Option<&super::BlobRef>,
    created_at: Timestamp,
) -> Result<(Option<String>, Option<bool>, Option<String>, Option<String>)> {
    let reference = match blob {
        None => "SELECT NULL::text AS locator",
        Some(b) if b.new_path.is_some() => {
            "INSERT INTO blobs (sha256, md5, size, locator, refcount, created_at) VALUES ($2, $3, $4, $5, 1, $6) \
             ON CONFLICT (sha256) DO UPDATE SET refcount = blobs.refcount + 1, \
               locator = CASE WHEN blobs.damaged IS NULL THEN blobs.locator ELSE excluded.locator END, \
               damaged = NULL \
             RETURNING locator"
        }
        Some(_) => "UPDATE blobs SET refcount = refcount + 1 WHERE sha256 = $2 AND damaged IS NULL RETURNING locator",
    };
    let sql = format!(
        "WITH b AS ({reference}) SELECT l.version_id, l.is_delete_marker, v.etag, (SELECT locator FROM b) \
         FROM (SELECT 1) one LEFT JOIN latest l ON l.key = $1 \
         LEFT JOIN versions v ON v.key = l.key AND v.version_id = l.version_id"
    );
    let mut query = sqlx::query_as(&sql).bind(key);
    if let Some(blob) = blob {
        query = query.bind(&blob.sha256);
        if let Some(fresh) = &blob.new_path {
            query = query
                .bind(&blob.md5)
                .bind(to_i64(blob.size))
                .bind(fresh)
                .bind(created_at.as_micros());
        }
    }
    query
        .fetch_one(&mut *conn)
        .await
        .map_err(|e| db_error("reading the current version", e))
}

/// Why a version could not reference stored content: it is damaged, or gone.
async fn unreferenced_blob_error(conn: &mut PgConnection, key: &str, sha256: &str) -> Error {
    let damage: Result<Option<Option<String>>, _> = sqlx::query_scalar("SELECT damaged FROM blobs WHERE sha256 = $1")
        .bind(sha256)
        .fetch_optional(&mut *conn)
        .await;
    match damage {
        Err(e) => db_error("reading the blob", e),
        Ok(Some(problem)) => Error::new(
            ErrorKind::IntegrityMismatch,
            format!("the content of {key} is damaged ({})", problem.unwrap_or_default()),
        ),
        Ok(None) => Error::not_found(format!("the content of {key} is no longer stored")),
    }
}

async fn apply_delete_version(
    conn: &mut PgConnection,
    key: &ObjectKey,
    version_id: &VersionId,
    actor: &str,
) -> Result<DeletedVersion> {
    let Some(version) = fetch_version(conn, key.as_str(), version_id.as_str()).await? else {
        return Err(Error::not_found(format!("no version {version_id} of {key}")));
    };
    remove_version(conn, version, "delete_version", actor).await
}

/// Remove `version` (its tags and comments go with it), moving the latest
/// pointer to the key's next newest version if it was the latest, and release
/// its blob. The caller holds the key's lock.
async fn remove_version(
    conn: &mut PgConnection,
    version: ObjectVersion,
    action: &str,
    actor: &str,
) -> Result<DeletedVersion> {
    let key = version.key.as_str();
    let version_id = version.version_id.as_str();
    if version.is_latest {
        sqlx::query("DELETE FROM latest WHERE key = $1")
            .bind(key)
            .execute(&mut *conn)
            .await
            .map_err(|e| db_error("moving the latest pointer", e))?;
    }
    let detail = serde_json::json!({
        "size": version.size, "sha256": version.sha256, "was_delete_marker": version.is_delete_marker,
    });
    sqlx::query(
        "WITH gone AS (DELETE FROM versions WHERE key = $1 AND version_id = $2 RETURNING key, version_id) \
         INSERT INTO audit (at, actor, action, key, version_id, detail) \
         SELECT $3, $4, $5, key, version_id, $6::jsonb FROM gone",
    )
    .bind(key)
    .bind(version_id)
    .bind(Timestamp::now().as_micros())
    .bind(actor)
    .bind(action)
    .bind(detail.to_string())
    .execute(&mut *conn)
    .await
    .map_err(|e| db_error("removing the version", e))?;
    if version.is_latest {
        sqlx::query(
            "INSERT INTO latest (key, version_id, is_delete_marker) \
             SELECT key, version_id, is_delete_marker FROM versions WHERE key = $1 \
             ORDER BY version_id DESC LIMIT 1",
        )
        .bind(key)
        .execute(&mut *conn)
        .await
        .map_err(|e| db_error("moving the latest pointer", e))?;
    }
    let unreferenced_blob = match &version.sha256 {
        None => None,
        Some(sha256) => release_blob(conn, sha256).await?,
    };
    let event = built_in::removed_version(&version, action, actor, Timestamp::now());
    outbox::insert_events(conn, &[event]).await?;
    Ok(DeletedVersion {
        version,
        unreferenced_blob,
    })
}

/// Drop one reference on a blob; the last one takes the row with it, and its
/// path is returned. The row is locked first: two transactions releasing the
/// same blob (for different keys) then take turns, and each sees the count
/// the other left.
async fn release_blob(conn: &mut PgConnection, sha256: &str) -> Result<Option<String>> {
    let failed = |e| db_error("releasing the blob", e);
    let refcount: i64 = sqlx::query_scalar("SELECT refcount FROM blobs WHERE sha256 = $1 FOR UPDATE")
        .bind(sha256)
        .fetch_one(&mut *conn)
        .await
        .map_err(failed)?;
    if refcount > 1 {
        sqlx::query("UPDATE blobs SET refcount = refcount - 1 WHERE sha256 = $1")
            .bind(sha256)
            .execute(&mut *conn)
            .await
            .map_err(failed)?;
        return Ok(None);
    }
    sqlx::query_scalar("DELETE FROM blobs WHERE sha256 = $1 RETURNING locator")
        .bind(sha256)
        .fetch_optional(&mut *conn)
        .await
        .map_err(failed)
}

async fn apply_prune(
    conn: &mut PgConnection,
    key: &ObjectKey,
    policy: PrunePolicy,
    actor: &str,
    dry_run: bool,
) -> Result<Vec<DeletedVersion>> {
    plan::check_prune(key, policy)?;
    let versions = fetch_versions(conn, key.as_str(), None).await?;
    let mut doomed = plan::plan_prune(key, versions, policy)?;
    if dry_run {
        return dry_run_removals(conn, doomed).await;
    }
    // Blobs are released in hash order, so two prunes sharing blobs cannot deadlock.
    doomed.sort_by(|a, b| a.sha256.cmp(&b.sha256));
    let mut removed = Vec::with_capacity(doomed.len());
    for version in doomed {
        removed.push(remove_version(conn, version, "prune", actor).await?);
    }
    removed.sort_by(|a, b| b.version.version_id.cmp(&a.version.version_id));
    Ok(removed)
}

/// What removing `doomed` would release, without removing anything.
async fn dry_run_removals(conn: &mut PgConnection, doomed: Vec<ObjectVersion>) -> Result<Vec<DeletedVersion>> {
    let mut refcounts = std::collections::HashMap::new();
    for sha256 in doomed.iter().filter_map(|v| v.sha256.as_deref()) {
        if !refcounts.contains_key(sha256) {
            let refcount: i64 = sqlx::query_scalar("SELECT refcount FROM blobs WHERE sha256 = $1")
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
    conn: &mut PgConnection,
    key: &ObjectKey,
    version_id: &VersionId,
    annotation: &Annotation,
    actor: &str,
) -> Result<ObjectVersion> {
    let (k, v) = (key.as_str(), version_id.as_str());
    let Some(version) = fetch_version(conn, k, v).await? else {
        return Err(Error::not_found(format!("no version {version_id} of {key}")));
    };
    let AnnotatePlan {
        version,
        comment,
        document,
        audit,
        event,
    } = plan::plan_annotate(version, annotation, actor, Timestamp::now())?;
    if let Annotation::Tags { set, remove } = annotation {
        let (names, values): (Vec<&str>, Vec<&str>) = set.iter().map(|(n, v)| (n.as_str(), v.as_str())).unzip();
        sqlx::query(
            "WITH gone AS (DELETE FROM version_tags WHERE key = $1 AND version_id = $2 AND name = ANY($3)) \
             INSERT INTO version_tags (key, version_id, name, value) \
             SELECT $1, $2, n, val FROM unnest($4::text[], $5::text[]) AS tag(n, val) \
             ON CONFLICT (key, version_id, name) DO UPDATE SET value = excluded.value",
        )
        .bind(k)
        .bind(v)
        .bind(remove)
        .bind(names)
        .bind(values)
        .execute(&mut *conn)
        .await
        .map_err(|e| db_error("tagging the version", e))?;
    }
    if let Some(comment) = &comment {
        sqlx::query(
            "INSERT INTO version_comments (key, version_id, seq, at, actor, text) \
             SELECT $1, $2, COALESCE(MAX(seq), 0) + 1, $3, $4, $5 FROM version_comments \
             WHERE key = $1 AND version_id = $2",
        )
        .bind(k)
        .bind(v)
        .bind(comment.at.as_micros())
        .bind(&comment.actor)
        .bind(&comment.text)
        .execute(&mut *conn)
        .await
        .map_err(|e| db_error("commenting on the version", e))?;
    }
    if let Some(document) = document {
        sqlx::query("UPDATE version_search SET document = $3::tsvector WHERE key = $1 AND version_id = $2")
            .bind(k)
            .bind(v)
            .bind(search::tsvector_literal(&document))
            .execute(&mut *conn)
            .await
            .map_err(|e| db_error("indexing the version", e))?;
    }
    insert_audit(conn, &audit).await?;
    outbox::insert_events(conn, &[event]).await?;
    Ok(version)
}

/// Write one audit row.
async fn insert_audit(conn: &mut PgConnection, row: &AuditRecord) -> Result<()> {
    sqlx::query("INSERT INTO audit (at, actor, action, key, version_id, detail) VALUES ($1, $2, $3, $4, $5, $6::jsonb)")
        .bind(row.at.as_micros())
        .bind(&row.actor)
        .bind(&row.action)
        .bind(&row.key)
        .bind(&row.version_id)
        .bind(row.detail.to_string())
        .execute(&mut *conn)
        .await
        .map(|_| ())
        .map_err(|e| db_error("writing the audit log", e))
}

async fn apply_repair(conn: &mut PgConnection, repair: &Repair, actor: &str) -> Result<()> {
    match plan::plan_repair(repair, actor, Timestamp::now()) {
        // One audit row for each version whose content this is.
        RepairPlan::MarkDamaged {
            sha256,
            problem,
            at,
            actor,
            detail,
        } => sqlx::query(
            "WITH marked AS (UPDATE blobs SET damaged = $1 WHERE sha256 = $2) \
             INSERT INTO audit (at, actor, action, key, version_id, detail) \
             SELECT $3, $4, 'repair', key, version_id, $5::jsonb FROM versions WHERE blob_sha256 = $2",
        )
        .bind(problem)
        .bind(sha256)
        .bind(at.as_micros())
        .bind(actor)
        .bind(detail.to_string())
        .execute(&mut *conn)
        .await
        .map(|_| ())
        .map_err(|e| db_error("recording a repair", e)),
        RepairPlan::Audit(row) => insert_audit(conn, &row).await,
    }
}

/// Remove up to [`PURGE_BATCH`] audit rows of `purge` (older than its line,
/// no newer than its `up_to_id`), oldest first, and record that in an
/// `audit_purge` row. The transaction-local setting lets the
/// `audit_no_delete` trigger pass these deletes only.
async fn apply_purge_audit(conn: &mut PgConnection, purge: &PurgePlan) -> Result<u64> {
    let failed = |e| db_error("purging the audit log", e);
    sqlx::query("SELECT set_config('coffer.audit_purge_before', $1, true)")
        .bind(purge.before.as_micros().to_string())
        .execute(&mut *conn)
        .await
        .map_err(failed)?;
    let removed = sqlx::query(
        "DELETE FROM audit WHERE id IN (SELECT id FROM audit WHERE at < $1 AND id <= $2 ORDER BY id LIMIT $3)",
    )
    .bind(purge.before.as_micros())
    .bind(purge.up_to_id)
    .bind(to_i64(PURGE_BATCH))
    .execute(&mut *conn)
    .await
    .map_err(failed)?
    .rows_affected();
    sqlx::query("SELECT set_config('coffer.audit_purge_before', '', true)")
        .execute(&mut *conn)
        .await
        .map_err(failed)?;
    insert_audit(conn, &purge.record(removed, Timestamp::now())).await?;
    Ok(removed)
}

/// Turn `?` placeholders into PostgreSQL's numbered `$n`, for queries built
/// from optional filters.
fn numbered(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 16);
    let mut n = 0;
    for ch in sql.chars() {
        if ch == '?' {
            n += 1;
            out.push_str(&format!("${n}"));
        } else {
            out.push(ch);
        }
    }
    out
}

impl PostgresCatalog {
    /// Bytes the database takes on disk (tables, indexes, TOAST).
    pub async fn database_size(&self) -> Result<u64> {
        let size: i64 = sqlx::query_scalar("SELECT pg_database_size(current_database())")
            .fetch_one(&self.pool)
            .await
            .map_err(|e| db_error("measuring the database", e))?;
        Ok(u64::try_from(size).unwrap_or(0))
    }
}

impl fmt::Display for PostgresCatalog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown)
    }
}

impl fmt::Debug for PostgresCatalog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresCatalog").field("url", &self.shown).finish()
    }
}

#[async_trait]
impl Catalog for PostgresCatalog {
    async fn commit_version(&self, version: NewVersion) -> Result<ObjectVersion> {
        in_transaction!(self, Some(version.key.as_str()), |conn| apply_commit(conn, &version))
    }

    async fn delete_version(&self, key: &ObjectKey, version_id: &VersionId, actor: &str) -> Result<DeletedVersion> {
        in_transaction!(self, Some(key.as_str()), |conn| apply_delete_version(
            conn, key, version_id, actor
        ))
    }

    async fn annotate(
        &self,
        key: &ObjectKey,
        version_id: &VersionId,
        annotation: Annotation,
        actor: &str,
    ) -> Result<ObjectVersion> {
        in_transaction!(self, Some(key.as_str()), |conn| apply_annotate(
            conn,
            key,
            version_id,
            &annotation,
            actor
        ))
    }

    async fn prune(
        &self,
        key: &ObjectKey,
        policy: PrunePolicy,
        actor: &str,
        dry_run: bool,
    ) -> Result<Vec<DeletedVersion>> {
        in_transaction!(self, Some(key.as_str()), |conn| apply_prune(
            conn, key, policy, actor, dry_run
        ))
    }

    async fn repair(&self, repair: &Repair, actor: &str) -> Result<()> {
        in_transaction!(self, None, |conn| apply_repair(conn, repair, actor))
    }

    async fn purge_audit(
        &self,
        before: Timestamp,
        actor: &str,
        detail: serde_json::Value,
        dry_run: bool,
    ) -> Result<u64> {
        if dry_run {
            let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit WHERE at < $1")
                .bind(before.as_micros())
                .fetch_one(&self.pool)
                .await
                .map_err(|e| db_error("counting audit rows", e))?;
            return Ok(u64::try_from(count).unwrap_or(0));
        }
        // Rows the purge writes itself come after the rows that exist now.
        let up_to_id: Option<i64> = sqlx::query_scalar("SELECT MAX(id) FROM audit")
            .fetch_one(&self.pool)
            .await
            .map_err(|e| db_error("reading the audit log", e))?;
        let purge = PurgePlan::new(before, up_to_id, actor, detail);
        let mut total = 0;
        loop {
            let removed = in_transaction!(self, None, |conn| apply_purge_audit(conn, &purge))?;
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
        let record = plan::read_record(key, version_id, actor, &detail, Timestamp::now());
        in_transaction!(self, None, |conn| insert_audit(conn, &record))
    }

    async fn version_refs(&self, prefix: &str) -> Result<Vec<VersionRef>> {
        let (sql, params) = version_refs_select(prefix);
        let sql = numbered(&sql);
        let rows: Vec<(String, String, Option<String>)> = bind_params!(sqlx::query_as(&sql), params)
            .fetch_all(&self.pool)
            .await
            .map_err(|e| db_error("listing versions", e))?;
        rows.into_iter().map(VersionRef::try_from).collect()
    }

    async fn version(&self, key: &ObjectKey, version_id: Option<&VersionId>) -> Result<Option<ObjectVersion>> {
        let mut conn = self.pool.acquire().await.map_err(|e| db_error("connecting", e))?;
        match version_id {
            Some(id) => fetch_version(&mut conn, key.as_str(), id.as_str()).await,
            None => {
                let sql = format!(
                    "SELECT {} FROM latest l2 \
                     JOIN versions v ON v.key = l2.key AND v.version_id = l2.version_id {VERSION_JOINS} \
                     WHERE l2.key = $1",
                    versions_as_json(TAGS_OF_ROW, COMMENTS_OF_ROW)
                );
                let json: Option<String> = sqlx::query_scalar(&sql)
                    .bind(key.as_str())
                    .fetch_one(&mut *conn)
                    .await
                    .map_err(|e| db_error("reading the latest version", e))?;
                Ok(decode(json)?.pop())
            }
        }
    }

    async fn versions(&self, key: &ObjectKey, limit: Option<usize>) -> Result<Vec<ObjectVersion>> {
        let mut conn = self.pool.acquire().await.map_err(|e| db_error("connecting", e))?;
        fetch_versions(&mut conn, key.as_str(), limit).await
    }

    async fn list_latest(&self, query: &KeyQuery) -> Result<Vec<ObjectVersion>> {
        let (sql, params) = list_latest_select(query, &versions_as_json(TAGS_OF_ROW, COMMENTS_OF_ROW));
        let sql = numbered(&sql);
        let json: Option<String> = bind_params!(sqlx::query_scalar(&sql), params)
            .fetch_one(&self.pool)
            .await
            .map_err(|e| db_error("listing keys", e))?;
        let mut versions = decode(json)?;
        versions.sort_unstable_by(|a, b| a.key.as_str().cmp(b.key.as_str()));
        Ok(versions)
    }

    async fn blob(&self, sha256: &str) -> Result<Option<BlobRecord>> {
        let row: Option<BlobRow> =
            sqlx::query_as("SELECT sha256, size, locator, refcount, damaged FROM blobs WHERE sha256 = $1")
                .bind(sha256)
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| db_error("reading a blob", e))?;
        Ok(row.map(BlobRecord::from))
    }

    async fn blobs(&self) -> Result<Vec<BlobRecord>> {
        let rows: Vec<BlobRow> =
            sqlx::query_as("SELECT sha256, size, locator, refcount, damaged FROM blobs ORDER BY sha256")
                .fetch_all(&self.pool)
                .await
                .map_err(|e| db_error("listing blobs", e))?;
        Ok(rows.into_iter().map(BlobRecord::from).collect())
    }

    async fn stats(&self) -> Result<CatalogStats> {
        let row = sqlx::query(
            "SELECT \
               (SELECT COUNT(*) FROM latest WHERE NOT is_delete_marker), \
               (SELECT COALESCE(SUM(v.size), 0)::bigint FROM latest l JOIN versions v \
                  ON v.key = l.key AND v.version_id = l.version_id WHERE NOT l.is_delete_marker), \
               (SELECT COUNT(*) FROM versions), \
               (SELECT COALESCE(SUM(size), 0)::bigint FROM versions), \
               (SELECT COUNT(*) FROM versions WHERE is_delete_marker), \
               (SELECT COUNT(*) FROM blobs), \
               (SELECT COALESCE(SUM(size), 0)::bigint FROM blobs)",
        )
        .fetch_one(&self.pool)
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
        let (sql, params) = audit_select(query, "detail::text");
        let sql = numbered(&sql);
        let rows: Vec<AuditRow> = bind_params!(sqlx::query_as(&sql), params)
            .fetch_all(&self.pool)
            .await
            .map_err(|e| db_error("reading the audit log", e))?;
        Ok(rows.into_iter().map(AuditEntry::from).collect())
    }

    async fn search(&self, query: &SearchQuery) -> Result<SearchPage> {
        search::search(&self.pool, query).await
    }

    async fn check_consistency(&self) -> Result<Vec<String>> {
        let mut problems = Vec::new();
        let checks: [(&str, &str); 5] = [
            (
                "version references a missing blob",
                "SELECT v.key || ' ' || v.version_id FROM versions v LEFT JOIN blobs b ON b.sha256 = v.blob_sha256 \
                 WHERE v.blob_sha256 IS NOT NULL AND b.sha256 IS NULL",
            ),
            (
                "blob reference count is wrong",
                "SELECT b.sha256 || ' refcount ' || b.refcount || ' but ' || r.n || ' versions' FROM blobs b \
                 LEFT JOIN (SELECT blob_sha256, COUNT(*) AS n FROM versions GROUP BY blob_sha256) r \
                 ON r.blob_sha256 = b.sha256 WHERE b.refcount <> COALESCE(r.n, 0)",
            ),
            (
                "latest pointer is not the newest version",
                "SELECT l.key FROM latest l JOIN (SELECT key, MAX(version_id) AS newest FROM versions GROUP BY key) m \
                 ON m.key = l.key JOIN versions v ON v.key = l.key AND v.version_id = l.version_id \
                 WHERE l.version_id <> m.newest OR l.is_delete_marker <> v.is_delete_marker",
            ),
            (
                "key has versions but no latest pointer",
                "SELECT DISTINCT v.key FROM versions v LEFT JOIN latest l ON l.key = v.key WHERE l.key IS NULL",
            ),
            (
                "version has no search document",
                "SELECT v.key || ' ' || v.version_id FROM versions v LEFT JOIN version_search s \
                 ON s.key = v.key AND s.version_id = v.version_id WHERE NOT v.is_delete_marker AND s.key IS NULL",
            ),
        ];
        for (what, sql) in checks {
            let found: Vec<String> = sqlx::query_scalar(sql)
                .fetch_all(&self.pool)
                .await
                .map_err(|e| db_error("consistency check", e))?;
            problems.extend(found.into_iter().map(|item| format!("{what}: {item}")));
        }
        Ok(problems)
    }
}
