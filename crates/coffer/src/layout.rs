//! Where things live on a backend, and the manifest written beside each version.
//!
//! ```text
//! staging/<id>                              bytes being uploaded
//! blobs/<sha256[..2]>/<sha256>.<id>         content, addressed by its SHA-256
//! manifests/<h[..2]>/<h>.<version_id>.json  one per version; h = SHA-256 of the key
//! ```
//! A blob's name carries the id of the upload that stored it, so a blob
//! deleted after its last reference and the same content stored again never
//! share a path (a late delete of the old one cannot remove the new one).

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::key::{Metadata, ObjectKey};
use crate::time::Timestamp;
use crate::version::VersionId;

/// Format tag of manifests written by this version of coffer.
pub const MANIFEST_FORMAT: &str = "coffer.manifest.v1";

pub(crate) fn staging_path(upload_id: &VersionId) -> String {
    format!("staging/{upload_id}")
}

pub(crate) fn blob_path(sha256: &str, upload_id: &VersionId) -> String {
    format!("blobs/{}/{sha256}.{upload_id}", &sha256[..2])
}

pub(crate) fn manifest_path(key: &ObjectKey, version_id: &VersionId) -> String {
    let h = hex::encode(Sha256::digest(key.as_str().as_bytes()));
    format!("manifests/{}/{h}.{version_id}.json", &h[..2])
}

/// The self-description of one version, stored on the backend before the
/// catalog commits it: enough to rebuild the catalog from the backend alone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Always [`MANIFEST_FORMAT`].
    pub format: String,
    /// The key.
    pub key: ObjectKey,
    /// The version.
    pub version_id: VersionId,
    /// True for a delete marker.
    pub delete_marker: bool,
    /// Hex SHA-256 of the content (its blob is `blobs/<sha256[..2]>/<sha256>.*`).
    pub sha256: Option<String>,
    /// Hex MD5 of the content.
    pub md5: Option<String>,
    /// Length of the content.
    pub size: u64,
    /// MIME type.
    pub content_type: Option<String>,
    /// User metadata.
    pub metadata: Metadata,
    /// Creation time.
    pub created_at: Timestamp,
    /// The actor.
    pub created_by: String,
}
