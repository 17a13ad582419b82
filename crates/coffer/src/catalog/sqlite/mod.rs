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
use std::time::Duration;

use async_trait::async_trait;
use sqlx::Connection;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use tokio::sync::{mpsc, oneshot};

use self::inline::InlineReader;
use self::writer::{WriteJob, WriteOp, WriteOutcome, write_loop};
use super::plan::PurgePlan;
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

/// Most changes committed in one transaction.
const MAX_BATCH: usize = 512;
/// How much of the catalog file each connection maps into memory.
const MMAP_BYTES: u64 = 1 << 30;
/// Page cache of each connection, KiB.
const CACHE_KIB: u64 = 32 * 1024;
/// How long a writer waits for another process's transaction before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(60);

mod changes;
mod inline;
mod outbox;
mod search;
mod writer;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// A catalog in one SQLite file.
pub struct SqliteCatalog {
    path: PathBuf,
    readers: SqlitePool,
    /// A key's version, read on the calling thread (the read of every GET).
    inline: InlineReader,
    writer: mpsc::Sender<WriteJob>,
}

pub(super) fn db_error(context: &str, err: sqlx::Error) -> Error {
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
            // A file's connection does not go stale as a server's does; the
            // check would cost every read a second trip to its thread.
            .test_before_acquire(false)
            .connect_with(options)
            .await
            .map_err(|e| db_error("cannot open readers", e))?;
        let (sender, receiver) = mpsc::channel(MAX_BATCH * 2);
        tokio::spawn(write_loop(writer, receiver));
        Ok(SqliteCatalog {
            path: path.to_path_buf(),
            readers,
            inline: InlineReader::new(path),
            writer: sender,
        })
    }

    /// A reader connection, for the shared reads.
    pub(super) async fn reader(&self) -> Result<Conn<'static>> {
        let conn = self.readers.acquire().await.map_err(|e| db_error("connecting", e))?;
        Ok(Conn::from(conn))
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

async fn exec(conn: &mut SqliteConnection, sql: &str) -> Result<()> {
    sqlx::query(sql)
        .execute(&mut *conn)
        .await
        .map(|_| ())
        .map_err(|e| db_error(sql, e))
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
    fn engine(&self) -> &'static str {
        "sqlite"
    }

    async fn commit_version(&self, version: NewVersion) -> Result<ObjectVersion> {
        self.write(WriteOp::Commit(Box::new(version))).await?.into_version()
    }

    async fn delete_version(
        &self,
        key: &ObjectKey,
        version_id: &VersionId,
        actor: &str,
        bypass_governance: bool,
    ) -> Result<DeletedVersion> {
        let op = WriteOp::DeleteVersion {
            key: key.clone(),
            version_id: version_id.clone(),
            actor: actor.to_owned(),
            bypass_governance,
        };
        self.write(op).await?.into_deleted()
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

    async fn prune(&self, key: &ObjectKey, policy: PrunePolicy, actor: &str, dry_run: bool) -> Result<Pruned> {
        let op = WriteOp::Prune {
            key: key.clone(),
            policy,
            actor: actor.to_owned(),
            dry_run,
        };
        self.write(op).await?.into_pruned()
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
        let (older, up_to_id) = reads::audit_extent(self.reader().await?, before.as_micros()).await?;
        if dry_run {
            return Ok(older);
        }
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
        reads::version_refs(self.reader().await?, prefix).await
    }

    async fn version(&self, key: &ObjectKey, version_id: Option<&VersionId>) -> Result<Option<ObjectVersion>> {
        self.inline.version(key.as_str(), version_id.map(VersionId::as_str))
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
        let op = WriteOp::HotFlushed {
            versions: versions.to_vec(),
            blobs: blobs.to_vec(),
        };
        self.write(op).await?.into_leftovers()
    }

    async fn hot_expire(&self, before: Timestamp, limit: usize) -> Result<u64> {
        self.write(WriteOp::HotExpire { before, limit }).await?.into_count()
    }

    async fn bundle_change(&self, change: crate::catalog::BundleChange) -> Result<()> {
        self.write(WriteOp::Bundle(Box::new(change))).await.map(drop)
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
        self.write(WriteOp::Token(Box::new(change))).await.map(drop)
    }

    async fn token(&self, lookup: crate::catalog::TokenLookup<'_>) -> Result<Option<crate::access::TokenRecord>> {
        tokens::token(self.reader().await?, lookup).await
    }

    async fn tokens(&self) -> Result<Vec<crate::access::TokenRecord>> {
        tokens::tokens(self.reader().await?).await
    }

    async fn multipart_change(&self, change: crate::catalog::MultipartChange) -> Result<Vec<String>> {
        self.write(WriteOp::Multipart(Box::new(change))).await?.into_paths()
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
        // On a connection of its own: on a long-lived reader, SQLite's (3.46)
        // FTS5 integrity check has reported "malformed inverted index" after
        // concurrent commits for an index that a new connection finds sound.
        let mut fresh = connect(&self.readers.connect_options(), &self.path).await?;
        let integrity: String = sqlx::query_scalar("PRAGMA integrity_check")
            .fetch_one(&mut fresh)
            .await
            .map_err(|e| db_error("integrity check", e))?;
        drop(fresh);
        let mut problems = Vec::new();
        if integrity != "ok" {
            problems.push(format!("sqlite integrity_check: {integrity}"));
        }
        let own = [
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
        problems.extend(reads::consistency_problems(self.reader().await?, &own).await?);
        Ok(problems)
    }
}

#[cfg(test)]
mod tests;
