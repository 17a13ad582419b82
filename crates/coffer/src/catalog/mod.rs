//! The `Catalog` port: versions, latest pointers, blob reference counts and
//! the audit log, kept in transactions.

use std::fmt::{Debug, Display};
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::key::{Metadata, ObjectKey, Tags};
use crate::time::Timestamp;
use crate::version::VersionId;

#[cfg(feature = "catalog-postgres")]
mod migrate;
mod outbox;
#[cfg(feature = "catalog-postgres")]
mod postgres;
mod rows;
mod search;
mod sqlite;
pub(crate) use self::rows::prefix_upper_bound;

#[cfg(feature = "catalog-postgres")]
pub use self::migrate::{CatalogMigration, TableMigration, migrate_catalog};
pub use self::outbox::{
    Claim, ClaimRequest, ClaimScope, DeadLetter, HookCounters, Outbox, OutboxCounters, Outcome, Settlement,
};
#[cfg(feature = "catalog-postgres")]
pub use self::postgres::PostgresCatalog;
pub use self::search::{
    MAX_SEARCH_LIMIT, MAX_SEARCH_TEXT_BYTES, SCORE_DECIMALS, SearchHit, SearchPage, SearchPlan, SearchPosition,
    SearchQuery, search_document, search_words,
};
pub use self::sqlite::SqliteCatalog;

/// Where a catalog lives, as its URL names it.
#[derive(Clone, PartialEq, Eq)]
pub enum CatalogLocation {
    /// An embedded SQLite file: `sqlite://PATH` (or `sqlite:PATH`).
    Sqlite(PathBuf),
    /// A PostgreSQL database: `postgres://` or `postgresql://` URL.
    Postgres(String),
}

impl CatalogLocation {
    /// Parse a catalog URL.
    pub fn parse(url: &str) -> Result<Self> {
        let shown = crate::config::redact_url(url);
        if let Some(path) = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")) {
            if path.is_empty() {
                return Err(Error::invalid_input("catalog URL sqlite:// names no file"));
            }
            return Ok(CatalogLocation::Sqlite(PathBuf::from(path)));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            if cfg!(feature = "catalog-postgres") {
                return Ok(CatalogLocation::Postgres(url.to_owned()));
            }
            return Err(Error::not_built(
                &format!("catalog {shown}: PostgreSQL"),
                "catalog-postgres",
            ));
        }
        Err(Error::invalid_input(format!(
            "unsupported catalog URL {shown}: expected sqlite://PATH or postgres://USER@HOST/DB"
        )))
    }

    /// Open the catalog, creating (and migrating) it if needed.
    pub async fn open(&self) -> Result<Arc<dyn Catalog>> {
        match self {
            CatalogLocation::Sqlite(path) => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir)
                        .map_err(|e| Error::io(&format!("cannot create {}", dir.display()), e))?;
                }
                Ok(Arc::new(SqliteCatalog::open(path).await?))
            }
            #[cfg(feature = "catalog-postgres")]
            CatalogLocation::Postgres(url) => Ok(Arc::new(PostgresCatalog::connect(url).await?)),
            #[cfg(not(feature = "catalog-postgres"))]
            CatalogLocation::Postgres(_) => Err(Error::not_built("PostgreSQL catalogs", "catalog-postgres")),
        }
    }
}

impl Debug for CatalogLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CatalogLocation::Sqlite(path) => write!(f, "sqlite://{}", path.display()),
            CatalogLocation::Postgres(url) => f.write_str(&crate::config::redact_url(url)),
        }
    }
}

impl Display for CatalogLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        Debug::fmt(self, f)
    }
}

/// One version of a key, as the catalog records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ObjectVersion {
    /// The key.
    pub key: ObjectKey,
    /// The version's id.
    pub version_id: VersionId,
    /// True for a delete marker, which has no content.
    pub is_delete_marker: bool,
    /// True if this is the key's current version.
    pub is_latest: bool,
    /// Length of the content in bytes (0 for a delete marker).
    pub size: u64,
    /// Hex MD5 of the content, as S3 reports it for single-part uploads.
    pub etag: Option<String>,
    /// Hex SHA-256 of the content: its address in the store.
    pub sha256: Option<String>,
    /// MIME type of the content.
    pub content_type: Option<String>,
    /// User metadata.
    pub metadata: Metadata,
    /// When the version was made.
    pub created_at: Timestamp,
    /// Who made it.
    pub created_by: String,
    /// Where the content lives on the backend (a raw client may read it there).
    pub blob_path: Option<String>,
    /// Tags on the version.
    pub tags: Tags,
    /// Comments on the version, oldest first.
    pub comments: Vec<Comment>,
    /// What `verify --repair` found wrong with the content (its bytes are
    /// missing or differ from its hash), if anything. Reads of a damaged
    /// version fail; storing the same content again heals it.
    pub damaged: Option<String>,
}

/// A comment on a version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Comment {
    /// When it was made.
    pub at: Timestamp,
    /// Who made it.
    pub actor: String,
    /// What it says.
    pub text: String,
}

/// A change to a version's annotations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Annotation {
    /// Set these tags (replacing values of the same names) and remove these names.
    Tags {
        /// Tags to set.
        set: Tags,
        /// Tag names to remove.
        remove: Vec<String>,
    },
    /// Add a comment.
    Comment(String),
}

/// Which versions of a key a prune keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrunePolicy {
    /// Keep this many of the newest versions (delete markers count); at least 1,
    /// so the latest version is always kept.
    pub keep: usize,
    /// Keep tagged versions too, however old.
    pub keep_tagged: bool,
}

/// Content a new version points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobRef {
    /// Hex SHA-256 of the content.
    pub sha256: String,
    /// Hex MD5 of the content.
    pub md5: String,
    /// Length in bytes.
    pub size: u64,
    /// Where a fresh durable copy of the content lies, if the writer made one.
    /// `None` means the blob must already be in the catalog (a copy).
    pub new_path: Option<String>,
}

/// What a new version holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VersionContent {
    /// Bytes.
    Blob(BlobRef),
    /// Nothing: the key is deleted as of this version.
    DeleteMarker,
}

/// A condition on the key's current version, checked inside the transaction.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Precondition {
    /// Write unconditionally.
    #[default]
    None,
    /// The current version exists and its ETag is this.
    IfMatch(String),
    /// The key has no current version (`If-None-Match: *`).
    IfNoneMatch,
    /// The key has a current version (used by deletes).
    MustExist,
}

impl Precondition {
    /// Check the condition against the key's live version: `None` when the key
    /// has no version or its latest is a delete marker, else that version's
    /// ETag. Catalogs enforce preconditions with this inside their transaction;
    /// the store also calls it early, to fail before moving any bytes.
    pub fn check(&self, key: &ObjectKey, live_etag: Option<Option<&str>>) -> Result<()> {
        match self {
            Precondition::None => Ok(()),
            Precondition::MustExist if live_etag.is_some() => Ok(()),
            Precondition::MustExist => Err(Error::not_found(format!("no such key: {key}"))),
            Precondition::IfNoneMatch => match live_etag {
                None => Ok(()),
                Some(_) => Err(Error::conflict(format!(
                    "precondition failed: {key} already exists (if-none-match *)"
                ))),
            },
            Precondition::IfMatch(expected) => {
                // ETags are compared with or without the quotes HTTP puts around them.
                let expected = expected.trim().trim_matches('"');
                match live_etag {
                    Some(Some(etag)) if etag == expected => Ok(()),
                    Some(etag) => Err(Error::conflict(format!(
                        "precondition failed: {key} has etag {}, not {expected}",
                        etag.unwrap_or("-")
                    ))),
                    None => Err(Error::conflict(format!(
                        "precondition failed: {key} does not exist (if-match)"
                    ))),
                }
            }
        }
    }
}

/// A version to record.
#[derive(Debug, Clone)]
pub struct NewVersion {
    /// The key.
    pub key: ObjectKey,
    /// The new version's id.
    pub version_id: VersionId,
    /// Its content.
    pub content: VersionContent,
    /// MIME type.
    pub content_type: Option<String>,
    /// User metadata.
    pub metadata: Metadata,
    /// Creation time.
    pub created_at: Timestamp,
    /// The actor.
    pub created_by: String,
    /// Condition on the current version.
    pub precondition: Precondition,
    /// The audit action to record (`put`, `copy`, `delete` ...).
    pub action: &'static str,
    /// Extra audit detail, as JSON.
    pub audit_detail: serde_json::Value,
    /// Tags the version starts with.
    pub tags: Tags,
    /// Comments the version starts with.
    pub comments: Vec<Comment>,
}

impl NewVersion {
    /// The version as a catalog records it: the latest or not, its content at `blob_path`.
    pub(crate) fn recorded(&self, is_latest: bool, blob_path: Option<String>) -> ObjectVersion {
        let blob = match &self.content {
            VersionContent::Blob(blob) => Some(blob),
            VersionContent::DeleteMarker => None,
        };
        ObjectVersion {
            key: self.key.clone(),
            version_id: self.version_id.clone(),
            is_delete_marker: blob.is_none(),
            is_latest,
            size: blob.map_or(0, |b| b.size),
            etag: blob.map(|b| b.md5.clone()),
            sha256: blob.map(|b| b.sha256.clone()),
            content_type: self.content_type.clone(),
            metadata: self.metadata.clone(),
            created_at: self.created_at,
            created_by: self.created_by.clone(),
            blob_path,
            tags: self.tags.clone(),
            comments: self.comments.clone(),
            damaged: None,
        }
    }
}

/// The outcome of deleting one version for good.
#[derive(Debug, Clone)]
pub struct DeletedVersion {
    /// The version that was removed.
    pub version: ObjectVersion,
    /// The blob no version references any more; the caller deletes it from the backend.
    pub unreferenced_blob: Option<String>,
}

/// A page request over the keys' current versions.
#[derive(Debug, Clone, Default)]
pub struct KeyQuery {
    /// Only keys starting with this.
    pub prefix: String,
    /// Only keys sorting after this.
    pub start_after: Option<String>,
    /// Only keys sorting at or after this.
    pub start_at: Option<String>,
    /// At most this many.
    pub limit: usize,
    /// Include keys whose current version is a delete marker.
    pub include_deleted: bool,
    /// The versions that were current at this time instead of the latest
    /// (keys created after it, or deleted at it, are left out).
    pub as_of: Option<Timestamp>,
}

/// A version and the blob it references, for integrity checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionRef {
    /// The key.
    pub key: ObjectKey,
    /// The version.
    pub version_id: VersionId,
    /// The content's SHA-256 (`None` for a delete marker).
    pub sha256: Option<String>,
}

/// What `verify --repair` did, recorded in the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Repair {
    /// Mark a blob's content damaged (missing, truncated or altered).
    MarkDamaged {
        /// The blob.
        sha256: String,
        /// What is wrong with it.
        problem: String,
    },
    /// An object on the backend no version references is about to be removed.
    RemoveOrphan {
        /// Its path on the backend.
        path: String,
    },
    /// A version's missing manifest was written again from the catalog.
    RestoreManifest {
        /// The key.
        key: ObjectKey,
        /// The version.
        version_id: VersionId,
    },
    /// Stored bytes moved without changing any version (a tier move, a
    /// migration to another backend), recorded under `action`.
    BytesMoved {
        /// `tier` or `migrate`.
        action: &'static str,
        /// The version it was done for, if one.
        version: Option<(ObjectKey, VersionId)>,
        /// What moved where.
        detail: serde_json::Value,
    },
}

/// A stored blob.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BlobRecord {
    /// Hex SHA-256.
    pub sha256: String,
    /// Length in bytes.
    pub size: u64,
    /// Path on the backend.
    pub path: String,
    /// Versions referencing it.
    pub refcount: u64,
    /// What is wrong with its bytes, if `verify --repair` found something.
    pub damaged: Option<String>,
}

/// Totals over the catalog.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CatalogStats {
    /// Keys whose current version is not a delete marker.
    pub objects: u64,
    /// Sum of those current versions' sizes.
    pub object_bytes: u64,
    /// All versions, delete markers included.
    pub versions: u64,
    /// Sum of all versions' sizes (what a store without dedup would hold).
    pub version_bytes: u64,
    /// Delete markers among the versions.
    pub delete_markers: u64,
    /// Distinct blobs stored.
    pub blobs: u64,
    /// Sum of the blobs' sizes (what is really stored, after dedup).
    pub blob_bytes: u64,
}

/// One row of the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditEntry {
    /// Position in the log.
    pub id: i64,
    /// When.
    pub at: Timestamp,
    /// Who.
    pub actor: String,
    /// What: `put`, `copy`, `delete`, `delete_version` ...
    pub action: String,
    /// The key concerned.
    pub key: Option<String>,
    /// The version concerned.
    pub version_id: Option<String>,
    /// More about the change.
    pub detail: serde_json::Value,
}

/// Which audit rows to read; the filters combine.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    /// Only rows about this key.
    pub key: Option<ObjectKey>,
    /// Only rows about keys starting with this.
    pub prefix: Option<String>,
    /// Only rows by this actor.
    pub actor: Option<String>,
    /// Only rows of this action (`put`, `delete`, `rollback` ...).
    pub action: Option<String>,
    /// Only rows at or after this time.
    pub since: Option<Timestamp>,
    /// Only rows before this time.
    pub until: Option<Timestamp>,
    /// Only rows after this one in the query's order: ids below it when newest
    /// first, above it when oldest first. Pass the last id of a page to read
    /// the next page (keyset paging).
    pub after_id: Option<i64>,
    /// Oldest first (ascending ids) instead of newest first.
    pub oldest_first: bool,
    /// At most this many.
    pub limit: usize,
}

/// Keeps the metadata of a store in transactions.
///
/// # Contract
/// - `commit_version` checks the precondition against the key's current version,
///   takes a reference on the content's blob (registering `new_path` if the
///   catalog has no blob with that SHA-256 yet; failing with `NotFound` if it has
///   none and no `new_path` is given), records the version, makes it the key's
///   latest if its id is the greatest of the key's ids, and writes an audit row:
///   all in one transaction. A returned `Ok` means committed and durable.
/// - The latest version of a key is always the one with the greatest version id.
/// - `delete_version` removes one version in one transaction with its audit row;
///   if that drops a blob's reference count to zero the blob row goes too and its
///   path is returned, so the caller can delete the bytes.
/// - Reads never see a half-applied change.
/// - `annotate` changes a version's tags or comments, with its audit row, in one transaction.
/// - `prune` removes, in one transaction, every version of a key its policy
///   does not keep (never the latest), with an audit row for each, and
///   returns them as `delete_version` would; with `dry_run` it only returns them.
/// - A blob marked damaged is replaced when a new version brings the same
///   content with a `new_path`: the blob then points at the new copy and is sound.
/// - `check_consistency` returns a line per problem found (empty when sound).
/// - Audit rows are append-only: nothing but `purge_audit` removes them, and
///   nothing changes them.
/// - `audit` returns the rows its query selects, in id order (newest first
///   unless `oldest_first`), starting after `after_id`, at most `limit`.
/// - `purge_audit` removes the audit rows with `at < before` that exist when it
///   starts, in one or more transactions (batches, so that other writers are
///   not held up for long). Each transaction also records one row of action
///   `audit_purge` by `actor`, with no key, whose detail is `detail`'s fields
///   (when it is a JSON object) plus `before` (RFC 3339) and `removed` (the rows
///   that transaction removed); a purge that finds nothing still records one.
///   Those rows are never removed by the purge that wrote them. Returns how
///   many rows were removed. With `dry_run` it removes and records nothing and
///   returns how many rows it would remove.
/// - `record_read` appends one audit row of action `get` (key, version, actor,
///   detail, the current time); `Ok` means committed and durable.
/// - `search` checks the query with [`SearchQuery::plan`] and returns the hits
///   the plan describes: every version not a delete marker (only keys' latest
///   versions unless `all_versions`) whose [`search_document`], as of the last
///   committed change to the version, has a word beginning with each query
///   word, and that passes every filter; best first, ties by key then newest
///   version, with a cursor that continues exactly after the page's last hit.
#[async_trait]
pub trait Catalog: Outbox + Send + Sync + Debug + Display {
    /// Record a new version (see the contract).
    async fn commit_version(&self, version: NewVersion) -> Result<ObjectVersion>;
    /// Remove one version for good.
    async fn delete_version(&self, key: &ObjectKey, version_id: &VersionId, actor: &str) -> Result<DeletedVersion>;
    /// One version, or the latest one when `version_id` is `None`.
    async fn version(&self, key: &ObjectKey, version_id: Option<&VersionId>) -> Result<Option<ObjectVersion>>;
    /// The versions of a key, delete markers included, newest first; at most `limit`.
    async fn versions(&self, key: &ObjectKey, limit: Option<usize>) -> Result<Vec<ObjectVersion>>;
    /// Current versions of keys, in key order (see [`KeyQuery`]).
    async fn list_latest(&self, query: &KeyQuery) -> Result<Vec<ObjectVersion>>;
    /// Set or remove tags, or add a comment, on a version.
    async fn annotate(
        &self,
        key: &ObjectKey,
        version_id: &VersionId,
        annotation: Annotation,
        actor: &str,
    ) -> Result<ObjectVersion>;
    /// Remove the versions of `key` that `policy` does not keep (see the contract).
    async fn prune(
        &self,
        key: &ObjectKey,
        policy: PrunePolicy,
        actor: &str,
        dry_run: bool,
    ) -> Result<Vec<DeletedVersion>>;
    /// Record a repair (and apply it, for `MarkDamaged`) with its audit row.
    async fn repair(&self, repair: &Repair, actor: &str) -> Result<()>;
    /// Every version of the keys under `prefix`, with the blob each references.
    async fn version_refs(&self, prefix: &str) -> Result<Vec<VersionRef>>;
    /// A blob by its SHA-256.
    async fn blob(&self, sha256: &str) -> Result<Option<BlobRecord>>;
    /// Every blob, for integrity checks.
    async fn blobs(&self) -> Result<Vec<BlobRecord>>;
    /// Totals.
    async fn stats(&self) -> Result<CatalogStats>;
    /// Audit rows (see [`AuditQuery`]).
    async fn audit(&self, query: &AuditQuery) -> Result<Vec<AuditEntry>>;
    /// Remove audit rows older than `before`, recording the purge (see the contract).
    async fn purge_audit(
        &self,
        before: Timestamp,
        actor: &str,
        detail: serde_json::Value,
        dry_run: bool,
    ) -> Result<u64>;
    /// Record that `actor` read a version (see the contract).
    async fn record_read(
        &self,
        key: &ObjectKey,
        version_id: &VersionId,
        actor: &str,
        detail: serde_json::Value,
    ) -> Result<()>;
    /// Problems with the catalog's own invariants.
    async fn check_consistency(&self) -> Result<Vec<String>>;
    /// One page of the versions a full-text query finds (see the contract).
    async fn search(&self, query: &SearchQuery) -> Result<SearchPage>;
}
