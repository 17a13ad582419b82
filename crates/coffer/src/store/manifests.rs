//! The manifest beside each version: written with the version, rewritten
//! when its tags, comments or protection change (or a key rotation re-wraps
//! its keys), and read back by `verify` and `reindex`. In an encrypted
//! store a manifest is sealed whole with the store's metadata key, so the
//! backend holds no key name, metadata, tag or comment in clear.

use bytes::Bytes;

use super::Store;
use super::write::Durability;
use crate::catalog::{NewVersion, ObjectVersion};
use crate::crypto::{BlobKey, secrets};
use crate::error::{Error, Result};
use crate::layout::{self, MANIFEST_FORMAT, Manifest};
use crate::version::VersionId;

/// How a manifest is written: its blob's data key, and the record of the
/// metadata key to seal it under (the store's when `None`).
#[derive(Default)]
pub(super) struct ManifestKeys<'a> {
    /// The blob's data key, in an encrypted store.
    pub data_key: Option<BlobKey>,
    /// A rotation's record of the metadata key (wrapped by both keys, or the new one).
    pub metadata: Option<&'a BlobKey>,
}

impl Store {
    /// Write a new version's manifest, naming `data_key` (its blob's, in an
    /// encrypted store).
    pub(super) async fn write_manifest(
        &self,
        version: &NewVersion,
        data_key: Option<&BlobKey>,
        durability: Durability,
    ) -> Result<String> {
        self.write_version_manifest(&version.recorded(false, None), data_key.cloned(), durability)
            .await
    }

    /// Write a recorded version's manifest again (after its tags or comments changed,
    /// or when `verify --repair` finds it missing).
    pub(super) async fn rewrite_manifest(&self, version: &ObjectVersion) -> Result<String> {
        let data_key = match &version.sha256 {
            Some(sha256) => self.blob_key(sha256).await?,
            None => None,
        };
        let keys = ManifestKeys {
            data_key,
            metadata: None,
        };
        self.rewrite_manifest_with(version, keys).await
    }

    /// Write a recorded version's manifest again with `keys` (a key rotation's).
    pub(super) async fn rewrite_manifest_with(
        &self,
        version: &ObjectVersion,
        keys: ManifestKeys<'_>,
    ) -> Result<String> {
        let bytes = self.manifest_bytes(&manifest_of(version, keys.data_key), keys.metadata)?;
        // Written beside, then renamed over the old one: a crash mid-write must
        // not leave a version with a torn manifest. (A leftover staged copy is
        // an orphan upload, which `verify --repair` removes.)
        let staged = layout::staging_path(&VersionId::generate());
        self.write_object(&staged, bytes, Durability::Now).await?;
        let path = layout::manifest_path(&version.key, &version.version_id);
        self.backend.rename(&staged, &path).await?;
        Ok(path)
    }

    /// Write the first manifest of a version (one about to be committed, or
    /// one the hot store committed), naming `data_key`, straight to its path.
    pub(super) async fn write_version_manifest(
        &self,
        version: &ObjectVersion,
        data_key: Option<BlobKey>,
        durability: Durability,
    ) -> Result<String> {
        let bytes = self.manifest_bytes(&manifest_of(version, data_key), None)?;
        let path = layout::manifest_path(&version.key, &version.version_id);
        self.write_object(&path, bytes, durability).await?;
        Ok(path)
    }

    /// A manifest as stored: JSON, sealed in an encrypted store (under the
    /// metadata key `metadata` records, the store's when `None`).
    fn manifest_bytes(&self, manifest: &Manifest, metadata: Option<&BlobKey>) -> Result<Bytes> {
        let json = serde_json::to_vec_pretty(manifest)
            .map_err(|e| Error::invalid_input(format!("manifest cannot be encoded: {e}")))?;
        Ok(match self.encryption.require()? {
            Some(encryption) => Bytes::from(encryption.seal_manifest(&json, metadata)?),
            None => Bytes::from(json),
        })
    }

    /// The manifest at `path`, opened if it is sealed.
    pub(super) async fn read_manifest(&self, path: &str) -> Result<Manifest> {
        let bytes = crate::backend::read_all(self.backend.as_ref(), path).await?;
        let json = match std::str::from_utf8(&bytes).ok().filter(|text| secrets::is_sealed(text)) {
            Some(sealed) => {
                let encryption = self.encryption.require()?.ok_or_else(|| {
                    Error::invalid_input(format!("manifest {path} is sealed, and this store has no key"))
                })?;
                encryption.open_manifest(sealed, &format!("manifest {path}")).await?
            }
            None => bytes,
        };
        serde_json::from_slice(&json).map_err(|e| Error::invalid_input(format!("manifest {path} cannot be read: {e}")))
    }
}

/// The manifest of a recorded version, naming `data_key`.
fn manifest_of(version: &ObjectVersion, data_key: Option<BlobKey>) -> Manifest {
    Manifest {
        format: MANIFEST_FORMAT.to_owned(),
        key: version.key.clone(),
        version_id: version.version_id.clone(),
        delete_marker: version.is_delete_marker,
        sha256: version.sha256.clone(),
        md5: version.etag.clone(),
        size: version.size,
        content_type: version.content_type.clone(),
        metadata: version.metadata.clone(),
        created_at: version.created_at,
        created_by: version.created_by.clone(),
        tags: version.tags.clone(),
        comments: version.comments.clone(),
        retention: version.retention,
        legal_hold: version.legal_hold,
        data_key,
    }
}
