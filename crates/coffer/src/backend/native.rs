//! The calls OpenDAL's services do not make, sent to the S3 or Azure API
//! behind an [`OpendalBackend`]: multipart cleanup, storage classes and
//! access tiers, S3 Object Lock, archive restores. Other services have none
//! of these, and answer as the `Backend` trait's defaults do.

use super::opendal::OpendalBackend;
use super::{IncompleteUpload, RestoreState, RestoreTier, no_storage_classes};
use crate::error::Result;
use crate::retention::Protection;

impl OpendalBackend {
    /// Whether this backend signs URLs without OpenDAL's help (Azure with an account key).
    pub(super) fn presigns_itself(&self) -> bool {
        #[cfg(feature = "backend-azblob")]
        if let Some(azure) = &self.azure {
            return azure.can_presign();
        }
        false
    }

    /// Whether this backend's objects have storage classes (S3) or access tiers (Azure).
    pub(super) fn has_storage_classes(&self) -> bool {
        #[cfg(feature = "backend-azblob")]
        if self.azure.is_some() {
            return true;
        }
        #[cfg(feature = "backend-s3")]
        if self.s3.is_some() {
            return true;
        }
        false
    }

    pub(super) async fn native_incomplete_uploads(
        &self,
        cutoff: std::time::SystemTime,
    ) -> Result<Vec<IncompleteUpload>> {
        #[cfg(feature = "backend-s3")]
        if let Some(s3) = &self.s3 {
            return s3.config.incomplete_uploads(cutoff).await;
        }
        let _ = cutoff;
        Ok(Vec::new())
    }

    pub(super) async fn native_abort_upload(&self, upload: &IncompleteUpload) -> Result<()> {
        #[cfg(feature = "backend-s3")]
        if let Some(s3) = &self.s3 {
            return s3.config.abort_upload(upload).await;
        }
        let _ = upload;
        Ok(())
    }

    pub(super) async fn native_set_storage_class(&self, path: &str, class: &str) -> Result<()> {
        #[cfg(feature = "backend-azblob")]
        if let Some(azure) = &self.azure {
            return azure.set_tier(path, super::azure::canonical_tier(class)?).await;
        }
        #[cfg(feature = "backend-s3")]
        if let Some(s3) = &self.s3 {
            return s3.config.set_storage_class(path, class).await;
        }
        let _ = (path, class);
        Err(no_storage_classes(self))
    }

    /// Remove `path` where a plain delete would not: every version of it on
    /// an S3 bucket with Object Lock. False where a plain delete is right.
    pub(super) async fn delete_every_version(&self, path: &str) -> Result<bool> {
        #[cfg(feature = "backend-s3")]
        if let Some(s3) = &self.s3
            && s3.object_lock().await?
        {
            s3.delete_every_version(path).await?;
            return Ok(true);
        }
        let _ = path;
        Ok(false)
    }

    pub(super) fn server_side_encryption_named(&self) -> Option<String> {
        #[cfg(feature = "backend-s3")]
        if let Some(s3) = &self.s3 {
            return s3
                .config
                .server_side_encryption
                .as_ref()
                .map(|sse| match &s3.config.kms_key_id {
                    Some(key) => format!("S3 server-side encryption {sse} with the key {key}"),
                    None => format!("S3 server-side encryption {sse}"),
                });
        }
        #[cfg(feature = "backend-azblob")]
        if self.azure.is_some() {
            return Some(
                "Azure Storage encryption (always on, Microsoft-managed keys unless the account says otherwise)"
                    .to_owned(),
            );
        }
        None
    }

    pub(super) async fn native_guard_named(&self) -> Result<Option<String>> {
        #[cfg(feature = "backend-s3")]
        if let Some(s3) = &self.s3 {
            return s3.native_guard().await;
        }
        Ok(None)
    }

    pub(super) async fn native_lock(&self, path: &str, protection: &Protection) -> Result<bool> {
        #[cfg(feature = "backend-s3")]
        if let Some(s3) = &self.s3 {
            return s3.lock(path, protection).await;
        }
        let _ = (path, protection);
        Ok(false)
    }

    pub(super) async fn native_restore(&self, path: &str, days: u32, tier: RestoreTier) -> Result<RestoreState> {
        #[cfg(feature = "backend-azblob")]
        if let Some(azure) = &self.azure {
            return azure.restore(path, tier).await;
        }
        #[cfg(feature = "backend-s3")]
        if let Some(s3) = &self.s3 {
            return s3.config.restore(path, days, tier).await;
        }
        let _ = (days, tier);
        self.native_restore_status(path).await
    }

    pub(super) async fn native_restore_status(&self, path: &str) -> Result<RestoreState> {
        #[cfg(feature = "backend-azblob")]
        if let Some(azure) = &self.azure {
            return azure.restore_status(path).await;
        }
        #[cfg(feature = "backend-s3")]
        if let Some(s3) = &self.s3 {
            return s3.config.restore_status(path).await;
        }
        let _ = path;
        Ok(RestoreState::NotArchived)
    }
}
