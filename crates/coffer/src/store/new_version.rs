//! The new versions changes commit, as the catalog records them: a put's,
//! one sharing another version's content (copy, rollback, undelete,
//! metadata update), and a delete marker; each made now by this store's
//! actor with the retention the store's rules give it.

use super::Store;
use super::options::PutOptions;
use super::write::CheckedPut;
use crate::body::Digests;
use crate::catalog::{BlobRef, NewVersion, ObjectVersion, Precondition, VersionContent};
use crate::error::{Error, ErrorKind, Result};
use crate::key::{Metadata, ObjectKey, Tags};
use crate::time::Timestamp;
use crate::version::VersionId;

impl Store {
    /// The new version a put of content with `digests` records.
    pub(super) fn put_version(&self, checked: CheckedPut, digests: Digests, options: PutOptions) -> NewVersion {
        let sha256 = digests.sha256.clone();
        let created_at = Timestamp::now();
        NewVersion {
            retention: self.retention_for(&checked.key, created_at, options.retention),
            legal_hold: options.legal_hold,
            key: checked.key,
            version_id: VersionId::generate(),
            content: VersionContent::Blob(BlobRef {
                sha256: digests.sha256,
                md5: digests.md5.unwrap_or_default(),
                size: digests.size,
                new_path: None,
                data_key: None,
                hot: None,
            }),
            content_type: Some(checked.content_type),
            metadata: options.metadata,
            created_at,
            created_by: self.actor.clone(),
            precondition: checked.precondition,
            action: "put",
            audit_detail: serde_json::json!({ "size": digests.size, "sha256": sha256 }),
            tags: options.tags,
            comments: Vec::new(),
        }
    }

    /// A new version of `key` holding `from`'s content (no bytes move), with
    /// `from`'s content type and metadata, no tags or comments, made now by
    /// this store's actor with the retention the store's rules give it: what
    /// a copy, a rollback, an undelete and a metadata update commit, each
    /// changing what differs.
    pub(super) fn sharing_content(
        &self,
        key: ObjectKey,
        from: &ObjectVersion,
        action: &'static str,
        audit_detail: serde_json::Value,
    ) -> Result<NewVersion> {
        let (Some(sha256), Some(md5)) = (from.sha256.clone(), from.etag.clone()) else {
            return Err(Error::new(
                ErrorKind::Catalog,
                format!("version {} of {} has no blob", from.version_id, from.key),
            ));
        };
        let created_at = Timestamp::now();
        Ok(NewVersion {
            retention: self.retention_for(&key, created_at, None),
            legal_hold: false,
            key,
            version_id: VersionId::generate(),
            content: VersionContent::Blob(BlobRef {
                sha256,
                md5,
                size: from.size,
                new_path: None,
                data_key: None,
                hot: None,
            }),
            content_type: from.content_type.clone(),
            metadata: from.metadata.clone(),
            created_at,
            created_by: self.actor.clone(),
            precondition: Precondition::None,
            action,
            audit_detail,
            tags: Tags::new(),
            comments: Vec::new(),
        })
    }

    /// A delete marker as `key`'s new version, made now by this store's actor.
    pub(super) fn delete_marker(
        &self,
        key: ObjectKey,
        precondition: Precondition,
        action: &'static str,
        audit_detail: serde_json::Value,
    ) -> NewVersion {
        NewVersion {
            key,
            version_id: VersionId::generate(),
            content: VersionContent::DeleteMarker,
            content_type: None,
            metadata: Metadata::new(),
            created_at: Timestamp::now(),
            created_by: self.actor.clone(),
            precondition,
            action,
            audit_detail,
            tags: Tags::new(),
            comments: Vec::new(),
            retention: None,
            legal_hold: false,
        }
    }
}
