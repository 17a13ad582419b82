//! The catalog's domain types: versions, what a change asks for, and the
//! queries and records a catalog reads and returns. Plain data, shared by
//! the port, the plans and both engines.

use serde::Serialize;

use crate::error::{Error, Result};
use crate::key::{Metadata, ObjectKey, Tags};
use crate::retention::{Protection, Retention};
use crate::time::Timestamp;
use crate::version::VersionId;

/// One version of a key, as the catalog records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
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
    /// Where its content was moved (`cold`, or a storage class) by a tier
    /// move, a lifecycle transition or its put; `None` where a put leaves it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub placement: Option<String>,
    /// Its retention (in force or past), if it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retention: Option<Retention>,
    /// A legal hold is on: nothing removes the version until it is cleared.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub legal_hold: bool,
}

impl ObjectVersion {
    /// What protects the version from removal.
    pub fn protection(&self) -> Protection {
        Protection {
            retention: self.retention,
            legal_hold: self.legal_hold,
        }
    }
}

/// A comment on a version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
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
    /// Set the retention, or remove it (`None`); see
    /// [`Protection::check_retention_change`] for what is allowed.
    Retention {
        /// The new retention.
        retention: Option<Retention>,
        /// Shorten or remove a governance retention in force (audited).
        bypass_governance: bool,
    },
    /// Set (`true`) or clear the legal hold.
    LegalHold(bool),
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
    /// The fresh copy's wrapped data key, as JSON, in an encrypted store.
    pub data_key: Option<String>,
    /// The hot store holds the fresh copy (these bytes, as stored) instead
    /// of the backend, and the version's manifest waits for the flusher:
    /// `new_path` is where both go then.
    pub hot: Option<bytes::Bytes>,
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
    /// The retention it starts with (see [`crate::retention`]).
    pub retention: Option<Retention>,
    /// Whether it starts under legal hold.
    pub legal_hold: bool,
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
            placement: None,
            // A delete marker has no content to protect, as on S3.
            retention: blob.and(self.retention),
            legal_hold: blob.is_some() && self.legal_hold,
        }
    }
}

/// A version a removal left in place because retention or a legal hold
/// protects it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HeldVersion {
    /// The version.
    pub version: ObjectVersion,
    /// Why, in one line naming the mode and the date.
    pub reason: String,
}

/// What a prune removed and what protection held back.
#[derive(Debug, Clone, Default)]
pub struct Pruned {
    /// The versions removed (or, in a dry run, that would be).
    pub removed: Vec<DeletedVersion>,
    /// The versions the policy would remove that are protected.
    pub held: Vec<HeldVersion>,
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
    /// A blob's content now lies in `placement` (`None`: back where a put
    /// leaves it): recorded on the blob, audited under `action` for `version`.
    Placed {
        /// `tier`, `lifecycle` or `put`.
        action: &'static str,
        /// The blob.
        sha256: String,
        /// `cold`, or a storage class / access tier.
        placement: Option<String>,
        /// The version it was done for.
        version: (ObjectKey, VersionId),
        /// What moved where.
        detail: serde_json::Value,
    },
    /// A restore of a blob's archived content was asked for: pending (and
    /// audited as `restore`) until a poll sees it done.
    RestoreRequested {
        /// The blob.
        sha256: String,
        /// What was asked, for which version.
        request: RestoreRequest,
    },
    /// A blob's data key is wrapped anew (a key rotation): no audit row of
    /// its own (the rotation is audited as a whole).
    DataKey {
        /// The blob.
        sha256: String,
        /// The wrapped data key, as JSON.
        data_key: String,
    },
    /// A setting of the store as a whole (`store_settings`) is set, or
    /// removed (`None`), audited as `action` with `detail` when there is one.
    Setting {
        /// Its name.
        name: &'static str,
        /// Its value (JSON); `None` removes it.
        value: Option<String>,
        /// Only set it if it is not set yet (the first writer wins).
        if_absent: bool,
        /// The audit row's action and detail, if it gets one.
        audit: Option<(&'static str, serde_json::Value)>,
    },
    /// A pending restore of `version`'s content is done: no longer pending,
    /// audited as `restored`, and `object.restored` fired.
    Restored {
        /// The version it was asked for.
        version: Box<ObjectVersion>,
        /// What was asked.
        request: RestoreRequest,
    },
}

/// A restore asked for a version's archived content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct RestoreRequest {
    /// The key.
    pub key: String,
    /// The version.
    pub version_id: String,
    /// When it was asked.
    pub requested_at: Timestamp,
    /// Who asked.
    pub requested_by: String,
    /// For how many days the restored copy stays readable (S3).
    pub days: u32,
    /// How fast: `expedited`, `standard` or `bulk`.
    pub tier: String,
}

/// A restore asked for and not yet seen done.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PendingRestore {
    /// The blob.
    pub sha256: String,
    /// Its path on the backend.
    pub path: String,
    /// What was asked.
    #[serde(flatten)]
    pub request: RestoreRequest,
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
    /// Its wrapped data key, as JSON, in an encrypted store.
    pub data_key: Option<String>,
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
    /// Versions whose content `verify --repair` marked damaged (unreadable until healed).
    pub damaged_versions: u64,
}

/// One row of the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
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
