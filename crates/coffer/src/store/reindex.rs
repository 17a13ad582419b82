//! `reindex` on `Store`: rebuild a catalog from the backend's manifests alone.

use crate::crypto::BlobKey;
use std::collections::{HashMap, HashSet};

use futures::{StreamExt, TryStreamExt};
use serde::Serialize;

use super::Store;
use crate::catalog::{BlobRef, Catalog, NewVersion, Precondition, Repair, VersionContent};
use crate::crypto::keyring::{ENCRYPTION_SETTING, KeyRecord};
use crate::crypto::secrets;
use crate::error::{Error, ErrorKind, Result};
use crate::layout::{self, BLOBS_DIR, MANIFESTS_DIR};

/// What `reindex` rebuilt.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ReindexReport {
    /// Manifests read.
    pub manifests: u64,
    /// Versions recorded in the new catalog (delete markers included).
    pub versions: u64,
    /// Keys among them.
    pub keys: u64,
    /// Manifests that could not be restored, and why.
    pub skipped: Vec<String>,
}

impl Store {
    /// Rebuild the catalog from the backend alone: every manifest becomes a
    /// version in `target` (which must hold no versions yet) with its blob,
    /// metadata, tags and comments; latest pointers follow from the version ids.
    pub async fn reindex_into(&self, target: &dyn Catalog) -> Result<ReindexReport> {
        let existing = target.stats().await?.versions;
        if existing > 0 {
            return Err(Error::conflict(format!(
                "catalog {target} already holds {existing} versions; reindex needs a fresh one"
            )));
        }
        // Versions the hot store holds reach the backend first.
        self.flush_hot().await?;
        let mut blob_paths: HashMap<String, Vec<String>> = HashMap::new();
        let mut blob_list = self.backend.list(BLOBS_DIR).await?;
        while let Some(path) = blob_list.try_next().await? {
            if let Some(sha256) = layout::sha256_in_blob_path(&path) {
                blob_paths.entry(sha256.to_owned()).or_default().push(path);
            }
        }
        let manifests: Vec<String> = self.backend.list(MANIFESTS_DIR).await?.try_collect().await?;
        let sealed = self.sealed_record(&manifests).await?;
        let mut report = ReindexReport {
            manifests: manifests.len() as u64,
            ..ReindexReport::default()
        };
        let blob_paths = &blob_paths;
        let outcomes: Vec<(String, Result<Option<String>>)> = futures::stream::iter(manifests)
            .map(|path| async move {
                let outcome = self.restore_version(&path, blob_paths, target).await;
                (path, outcome)
            })
            .buffer_unordered(64)
            .collect()
            .await;
        let mut keys = HashSet::new();
        for (path, outcome) in outcomes {
            match outcome {
                Ok(Some(key)) => {
                    report.versions += 1;
                    keys.insert(key);
                }
                Ok(None) => {}
                Err(e) if e.kind() == ErrorKind::Catalog => return Err(e),
                Err(e) => report.skipped.push(format!("{path}: {}", e.message())),
            }
        }
        report.keys = keys.len() as u64;
        report.skipped.sort();
        if let Some(record) = sealed {
            let detail = serde_json::json!({ "kek": record.kek, "reindexed": true });
            let setting = Repair::Setting {
                name: ENCRYPTION_SETTING,
                value: Some(serde_json::json!(record).to_string()),
                if_absent: true,
                audit: Some(("encryption", detail)),
            };
            target.repair(&setting, &self.actor).await?;
        }
        Ok(report)
    }

    /// An encrypted store's key record, from the metadata key its sealed
    /// manifests name (the first one read tells); `None` for a store whose
    /// manifests are in clear. The key given must open it, or nothing is
    /// rebuilt.
    async fn sealed_record(&self, manifests: &[String]) -> Result<Option<KeyRecord>> {
        let Some(first) = manifests.first() else {
            return Ok(None);
        };
        let bytes = crate::backend::read_all(self.backend.as_ref(), first).await?;
        let Some(sealed) = std::str::from_utf8(&bytes).ok().filter(|t| secrets::is_sealed(t)) else {
            return Ok(None);
        };
        let metadata = secrets::key_of(sealed)?;
        let kek = metadata.wraps.first().cloned().ok_or_else(|| {
            Error::new(
                ErrorKind::IntegrityMismatch,
                format!("manifest {first} names a key with no wrapping"),
            )
        })?;
        let opens = match self.encryption.require()? {
            Some(encryption) => encryption.opens(&metadata).await,
            None => false,
        };
        if !opens {
            return Err(Error::new(
                ErrorKind::KeyUnavailable,
                format!(
                    "the manifests are sealed under {}, and the key given does not open them",
                    kek.kek
                ),
            ));
        }
        Ok(Some(KeyRecord {
            store_id: metadata.store.clone(),
            kek: kek.kek,
            kdf: kek.kdf,
            since: crate::time::Timestamp::now(),
            metadata_key: metadata,
        }))
    }

    /// Record the version a manifest describes; its key, or `None` for a file
    /// that is not a manifest.
    async fn restore_version(
        &self,
        path: &str,
        blob_paths: &HashMap<String, Vec<String>>,
        target: &dyn Catalog,
    ) -> Result<Option<String>> {
        if !path.ends_with(".json") {
            return Ok(None);
        }
        let manifest = self.read_manifest(path).await?;
        if manifest.format != layout::MANIFEST_FORMAT {
            return Err(Error::invalid_input(format!(
                "unknown manifest format {:?}",
                manifest.format
            )));
        }
        let content = match (&manifest.sha256, manifest.delete_marker) {
            (None, true) => VersionContent::DeleteMarker,
            (Some(sha256), false) => {
                let sealed = manifest.data_key.as_ref();
                let stored = self.pick_blob(sha256, manifest.size, sealed, blob_paths).await?;
                VersionContent::Blob(BlobRef {
                    sha256: sha256.clone(),
                    md5: manifest.md5.clone().unwrap_or_default(),
                    size: manifest.size,
                    new_path: Some(stored),
                    data_key: sealed.map(BlobKey::to_text),
                    hot: None,
                })
            }
            _ => return Err(Error::invalid_input("manifest is neither content nor a delete marker")),
        };
        let key = manifest.key.to_string();
        let version = NewVersion {
            key: manifest.key,
            version_id: manifest.version_id,
            content,
            content_type: manifest.content_type,
            metadata: manifest.metadata,
            created_at: manifest.created_at,
            created_by: manifest.created_by,
            precondition: Precondition::None,
            action: "reindex",
            audit_detail: serde_json::json!({ "manifest": path, "reindexed_by": self.actor }),
            tags: manifest.tags,
            comments: manifest.comments,
            retention: manifest.retention,
            legal_hold: manifest.legal_hold,
        };
        target.commit_version(version).await?;
        Ok(Some(key))
    }

    /// The stored copy of a blob: of several (orphans of old uploads), one
    /// with the right size, and in an encrypted store sealed with the data
    /// key the manifest names.
    async fn pick_blob(
        &self,
        sha256: &str,
        size: u64,
        sealed: Option<&BlobKey>,
        blob_paths: &HashMap<String, Vec<String>>,
    ) -> Result<String> {
        let candidates = blob_paths.get(sha256).map(Vec::as_slice).unwrap_or_default();
        if let [only] = candidates {
            return Ok(only.clone());
        }
        let size = crate::crypto::segments::stored_size(sealed.is_some(), size);
        for path in candidates {
            if self.backend.stat(path).await? != Some(size) {
                continue;
            }
            match sealed {
                Some(key) if !crate::crypto::segments::sealed_with(self.backend.as_ref(), path, key).await? => {}
                _ => return Ok(path.clone()),
            }
        }
        Err(Error::not_found(format!("its blob {sha256} is not on the backend")))
    }
}
