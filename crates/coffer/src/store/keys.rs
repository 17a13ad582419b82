//! The store's keys: what `keys status` shows, and `keys rotate`, which
//! wraps every data key anew under a new key-encryption key without
//! re-encrypting any content.
//!
//! A rotation is recorded before it starts (`key_rotation`), so a rotation
//! that is killed resumes where it stopped when run again with the same new
//! key. Each blob's data key gets the new wrapping beside the old one: the
//! manifests of the versions holding the blob are rewritten first (naming
//! the new wrapping only), then the catalog's record. Until the rotation
//! finishes, the old key opens every blob; the new key opens those done.
//! Finishing drops the old wrappings and makes the new key the store's.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use super::Store;
use crate::catalog::Repair;
use crate::crypto::keyring::{
    ENCRYPTION_SETTING, KeyRecord, LAST_ROTATION_SETTING, ROTATION_SETTING, RotationRecord, read_setting,
};
use crate::crypto::{BlobKey, KeySource, Wrapper, secrets};
use crate::error::{Error, ErrorKind, Result};
use crate::key::ObjectKey;
use crate::time::Timestamp;
use crate::version::VersionId;

/// Data keys read per catalog page.
const PAGE: usize = 500;

/// What `keys status` shows.
#[derive(Debug, Clone, Default, Serialize)]
pub struct KeyStatus {
    /// Whether the store encrypts its content.
    pub encrypted: bool,
    /// The store's key-encryption key: its id (`key:…`, `passphrase:…`, `kms:…`).
    pub key_id: Option<String>,
    /// Its kind: `key`, `passphrase` or `kms`.
    pub wrapper: Option<String>,
    /// Whether the key given (the config's) opens the store; why not else.
    pub key_error: Option<String>,
    /// How many data keys each key-encryption key wraps.
    pub data_keys: BTreeMap<String, u64>,
    /// A rotation under way: the key it moves to, and since when.
    pub rotation: Option<RotationStatus>,
    /// The last finished rotation.
    pub last_rotation: Option<RotationStatus>,
}

/// A key rotation, under way or finished.
#[derive(Debug, Clone, Serialize)]
pub struct RotationStatus {
    /// The old key's id.
    pub from: String,
    /// The new key's id.
    pub to: String,
    /// When it started.
    pub started_at: Timestamp,
    /// When it finished.
    pub finished_at: Option<Timestamp>,
    /// Data keys wrapped anew.
    pub data_keys: u64,
}

impl From<RotationRecord> for RotationStatus {
    fn from(r: RotationRecord) -> Self {
        RotationStatus {
            from: r.from,
            to: r.to,
            started_at: r.started_at,
            finished_at: r.finished_at,
            data_keys: r.data_keys,
        }
    }
}

/// What a finished rotation did.
#[derive(Debug, Clone, Serialize)]
pub struct RotationReport {
    /// The old key's id.
    pub from: String,
    /// The new key's id.
    pub to: String,
    /// Data keys wrapped anew by this run (a resumed run counts its own).
    pub rewrapped: u64,
    /// Manifests rewritten by this run.
    pub manifests: u64,
}

impl Store {
    /// What `info` says of client-side encryption: the cipher, the store's
    /// key and whether the key given opens it.
    pub(super) async fn encryption_summary(&self) -> Result<Option<String>> {
        let Some(record) = read_setting::<KeyRecord>(&*self.catalog, ENCRYPTION_SETTING).await? else {
            return Ok(None);
        };
        let state = match self.encryption.require() {
            Ok(_) => "the key given opens it".to_owned(),
            Err(e) => e.message().to_owned(),
        };
        Ok(Some(format!(
            "client-side AES-256-GCM (64 KiB segments), data keys wrapped by {}; {state}",
            record.kek
        )))
    }

    /// The store's keys (see [`KeyStatus`]).
    pub async fn key_status(&self) -> Result<KeyStatus> {
        let Some(record) = read_setting::<KeyRecord>(&*self.catalog, ENCRYPTION_SETTING).await? else {
            return Ok(KeyStatus::default());
        };
        let mut data_keys = BTreeMap::new();
        let mut after = String::new();
        loop {
            let page = self.catalog.data_keys(&after, PAGE).await?;
            for (sha256, text) in &page {
                for wrap in BlobKey::from_text(text)?.wraps {
                    *data_keys.entry(wrap.kek).or_insert(0) += 1;
                }
                after.clone_from(sha256);
            }
            if page.len() < PAGE {
                break;
            }
        }
        let key_error = self.encryption.require().err().map(|e| e.message().to_owned());
        Ok(KeyStatus {
            encrypted: true,
            wrapper: record.kek.split(':').next().map(str::to_owned),
            key_id: Some(record.kek),
            key_error,
            data_keys,
            rotation: read_setting::<RotationRecord>(&*self.catalog, ROTATION_SETTING)
                .await?
                .map(Into::into),
            last_rotation: read_setting::<RotationRecord>(&*self.catalog, LAST_ROTATION_SETTING)
                .await?
                .map(Into::into),
        })
    }

    /// Wrap every data key of the store under the key `new` gives, with the
    /// store's current key (the config's) at hand; resumes a rotation to the
    /// same key that was cut short. Audited as `key_rotation` when it starts
    /// and when it finishes.
    ///
    /// Until every data key (and sealed hook secret) has both wrappings the
    /// store's key stays the old one; then the store's record switches to
    /// the new key in one write, the moment the rotation takes effect; then
    /// the old wrappings are dropped. A run killed before the switch leaves
    /// every blob readable with the old key, and one killed after it every
    /// blob readable with the new key; either way running it again finishes.
    pub async fn rotate_keys(&self, new: &KeySource) -> Result<RotationReport> {
        let current = self
            .encryption
            .require()?
            .ok_or_else(|| Error::invalid_input("this store is not encrypted: there is no key to rotate"))?
            .clone();
        let record = read_setting::<KeyRecord>(&*self.catalog, ENCRYPTION_SETTING)
            .await?
            .ok_or_else(|| Error::new(ErrorKind::Catalog, "the store's encryption record is missing"))?;
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
            self.drop_old_wrappings(rotation, old).await?;
            if new.resolve(record.kdf.as_deref()).await?.id() == record.kek {
                return Ok(report);
            }
            report.from.clone_from(&record.kek);
        }
        let (rotation, new) = self.start_rotation(&record, new).await?;
        report.to = new.id().to_owned();
        let holders = self.versions_by_blob().await?;
        // Until a pass finds every data key wrapped (puts go on meanwhile).
        loop {
            let before = report.rewrapped;
            self.rewrap_pass(old, &new, &holders, &mut report).await?;
            if report.rewrapped == before {
                break;
            }
        }
        self.rewrap_hook_secrets(old, &new, true).await?;
        // The switch: from here on the store's key is the new one.
        let switched = KeyRecord {
            store_id: record.store_id,
            kek: new.id().to_owned(),
            kdf: new.kdf().map(str::to_owned),
            since: Timestamp::now(),
        };
        self.set_setting(ENCRYPTION_SETTING, Some(&switched), None).await?;
        self.drop_old_wrappings(rotation, &new).await?;
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

    /// Give every data key without a wrapping by `new` one: its versions'
    /// manifests first, then the catalog.
    async fn rewrap_pass(
        &self,
        old: &Wrapper,
        new: &Wrapper,
        holders: &HashMap<String, Vec<(ObjectKey, VersionId)>>,
        report: &mut RotationReport,
    ) -> Result<()> {
        let mut after = String::new();
        loop {
            let page = self.catalog.data_keys(&after, PAGE).await?;
            for (sha256, text) in &page {
                after.clone_from(sha256);
                let mut key = BlobKey::from_text(text)?;
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
                let only_new = BlobKey {
                    wraps: vec![fresh.clone()],
                    ..key.clone()
                };
                for (object, version_id) in holders.get(sha256).into_iter().flatten() {
                    if let Some(version) = self.catalog.version(object, Some(version_id)).await? {
                        self.rewrite_manifest_with(&version, Some(only_new.clone())).await?;
                        report.manifests += 1;
                    }
                }
                key.wraps.push(fresh);
                let data_key = key.to_text();
                self.catalog
                    .repair(
                        &Repair::DataKey {
                            sha256: sha256.clone(),
                            data_key,
                        },
                        &self.actor,
                    )
                    .await?;
                report.rewrapped += 1;
            }
            if page.len() < PAGE {
                return Ok(());
            }
        }
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

    /// After the switch to `new`: drop every other wrapping of the data keys
    /// and hook secrets, then record the rotation as finished.
    async fn drop_old_wrappings(&self, mut rotation: RotationRecord, new: &Wrapper) -> Result<()> {
        let mut after = String::new();
        let mut total = 0;
        loop {
            let page = self.catalog.data_keys(&after, PAGE).await?;
            for (sha256, text) in &page {
                after.clone_from(sha256);
                let mut key = BlobKey::from_text(text)?;
                total += 1;
                if key.wraps.len() > 1 {
                    key.wraps.retain(|w| w.kek == new.id());
                    let data_key = key.to_text();
                    self.catalog
                        .repair(
                            &Repair::DataKey {
                                sha256: sha256.clone(),
                                data_key,
                            },
                            &self.actor,
                        )
                        .await?;
                }
            }
            if page.len() < PAGE {
                break;
            }
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

    async fn set_setting<T: Serialize>(
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

    /// The versions holding each blob.
    async fn versions_by_blob(&self) -> Result<HashMap<String, Vec<(ObjectKey, VersionId)>>> {
        let mut holders: HashMap<String, Vec<(ObjectKey, VersionId)>> = HashMap::new();
        for version in self.catalog.version_refs("").await? {
            if let Some(sha256) = version.sha256 {
                holders
                    .entry(sha256)
                    .or_default()
                    .push((version.key, version.version_id));
            }
        }
        Ok(holders)
    }
}
