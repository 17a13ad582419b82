//! The `Catalog` port: versions, latest pointers, blob reference counts and
//! the audit log, kept in transactions.

use std::fmt::{Debug, Display};

use async_trait::async_trait;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::key::{Metadata, ObjectKey};
use crate::time::Timestamp;
use crate::version::VersionId;

mod sqlite;
pub(crate) use self::sqlite::prefix_upper_bound;

pub use self::sqlite::SqliteCatalog;

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

/// Which audit rows to read.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    /// Only rows about this key.
    pub key: Option<ObjectKey>,
    /// At most this many, newest first.
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
/// - `check_consistency` returns a line per problem found (empty when sound).
#[async_trait]
pub trait Catalog: Send + Sync + Debug + Display {
    /// Record a new version (see the contract).
    async fn commit_version(&self, version: NewVersion) -> Result<ObjectVersion>;
    /// Remove one version for good.
    async fn delete_version(&self, key: &ObjectKey, version_id: &VersionId, actor: &str) -> Result<DeletedVersion>;
    /// One version, or the latest one when `version_id` is `None`.
    async fn version(&self, key: &ObjectKey, version_id: Option<&VersionId>) -> Result<Option<ObjectVersion>>;
    /// Every version of a key, delete markers included, newest first.
    async fn versions(&self, key: &ObjectKey) -> Result<Vec<ObjectVersion>>;
    /// Current versions of live keys (not delete markers), in key order.
    async fn list_latest(&self, query: &KeyQuery) -> Result<Vec<ObjectVersion>>;
    /// A blob by its SHA-256.
    async fn blob(&self, sha256: &str) -> Result<Option<BlobRecord>>;
    /// Every blob, for integrity checks.
    async fn blobs(&self) -> Result<Vec<BlobRecord>>;
    /// Totals.
    async fn stats(&self) -> Result<CatalogStats>;
    /// Audit rows, newest first.
    async fn audit(&self, query: &AuditQuery) -> Result<Vec<AuditEntry>>;
    /// Problems with the catalog's own invariants.
    async fn check_consistency(&self) -> Result<Vec<String>>;
}
