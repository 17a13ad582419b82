//! The shared catalog: PostgreSQL through sqlx, for many coffer processes.
//!
//! Every change runs in a transaction of its own on a pooled connection. Two
//! changes to the same key (from any process) are serialized by a
//! transaction-scoped advisory lock on the key, taken before the key's current
//! version is read; blob reference counts change with single-row updates, so
//! a blob row is only ever removed by the transaction that drops its last
//! reference. Transactions that lose a deadlock or a serialization race are
//! run again.

mod changes;
mod search;
mod transfer;

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sha2::{Digest, Sha256};
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions, Postgres};
use sqlx::{Connection, Executor};

use self::changes::{
    apply_annotate, apply_commit, apply_delete_version, apply_prune, apply_purge_audit, apply_repair, insert_audit,
};
use super::plan::{self, PurgePlan};
use super::sql::Conn;
use super::{
    Annotation, AuditEntry, AuditQuery, BlobRecord, Catalog, CatalogStats, DeletedVersion, KeyQuery, NewVersion,
    ObjectVersion, PrunePolicy, Pruned, Repair, SearchPage, SearchQuery, VersionRef,
};
use super::{bundles, hot, multipart, reads, tokens};
use crate::error::{Error, ErrorKind, Result};
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

pub(super) fn db_error(context: &str, err: sqlx::Error) -> Error {
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
        Self::connect_with(url, true).await
    }

    /// Connect to a database that holds a coffer catalog already (migrating
    /// it if it is older); fails with [`ErrorKind::NoStore`], changing
    /// nothing, when the database has none.
    pub async fn connect_existing(url: &str) -> Result<Self> {
        Self::connect_with(url, false).await
    }

    async fn connect_with(url: &str, create: bool) -> Result<Self> {
        let shown = crate::redact::redact_url(url);
        let options = PgConnectOptions::from_str(url)
            .map_err(|e| Error::invalid_input(format!("invalid catalog URL {shown}: {e}")))?
            .application_name("coffer");
        // One connection first: it fails at once when the server is down (a
        // pool would retry until its timeout), and it runs the migrations.
        // sqlx takes an advisory lock around them, so processes starting together are safe.
        let mut first = PgConnection::connect_with(&options)
            .await
            .map_err(|e| db_error(&format!("cannot connect to {shown}"), e))?;
        if !create {
            // sqlx records the migrations it ran in this table: no table, no catalog.
            let migrated: bool = sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
                .fetch_one(&mut first)
                .await
                .map_err(|e| db_error(&format!("cannot read {shown}"), e))?;
            if !migrated {
                let _ = first.close().await;
                return Err(Error::new(
                    ErrorKind::NoStore,
                    format!("no catalog in {shown} (run `coffer init`, or check --catalog)"),
                ));
            }
        }
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
            // The planner's cost of a 1,000-key page (its per-row lookups)
            // passes `jit_above_cost`, and compiling it took 37 ms of a 75 ms
            // page. No catalog query runs long enough to win that back.
            .after_connect(|conn, _| Box::pin(async move { conn.execute("SET jit = off").await.map(drop) }))
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

impl PostgresCatalog {
    /// A pooled connection, for the shared reads.
    pub(super) async fn reader(&self) -> Result<Conn<'static>> {
        let conn = self.pool.acquire().await.map_err(|e| db_error("connecting", e))?;
        Ok(Conn::from(conn))
    }

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
    fn engine(&self) -> &'static str {
        "postgres"
    }

    async fn commit_version(&self, version: NewVersion) -> Result<ObjectVersion> {
        in_transaction!(self, Some(version.key.as_str()), |conn| apply_commit(conn, &version))
    }

    async fn delete_version(
        &self,
        key: &ObjectKey,
        version_id: &VersionId,
        actor: &str,
        bypass_governance: bool,
    ) -> Result<DeletedVersion> {
        in_transaction!(self, Some(key.as_str()), |conn| apply_delete_version(
            conn,
            key,
            version_id,
            actor,
            bypass_governance
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

    async fn prune(&self, key: &ObjectKey, policy: PrunePolicy, actor: &str, dry_run: bool) -> Result<Pruned> {
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
        let (older, up_to_id) = reads::audit_extent(self.reader().await?, before.as_micros()).await?;
        if dry_run {
            return Ok(older);
        }
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
        reads::version_refs(self.reader().await?, prefix).await
    }

    async fn version(&self, key: &ObjectKey, version_id: Option<&VersionId>) -> Result<Option<ObjectVersion>> {
        match version_id {
            Some(id) => reads::version(self.reader().await?, key.as_str(), id.as_str()).await,
            None => reads::latest(self.reader().await?, key.as_str()).await,
        }
    }

    async fn versions(&self, key: &ObjectKey, limit: Option<usize>) -> Result<Vec<ObjectVersion>> {
        reads::versions(self.reader().await?, key.as_str(), limit).await
    }

    async fn list_latest(&self, query: &KeyQuery) -> Result<Vec<ObjectVersion>> {
        reads::list_latest(self.reader().await?, query).await
    }

    async fn versions_page(
        &self,
        prefix: &str,
        after: Option<(&str, &str)>,
        limit: usize,
        tags: bool,
    ) -> Result<Vec<ObjectVersion>> {
        reads::versions_page(self.reader().await?, prefix, after, limit, tags).await
    }

    async fn blob(&self, sha256: &str) -> Result<Option<BlobRecord>> {
        reads::blob(self.reader().await?, sha256).await
    }

    async fn pending_restores(&self) -> Result<Vec<crate::catalog::PendingRestore>> {
        reads::pending_restores(self.reader().await?).await
    }

    async fn setting(&self, name: &str) -> Result<Option<String>> {
        reads::setting(self.reader().await?, name).await
    }

    async fn data_keys(&self, after: &str, limit: usize) -> Result<Vec<(String, String)>> {
        reads::data_keys(self.reader().await?, after, limit).await
    }

    async fn blob_placements(&self, sha256s: &[String]) -> Result<std::collections::HashMap<String, String>> {
        reads::blob_placements(self.reader().await?, sha256s).await
    }

    async fn blob_protections(&self, sha256: &str) -> Result<Vec<crate::retention::Protection>> {
        reads::blob_protections(self.reader().await?, sha256).await
    }

    async fn blobs(&self) -> Result<Vec<BlobRecord>> {
        reads::blobs(self.reader().await?).await
    }

    async fn stats(&self) -> Result<CatalogStats> {
        reads::stats(self.reader().await?).await
    }

    async fn audit(&self, query: &AuditQuery) -> Result<Vec<AuditEntry>> {
        reads::audit(self.reader().await?, query).await
    }

    async fn search(&self, query: &SearchQuery) -> Result<SearchPage> {
        search::search(self.reader().await?, query).await
    }

    async fn hot_copy(&self, sha256: &str) -> Result<Option<crate::catalog::HotCopy>> {
        hot::copy(self.reader().await?, sha256).await
    }

    async fn hot_backlog(&self, versions: usize, blobs: usize) -> Result<crate::catalog::HotBacklog> {
        hot::backlog(self.reader().await?, versions, blobs).await
    }

    async fn hot_expirable(&self, before: Timestamp) -> Result<u64> {
        hot::expirable(self.reader().await?, before).await
    }

    async fn hot_stats(&self) -> Result<crate::catalog::HotStats> {
        hot::stats(self.reader().await?).await
    }

    async fn hot_recent(&self, prefix: &str, since: Timestamp, limit: usize) -> Result<Vec<crate::hot::HotObject>> {
        hot::recent(self.reader().await?, prefix, since, limit).await
    }

    async fn hot_flushed(
        &self,
        versions: &[(String, String)],
        blobs: &[(String, String)],
    ) -> Result<crate::catalog::FlushLeftovers> {
        in_transaction!(self, None, |conn| hot::mark_flushed(Conn::from(conn), versions, blobs))
    }

    async fn hot_expire(&self, before: Timestamp, limit: usize) -> Result<u64> {
        in_transaction!(self, None, |conn| hot::expire_batch(Conn::from(conn), before, limit))
    }

    async fn bundle_change(&self, change: crate::catalog::BundleChange) -> Result<()> {
        in_transaction!(self, None, |conn| bundles::apply(Conn::from(conn), &change))
    }

    async fn bundle(&self, bundle_id: &str) -> Result<Option<crate::catalog::BundleRecord>> {
        bundles::bundle(self.reader().await?, bundle_id).await
    }

    async fn bundles(&self, query: &crate::catalog::BundleQuery) -> Result<Vec<crate::catalog::BundleRecord>> {
        bundles::bundles(self.reader().await?, query).await
    }

    async fn bundle_resources(&self, bundle_id: &str) -> Result<Vec<crate::catalog::BundleResource>> {
        bundles::resources(self.reader().await?, bundle_id).await
    }

    async fn token_change(&self, change: crate::catalog::TokenChange) -> Result<()> {
        in_transaction!(self, None, |conn| tokens::apply(Conn::from(conn), &change))
    }

    async fn token(&self, lookup: crate::catalog::TokenLookup<'_>) -> Result<Option<crate::access::TokenRecord>> {
        tokens::token(self.reader().await?, lookup).await
    }

    async fn tokens(&self) -> Result<Vec<crate::access::TokenRecord>> {
        tokens::tokens(self.reader().await?).await
    }

    async fn multipart_change(&self, change: crate::catalog::MultipartChange) -> Result<Vec<String>> {
        in_transaction!(self, None, |conn| multipart::apply(Conn::from(conn), &change))
    }

    async fn buckets(&self) -> Result<Vec<crate::catalog::BucketRecord>> {
        multipart::buckets(self.reader().await?).await
    }

    async fn multipart_upload(&self, upload_id: &str) -> Result<Option<crate::catalog::MultipartUpload>> {
        multipart::upload(self.reader().await?, upload_id).await
    }

    async fn multipart_uploads(&self, prefix: &str) -> Result<Vec<crate::catalog::MultipartUpload>> {
        multipart::uploads(self.reader().await?, prefix).await
    }

    async fn multipart_parts(&self, upload_id: &str) -> Result<Vec<crate::catalog::UploadedPart>> {
        multipart::parts(self.reader().await?, upload_id).await
    }

    async fn check_consistency(&self) -> Result<Vec<String>> {
        let own = [(
            "version has no search document",
            "SELECT v.key || ' ' || v.version_id FROM versions v LEFT JOIN version_search s \
             ON s.key = v.key AND s.version_id = v.version_id WHERE NOT v.is_delete_marker AND s.key IS NULL",
        )];
        reads::consistency_problems(self.reader().await?, &own).await
    }
}
