//! `keys rotate`: every data key, the metadata key and every sealed hook
//! secret wrapped anew under a new key-encryption key, without
//! re-encrypting any content.
//!
//! The rotation is recorded before it starts (`key_rotation`), so one that
//! is killed resumes when run again with the same new key. It keeps every
//! version readable with the key the store names at every moment:
//! 1. The metadata key, then each data key, gets the new wrapping beside
//!    the old one: the manifests of the versions holding a blob first
//!    (sealed under the metadata key wrapped both ways), then the catalog.
//!    Delete markers' manifests follow, and the hook secrets.
//! 2. The store's key record switches to the new key, in one write: the
//!    moment the rotation takes effect.
//! 3. The old wrappings are dropped: from the catalog, every manifest
//!    (rewritten naming the new key only) and the hook secrets; then the
//!    rotation is recorded as finished.
//!
//! Before the switch the old key opens everything; after it, the new one.

use std::collections::HashMap;

use super::Store;
use super::keys::{DATA_KEY_PAGE, RotationReport};
use super::manifests::ManifestKeys;
use crate::catalog::Repair;
use crate::crypto::keyring::{
    ENCRYPTION_SETTING, KeyRecord, LAST_ROTATION_SETTING, ROTATION_SETTING, RotationRecord, read_setting,
};
use crate::crypto::{BlobKey, KeySource, Wrapper, secrets};
use crate::error::{Error, ErrorKind, Result};
use crate::key::ObjectKey;
use crate::time::Timestamp;
use crate::version::VersionId;

/// The versions of the store: those holding each blob, and the delete markers.
struct Versions {
    by_blob: HashMap<String, Vec<(ObjectKey, VersionId)>>,
    markers: Vec<(ObjectKey, VersionId)>,
}

impl Store {
    /// Wrap every key of the store under the key `new` gives, with the
    /// store's current key (the config's) at hand; resumes a rotation to the
    /// same key that was cut short. Audited as `key_rotation` when it starts
    /// and when it finishes.
    pub async fn rotate_keys(&self, new: &KeySource) -> Result<RotationReport> {
        let current = self
            .encryption
            .require()?
            .ok_or_else(|| Error::invalid_input("this store is not encrypted: there is no key to rotate"))?
            .clone();
        let record = read_record(self).await?;
        let old = current.wrapper();
        if old.id() != record.kek {
            return Err(Error::invalid_input(format!(
                "run the rotation with the store's current key ({}) configured, not {}",
                record.kek,
                old.id()
            )));
        }
        let mut report = RotationReport {
            from: record.kek.clone(),
            to: record.kek.clone(),
            rewrapped: 0,
            manifests: 0,
        };
        // A rotation that took effect and was cut short while dropping the
        // old wrappings: finish that first.
        if let Some(rotation) = read_setting::<RotationRecord>(&*self.catalog, ROTATION_SETTING).await?
            && rotation.to == record.kek
        {
            report.from.clone_from(&rotation.from);
            self.drop_old_wrappings(rotation, old, &record, &mut report).await?;
            if new.resolve(record.kdf.as_deref()).await?.id() == record.kek {
                return Ok(report);
            }
            report.from.clone_from(&record.kek);
        }
        let (rotation, new) = self.start_rotation(&record, new).await?;
        report.to = new.id().to_owned();
        // 1. Both wrappings everywhere, the metadata key first.
        let record = self.wrap_metadata_key(record, old, &new).await?;
        let versions = self.versions_by_blob().await?;
        loop {
            // Until a pass finds every data key wrapped (puts go on meanwhile).
            let before = report.rewrapped;
            self.rewrap_pass(old, &new, &versions, &record.metadata_key, &mut report)
                .await?;
            if report.rewrapped == before {
                break;
            }
        }
        for (key, version_id) in &versions.markers {
            self.rewrite_recorded(key, version_id, None, &record.metadata_key, &mut report)
                .await?;
        }
        self.rewrap_hook_secrets(old, &new, true).await?;
        // 2. The switch: from here on the store's key is the new one.
        let switched = KeyRecord {
            kek: new.id().to_owned(),
            kdf: new.kdf().map(str::to_owned),
            since: Timestamp::now(),
            metadata_key: only_by(&record.metadata_key, &new),
            store_id: record.store_id,
        };
        self.set_setting(ENCRYPTION_SETTING, Some(&switched), None).await?;
        // 3. The old wrappings go.
        self.drop_old_wrappings(rotation, &new, &switched, &mut report).await?;
        Ok(report)
    }

    /// The rotation under way to `new`, or a new one recorded now.
    async fn start_rotation(&self, record: &KeyRecord, new: &KeySource) -> Result<(RotationRecord, Wrapper)> {
        if let Some(rotation) = read_setting::<RotationRecord>(&*self.catalog, ROTATION_SETTING).await? {
            let wrapper = new.resolve(rotation.to_kdf.as_deref()).await?;
            if wrapper.id() != rotation.to {
                return Err(Error::invalid_input(format!(
                    "a rotation to {} is under way: run `keys rotate` again with that key to finish it",
                    rotation.to
                )));
            }
            return Ok((rotation, wrapper));
        }
        let wrapper = new.resolve(None).await?;
        if wrapper.id() == record.kek {
            return Err(Error::invalid_input(format!(
                "{new} is the store's key already ({})",
                record.kek
            )));
        }
        let rotation = RotationRecord {
            from: record.kek.clone(),
            to: wrapper.id().to_owned(),
            to_kdf: wrapper.kdf().map(str::to_owned),
            started_at: Timestamp::now(),
            finished_at: None,
            data_keys: 0,
        };
        let detail = serde_json::json!({ "phase": "started", "from": rotation.from, "to": rotation.to });
        self.set_setting(ROTATION_SETTING, Some(&rotation), Some(detail))
            .await?;
        Ok((rotation, wrapper))
    }

    /// The store's record with its metadata key wrapped by `new` too.
    async fn wrap_metadata_key(&self, mut record: KeyRecord, old: &Wrapper, new: &Wrapper) -> Result<KeyRecord> {
        let metadata = &mut record.metadata_key;
        if metadata.wrap_by(new.id()).is_none() {
            let wrap = metadata.wrap_by(old.id()).ok_or_else(|| {
                Error::new(
                    ErrorKind::KeyUnavailable,
                    "the store's metadata key is not wrapped by its key",
                )
            })?;
            let fresh = new.rewrap(old, wrap, &metadata.id, &metadata.store).await?;
            metadata.wraps.push(fresh);
            self.set_setting(ENCRYPTION_SETTING, Some(&record), None).await?;
        }
        Ok(record)
    }

    /// Give every data key without a wrapping by `new` one: its versions'
    /// manifests first, then the catalog.
    async fn rewrap_pass(
        &self,
        old: &Wrapper,
        new: &Wrapper,
        versions: &Versions,
        metadata: &BlobKey,
        report: &mut RotationReport,
    ) -> Result<()> {
        let mut after = String::new();
        loop {
            let page = self.data_key_page(&mut after).await?;
            for (sha256, key) in &page {
                let mut key = key.clone();
                if key.wrap_by(new.id()).is_some() {
                    continue;
                }
                let wrap = key.wrap_by(old.id()).ok_or_else(|| {
                    Error::new(
                        ErrorKind::KeyUnavailable,
                        format!(
                            "the data key of blob {sha256} is not wrapped by the store's key {}",
                            old.id()
                        ),
                    )
                })?;
                let fresh = new.rewrap(old, wrap, &key.id, &key.store).await?;
                key.wraps.push(fresh);
                for (object, version_id) in versions.by_blob.get(sha256).into_iter().flatten() {
                    self.rewrite_recorded(object, version_id, Some(key.clone()), metadata, report)
                        .await?;
                }
                self.record_data_key(sha256, &key).await?;
                report.rewrapped += 1;
            }
            if page.len() < DATA_KEY_PAGE {
                return Ok(());
            }
        }
    }

    /// Record a blob's data key with the wrappings it has now.
    async fn record_data_key(&self, sha256: &str, key: &BlobKey) -> Result<()> {
        let repair = Repair::DataKey {
            sha256: sha256.to_owned(),
            data_key: key.to_text(),
        };
        self.catalog.repair(&repair, &self.actor).await
    }

    /// Rewrite the manifest of a recorded version (if the catalog still
    /// holds it) naming `data_key` and sealed under `metadata`.
    async fn rewrite_recorded(
        &self,
        key: &ObjectKey,
        version_id: &VersionId,
        data_key: Option<BlobKey>,
        metadata: &BlobKey,
        report: &mut RotationReport,
    ) -> Result<()> {
        if let Some(version) = self.catalog.version(key, Some(version_id)).await? {
            let keys = ManifestKeys {
                data_key,
                metadata: Some(metadata),
            };
            self.rewrite_manifest_with(&version, keys).await?;
            report.manifests += 1;
        }
        Ok(())
    }

    /// Give the data key of every sealed hook secret a wrapping by `new`,
    /// keeping the old one (`keep_old`, while the rotation runs) or not.
    async fn rewrap_hook_secrets(&self, old: &Wrapper, new: &Wrapper, keep_old: bool) -> Result<()> {
        for mut hook in self.catalog.hooks().await? {
            let mut changed = false;
            for secret in hook.spec.secrets_mut() {
                if !secrets::is_sealed(secret) {
                    continue;
                }
                let mut key = secrets::key_of(secret)?;
                if key.wrap_by(new.id()).is_none() {
                    let wrap = key.wrap_by(old.id()).ok_or_else(|| {
                        Error::new(
                            ErrorKind::KeyUnavailable,
                            format!(
                                "a secret of hook {} is not wrapped by the store's key {}",
                                hook.name,
                                old.id()
                            ),
                        )
                    })?;
                    let fresh = new.rewrap(old, wrap, &key.id, &key.store).await?;
                    key.wraps.push(fresh);
                    changed = true;
                }
                if !keep_old && key.wraps.len() > 1 {
                    key.wraps.retain(|w| w.kek == new.id());
                    changed = true;
                }
                *secret = secrets::with_key(secret, key)?;
            }
            if changed {
                self.catalog.save_hook(&hook, true).await?;
            }
        }
        self.hooks.forget_definitions();
        Ok(())
    }

    /// After the switch to `new` (the store's `record` now): drop every
    /// other wrapping of the data keys, manifests and hook secrets, then
    /// record the rotation as finished.
    async fn drop_old_wrappings(
        &self,
        mut rotation: RotationRecord,
        new: &Wrapper,
        record: &KeyRecord,
        report: &mut RotationReport,
    ) -> Result<()> {
        let mut after = String::new();
        let mut total = 0;
        loop {
            let page = self.data_key_page(&mut after).await?;
            for (sha256, key) in &page {
                let mut key = key.clone();
                total += 1;
                if key.wraps.len() > 1 {
                    key.wraps.retain(|w| w.kek == new.id());
                    self.record_data_key(sha256, &key).await?;
                }
            }
            if page.len() < DATA_KEY_PAGE {
                break;
            }
        }
        let metadata = only_by(&record.metadata_key, new);
        for version in self.catalog.version_refs("").await? {
            let data_key = match &version.sha256 {
                Some(sha256) => self.blob_key(sha256).await?,
                None => None,
            };
            self.rewrite_recorded(&version.key, &version.version_id, data_key, &metadata, report)
                .await?;
        }
        self.rewrap_hook_secrets(new, new, false).await?;
        rotation.finished_at = Some(Timestamp::now());
        rotation.data_keys = total;
        self.set_setting(LAST_ROTATION_SETTING, Some(&rotation), None).await?;
        let detail = serde_json::json!({
            "phase": "finished", "from": rotation.from, "to": rotation.to, "data_keys": total,
        });
        self.set_setting::<RotationRecord>(ROTATION_SETTING, None, Some(detail))
            .await
    }

    async fn set_setting<T: serde::Serialize>(
        &self,
        name: &'static str,
        value: Option<&T>,
        audit: Option<serde_json::Value>,
    ) -> Result<()> {
        let setting = Repair::Setting {
            name,
            value: value.map(|v| serde_json::json!(v).to_string()),
            if_absent: false,
            audit: audit.map(|detail| ("key_rotation", detail)),
        };
        self.catalog.repair(&setting, &self.actor).await
    }

    /// Every version: those holding each blob, and the delete markers.
    async fn versions_by_blob(&self) -> Result<Versions> {
        let mut versions = Versions {
            by_blob: HashMap::new(),
            markers: Vec::new(),
        };
        for version in self.catalog.version_refs("").await? {
            let pair = (version.key, version.version_id);
            match version.sha256 {
                Some(sha256) => versions.by_blob.entry(sha256).or_default().push(pair),
                None => versions.markers.push(pair),
            }
        }
        Ok(versions)
    }
}

/// The store's key record.
async fn read_record(store: &Store) -> Result<KeyRecord> {
    read_setting::<KeyRecord>(&*store.catalog, ENCRYPTION_SETTING)
        .await?
        .ok_or_else(|| Error::new(ErrorKind::Catalog, "the store's encryption record is missing"))
}

/// `key` with only its wrapping by `by`.
fn only_by(key: &BlobKey, by: &Wrapper) -> BlobKey {
    BlobKey {
        wraps: key.wraps.iter().filter(|w| w.kek == by.id()).cloned().collect(),
        ..key.clone()
    }
}
