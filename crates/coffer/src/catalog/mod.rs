//! The `Catalog` port: versions, latest pointers, blob reference counts and
//! the audit log, kept in transactions.
//!
//! For whoever writes or composes a catalog: the [`Catalog`] and [`Outbox`]
//! traits and their contract, the two engines ([`SqliteCatalog`] and, with
//! the cargo feature `catalog-postgres`, `PostgresCatalog`), and the row
//! types they read and write. Every rule (what a commit, prune or purge does)
//! is a pure plan both engines execute, so an engine holds only its SQL.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> coffer::Result<()> {
//! # let dir = tempfile::tempdir().map_err(|e| coffer::Error::new(coffer::ErrorKind::Io, e.to_string()))?;
//! use coffer::ObjectKey;
//! use coffer::catalog::{Catalog, SqliteCatalog};
//!
//! let catalog = SqliteCatalog::open(&dir.path().join("catalog.db")).await?;
//! let key = ObjectKey::new("reports/q1.csv")?;
//! assert!(catalog.version(&key, None).await?.is_none());
//! assert!(catalog.check_consistency().await?.is_empty());
//! # Ok(())
//! # }
//! ```

use std::fmt::{Debug, Display};

use async_trait::async_trait;

use crate::error::Result;
use crate::key::ObjectKey;
use crate::time::Timestamp;
use crate::version::VersionId;

mod bundles;
mod dialect;
mod hot;
mod location;
#[cfg(feature = "catalog-postgres")]
mod migrate;
mod model;
mod multipart;
mod outbox;
mod plan;
#[cfg(feature = "catalog-postgres")]
mod postgres;
mod reads;
mod rows;
mod search;
mod sql;
mod sqlite;
mod tokens;
mod writes;
pub(crate) use self::rows::prefix_upper_bound;

pub use self::bundles::{BundleChange, BundleQuery, BundleRecord, BundleResource, ZipPlacement};
pub use self::hot::{FlushLeftovers, HotBacklog, HotBlob, HotCopy, HotStats};
pub use self::location::CatalogLocation;
pub use self::multipart::{BucketRecord, MultipartChange, MultipartUpload, UploadedPart};

#[cfg(feature = "catalog-postgres")]
pub use self::migrate::{CatalogMigration, TableMigration, migrate_catalog};
pub use self::model::{
    Annotation, AuditEntry, AuditQuery, BlobRecord, BlobRef, CatalogStats, Comment, DeletedVersion, HeldVersion,
    KeyQuery, NewVersion, ObjectVersion, PendingRestore, Precondition, PrunePolicy, Pruned, Repair, RestoreRequest,
    VersionContent, VersionRef,
};
pub use self::outbox::{
    Claim, ClaimRequest, ClaimScope, DeadLetter, HookCounters, Outbox, OutboxCounters, Outcome, Settlement,
};
#[cfg(feature = "catalog-postgres")]
pub use self::postgres::PostgresCatalog;
pub use self::search::{
    MAX_SEARCH_LIMIT, MAX_SEARCH_TEXT_BYTES, MAX_SEARCH_WORD_BYTES, SCORE_DIGITS, SearchHit, SearchPage, SearchPlan,
    SearchPosition, SearchQuery, search_document, search_words,
};
pub use self::sqlite::SqliteCatalog;
pub use self::tokens::{TokenChange, TokenLookup};

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
/// - `annotate` changes a version's tags, comments, retention or legal hold,
///   with its audit row and event, in one transaction. A retention may always
///   be extended; one in force is shortened, relaxed or removed only in
///   governance mode with `bypass_governance` (audited), never in compliance
///   mode (`RetentionLocked`). A delete marker has no protection.
/// - Retention and legal hold win over every removal: `delete_version` of a
///   version under legal hold, or under a retention in force (governance
///   without `bypass_governance`), fails with `RetentionLocked` and changes
///   nothing; `purge_audit` keeps the rows of such versions.
/// - `prune` removes, in one transaction, every version of a key its policy
///   does not keep (never the latest, never a protected one: those are
///   returned as held, with the reason), with an audit row for each, and
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
    /// The database engine: `sqlite` or `postgres`.
    fn engine(&self) -> &'static str;
    /// Record a new version (see the contract).
    async fn commit_version(&self, version: NewVersion) -> Result<ObjectVersion>;
    /// Remove one version for good.
    async fn delete_version(
        &self,
        key: &ObjectKey,
        version_id: &VersionId,
        actor: &str,
        bypass_governance: bool,
    ) -> Result<DeletedVersion>;
    /// One version, or the latest one when `version_id` is `None`.
    async fn version(&self, key: &ObjectKey, version_id: Option<&VersionId>) -> Result<Option<ObjectVersion>>;
    /// The versions of a key, delete markers included, newest first; at most `limit`.
    async fn versions(&self, key: &ObjectKey, limit: Option<usize>) -> Result<Vec<ObjectVersion>>;
    /// Current versions of keys, in key order (see [`KeyQuery`]).
    async fn list_latest(&self, query: &KeyQuery) -> Result<Vec<ObjectVersion>>;
    /// Every version under `prefix`, delete markers included, in (key,
    /// version id) order (each key's oldest first), after `after` (a key and
    /// version id) in that order; at most `limit`. For plans over many
    /// versions, it reads the versions table alone: what a plan decides by
    /// (key, id, delete marker, size, SHA-256, age, protection, and tags
    /// when `tags`). Metadata, comments, ETag, content type, author, blob
    /// path and placement come back empty, and `is_latest` false.
    async fn versions_page(
        &self,
        prefix: &str,
        after: Option<(&str, &str)>,
        limit: usize,
        tags: bool,
    ) -> Result<Vec<ObjectVersion>>;
    /// Set or remove tags, or add a comment, on a version.
    async fn annotate(
        &self,
        key: &ObjectKey,
        version_id: &VersionId,
        annotation: Annotation,
        actor: &str,
    ) -> Result<ObjectVersion>;
    /// Remove the versions of `key` that `policy` does not keep (see the contract).
    async fn prune(&self, key: &ObjectKey, policy: PrunePolicy, actor: &str, dry_run: bool) -> Result<Pruned>;
    /// Record a repair (and apply it, for `MarkDamaged`) with its audit row.
    async fn repair(&self, repair: &Repair, actor: &str) -> Result<()>;
    /// Every version of the keys under `prefix`, with the blob each references.
    async fn version_refs(&self, prefix: &str) -> Result<Vec<VersionRef>>;
    /// A blob by its SHA-256.
    async fn blob(&self, sha256: &str) -> Result<Option<BlobRecord>>;
    /// The restores asked for and not yet seen done, oldest first.
    async fn pending_restores(&self) -> Result<Vec<PendingRestore>>;
    /// A setting of the store as a whole (`store_settings`), if set.
    async fn setting(&self, name: &str) -> Result<Option<String>>;
    /// Up to `limit` blobs with a data key, in hash order after `after`:
    /// each blob's SHA-256 and its wrapped data key (JSON).
    async fn data_keys(&self, after: &str, limit: usize) -> Result<Vec<(String, String)>>;
    /// Where the content of each of the blobs `sha256s` was moved
    /// (`cold`, a storage class), for those that were.
    async fn blob_placements(&self, sha256s: &[String]) -> Result<std::collections::HashMap<String, String>>;
    /// What protects each version whose content is the blob `sha256`.
    async fn blob_protections(&self, sha256: &str) -> Result<Vec<crate::retention::Protection>>;
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
    /// A blob's hot copy, if the hot store holds one.
    async fn hot_copy(&self, sha256: &str) -> Result<Option<HotCopy>>;
    /// Up to `versions` versions whose manifest, and `blobs` contents,
    /// wait for the flusher, oldest first.
    async fn hot_backlog(&self, versions: usize, blobs: usize) -> Result<HotBacklog>;
    /// Record, in one transaction, that the manifests of `versions` (key,
    /// version id) and the contents `blobs` (SHA-256, the path written) are
    /// durable on the backend; returns what was removed meanwhile.
    async fn hot_flushed(&self, versions: &[(String, String)], blobs: &[(String, String)]) -> Result<FlushLeftovers>;
    /// Drop up to `limit` flushed hot copies stored before `before`, oldest
    /// first, in one transaction; returns how many went.
    async fn hot_expire(&self, before: Timestamp, limit: usize) -> Result<u64>;
    /// How many flushed hot copies stored before `before` there are.
    async fn hot_expirable(&self, before: Timestamp) -> Result<u64>;
    /// The hot store's totals.
    async fn hot_stats(&self) -> Result<HotStats>;
    /// The newest versions under `prefix` made since `since` whose content
    /// is held hot, at most `limit`, newest first.
    async fn hot_recent(&self, prefix: &str, since: Timestamp, limit: usize) -> Result<Vec<crate::hot::HotObject>>;
    /// Apply a change to bundles in one transaction (see [`BundleChange`]):
    /// `NotFound` for a bundle that does not exist, `Conflict` for one that
    /// is complete (or a resource name or position taken), changing nothing.
    async fn bundle_change(&self, change: BundleChange) -> Result<()>;
    /// One bundle, if it exists.
    async fn bundle(&self, bundle_id: &str) -> Result<Option<BundleRecord>>;
    /// The bundles `query` selects, in id (creation) order.
    async fn bundles(&self, query: &BundleQuery) -> Result<Vec<BundleRecord>>;
    /// A bundle's resources, in position order.
    async fn bundle_resources(&self, bundle_id: &str) -> Result<Vec<BundleResource>>;
    /// Make or revoke a token with its audit row, in one transaction (see [`TokenChange`]).
    async fn token_change(&self, change: TokenChange) -> Result<()>;
    /// The token `lookup` finds, if any (revoked and expired ones included).
    async fn token(&self, lookup: TokenLookup<'_>) -> Result<Option<crate::access::TokenRecord>>;
    /// Every token, by name.
    async fn tokens(&self) -> Result<Vec<crate::access::TokenRecord>>;
    /// Record or forget a bucket, or start, add a part to or end a multipart
    /// upload, in one transaction (see [`MultipartChange`]); returns the
    /// staged paths no row names any more.
    async fn multipart_change(&self, change: MultipartChange) -> Result<Vec<String>>;
    /// Every bucket recorded empty, by name.
    async fn buckets(&self) -> Result<Vec<BucketRecord>>;
    /// A multipart upload in progress.
    async fn multipart_upload(&self, upload_id: &str) -> Result<Option<MultipartUpload>>;
    /// The multipart uploads in progress of keys under `prefix`, by key.
    async fn multipart_uploads(&self, prefix: &str) -> Result<Vec<MultipartUpload>>;
    /// An upload's staged parts, by number.
    async fn multipart_parts(&self, upload_id: &str) -> Result<Vec<UploadedPart>>;
}
