//! Where things live on a backend, and the manifest written beside each version.
//!
//! ```text
//! staging/<id>                              bytes being uploaded
//! parts/<upload_id>/<n>.<id>                a multipart upload's part
//! blobs/<sha256[..2]>/<sha256>.<id>         content, addressed by its SHA-256
//! manifests/<h[..2]>/<h>.<version_id>.json  one per version; h = SHA-256 of the key
//! ```
//! A blob's name carries the id of the upload that stored it, so a blob
//! deleted after its last reference and the same content stored again never
//! share a path (a late delete of the old one cannot remove the new one).

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::catalog::Comment;
use crate::key::{Metadata, ObjectKey, Tags};
use crate::retention::Retention;
use crate::time::Timestamp;
use crate::version::VersionId;

/// Format tag of manifests written by this version of coffer.
pub const MANIFEST_FORMAT: &str = "coffer.manifest.v1";

pub(crate) fn staging_path(upload_id: &VersionId) -> String {
    format!("{STAGING_DIR}{upload_id}")
}

pub(crate) fn part_path(upload_id: &str, part_number: u32, id: &VersionId) -> String {
    format!("{PARTS_DIR}{upload_id}/{part_number:05}.{id}")
}

pub(crate) fn blob_path(sha256: &str, upload_id: &VersionId) -> String {
    format!("{BLOBS_DIR}{}/{sha256}.{upload_id}", &sha256[..2])
}

/// Where manifests live.
pub(crate) const MANIFESTS_DIR: &str = "manifests/";
/// Where blobs live.
pub(crate) const BLOBS_DIR: &str = "blobs/";
/// Where uploads are staged.
pub(crate) const STAGING_DIR: &str = "staging/";
/// Where multipart uploads' parts are staged.
pub(crate) const PARTS_DIR: &str = "parts/";

pub(crate) fn manifest_path(key: &ObjectKey, version_id: &VersionId) -> String {
    let h = hex::encode(Sha256::digest(key.as_str().as_bytes()));
    format!("{MANIFESTS_DIR}{}/{h}.{version_id}.json", &h[..2])
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
    /// Tags, as of the manifest's last rewrite (tagging rewrites it).
    #[serde(default, skip_serializing_if = "Tags::is_empty")]
    pub tags: Tags,
    /// Comments, as of the manifest's last rewrite (commenting rewrites it).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub comments: Vec<Comment>,
    /// Retention, as of the manifest's last rewrite (a change rewrites it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention: Option<Retention>,
    /// Legal hold, as of the manifest's last rewrite.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub legal_hold: bool,
    /// In an encrypted store, the blob's data key, wrapped (as of the
    /// manifest's last rewrite: a key rotation rewrites it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_key: Option<crate::crypto::BlobKey>,
}

/// The id embedded in the name of a blob, staged upload or manifest path
/// (every one carries a UUIDv7, so its age can be told from its name).
pub(crate) fn id_in_path(path: &str) -> Option<VersionId> {
    let name = path.rsplit('/').next()?;
    let name = name.strip_suffix(".json").unwrap_or(name);
    let id = name.rsplit('.').next()?;
    id.parse().ok()
}

/// The SHA-256 a blob path names, if it is one.
pub(crate) fn sha256_in_blob_path(path: &str) -> Option<&str> {
    let name = path.strip_prefix(BLOBS_DIR)?.rsplit('/').next()?;
    let (sha256, _) = name.split_once('.')?;
    (sha256.len() == 64 && sha256.bytes().all(|b| b.is_ascii_hexdigit())).then_some(sha256)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_hashes_are_read_back_from_paths() {
        let key = ObjectKey::new("a/b.txt").unwrap();
        let id = VersionId::generate();
        let sha = "ab".repeat(32);
        assert_eq!(id_in_path(&manifest_path(&key, &id)), Some(id.clone()));
        assert_eq!(id_in_path(&blob_path(&sha, &id)), Some(id.clone()));
        assert_eq!(id_in_path(&staging_path(&id)), Some(id.clone()));
        assert_eq!(sha256_in_blob_path(&blob_path(&sha, &id)), Some(sha.as_str()));
        assert_eq!(sha256_in_blob_path("blobs/ab/not-a-hash.x"), None);
        assert_eq!(id_in_path("manifests/ab/junk.json"), None);
    }
}
