//! A store's encryption as a whole: its record in the catalog (the store's
//! id and its key-encryption key), a key rotation under way, and the state
//! a store is opened in (off, on with its key, or on without a usable key).

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::wrapper::unavailable;
use super::{BlobKey, DataKey, KeySource, Wrapper};
use crate::catalog::{Catalog, Repair};
use crate::error::{Error, ErrorKind, Result};
use crate::time::Timestamp;

/// The store setting holding its [`KeyRecord`].
pub(crate) const ENCRYPTION_SETTING: &str = "encryption";
/// The store setting holding the key rotation under way.
pub(crate) const ROTATION_SETTING: &str = "key_rotation";
/// The store setting holding the last finished key rotation.
pub(crate) const LAST_ROTATION_SETTING: &str = "last_key_rotation";

/// An encrypted store's record: written with its first put, and on each
/// finished key rotation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct KeyRecord {
    /// The store's id, in every data key's wrapping context.
    pub store_id: String,
    /// The key-encryption key's id.
    pub kek: String,
    /// A passphrase's derivation parameters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kdf: Option<String>,
    /// Since when this key is the store's.
    pub since: Timestamp,
    /// The key manifests are sealed with, wrapped like a blob's data key
    /// (by both keys while a rotation runs).
    pub metadata_key: BlobKey,
}

/// A key rotation under way, or the last one finished.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct RotationRecord {
    /// The old key's id.
    pub from: String,
    /// The new key's id.
    pub to: String,
    /// The new key's derivation parameters, for a passphrase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_kdf: Option<String>,
    /// When it started.
    pub started_at: Timestamp,
    /// When it finished (the last one only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<Timestamp>,
    /// Data keys wrapped anew (the last one only).
    #[serde(default)]
    pub data_keys: u64,
}

/// A store's encryption, as it was opened.
#[derive(Debug, Clone)]
pub(crate) enum EncryptionState {
    /// Not encrypted.
    Off,
    /// Encrypted, with its key at hand.
    On(Arc<Encryption>),
    /// Encrypted, and the key given is missing, wrong or unusable: what
    /// needs content fails with this error (metadata stays readable).
    Unavailable(ErrorKind, String),
}

impl EncryptionState {
    /// The key, for work that needs content; the reason it is missing else.
    /// `None` for a store without encryption.
    pub(crate) fn require(&self) -> Result<Option<&Arc<Encryption>>> {
        match self {
            EncryptionState::Off => Ok(None),
            EncryptionState::On(encryption) => Ok(Some(encryption)),
            EncryptionState::Unavailable(kind, message) => Err(Error::new(*kind, message.clone())),
        }
    }

    /// Whether the store is encrypted (with or without its key at hand).
    pub(crate) fn is_on(&self) -> bool {
        !matches!(self, EncryptionState::Off)
    }
}

/// The key of an encrypted store, at hand.
pub(crate) struct Encryption {
    store_id: String,
    wrapper: Wrapper,
    /// The metadata key, unwrapped, and its record as the store's keeps it.
    metadata: DataKey,
    metadata_record: BlobKey,
    /// Metadata keys of other records met in manifests (a catalog rebuilt
    /// elsewhere), unwrapped once each.
    foreign: std::sync::Mutex<std::collections::HashMap<String, Arc<DataKey>>>,
}

impl std::fmt::Debug for Encryption {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Encryption")
            .field("wrapper", &self.wrapper)
            .finish_non_exhaustive()
    }
}

impl Encryption {
    /// The key-encryption key.
    pub(crate) fn wrapper(&self) -> &Wrapper {
        &self.wrapper
    }

    /// A fresh data key for a new blob, and its record.
    pub(crate) async fn new_key(&self) -> Result<(DataKey, BlobKey)> {
        let (key, wrap) = self.wrapper.new_data_key(&self.store_id).await?;
        let record = BlobKey {
            id: key.id_text(),
            store: self.store_id.clone(),
            wraps: vec![wrap],
        };
        Ok((key, record))
    }

    /// Open a blob's data key; `what` names the version it is for.
    pub(crate) async fn open_key(&self, record: &BlobKey, what: &str) -> Result<DataKey> {
        let Some(wrap) = record.wrap_by(self.wrapper.id()) else {
            let keys: Vec<&str> = record.wraps.iter().map(|w| w.kek.as_str()).collect();
            return Err(unavailable(format!(
                "{what}: its data key is wrapped by {}, not by the key given ({})",
                keys.join(" and "),
                self.wrapper.id()
            )));
        };
        self.wrapper.unwrap(wrap, &record.id, &record.store).await
    }

    /// Seal a manifest's JSON with the metadata key; `record` overrides the
    /// record that goes with it (a rotation's, wrapped by both keys or the new one).
    pub(crate) fn seal_manifest(&self, json: &[u8], record: Option<&BlobKey>) -> Result<String> {
        let record = record.unwrap_or(&self.metadata_record).clone();
        super::secrets::seal_with(&self.metadata, record, json)
    }

    /// Open a sealed manifest, whichever metadata key sealed it.
    pub(crate) async fn open_manifest(&self, sealed: &str, what: &str) -> Result<Vec<u8>> {
        let record = super::secrets::key_of(sealed)?;
        if record.id == self.metadata_record.id {
            return super::secrets::open_with(&self.metadata, sealed);
        }
        let cached = self.foreign.lock().ok().and_then(|keys| keys.get(&record.id).cloned());
        let key = match cached {
            Some(key) => key,
            None => {
                let key = Arc::new(self.open_key(&record, what).await?);
                if let Ok(mut keys) = self.foreign.lock() {
                    keys.insert(record.id.clone(), key.clone());
                }
                key
            }
        };
        super::secrets::open_with(&key, sealed)
    }

    /// Whether this key opens `record` (of a store rebuilt from manifests).
    pub(crate) async fn opens(&self, record: &BlobKey) -> bool {
        match record.wrap_by(self.wrapper.id()) {
            Some(wrap) => self.wrapper.unwrap(wrap, &record.id, &record.store).await.is_ok(),
            None => false,
        }
    }
}

/// Open the encryption of the store whose catalog is `catalog`, with the
/// key `source` (the config's). A store without a record is encrypted from
/// here on when `create` is set (its first write) and it holds no version
/// yet; one that holds versions already is refused.
pub(crate) async fn open(
    catalog: &dyn Catalog,
    source: Option<&KeySource>,
    create: bool,
    actor: &str,
) -> Result<EncryptionState> {
    let record = read_setting::<KeyRecord>(catalog, ENCRYPTION_SETTING).await?;
    let (record, source) = match (record, source) {
        (None, None) => return Ok(EncryptionState::Off),
        (None, Some(_)) if !create => return Ok(EncryptionState::Off),
        (None, Some(source)) => {
            if catalog.stats().await?.versions > 0 {
                return Err(Error::invalid_input(
                    "this store holds unencrypted versions: coffer encrypts a store from its first put \
                     (encrypting existing content is not supported; import it into a new encrypted store)",
                ));
            }
            let wrapper = match source.resolve(None).await {
                Ok(wrapper) => wrapper,
                Err(e) => return Ok(unusable(e)),
            };
            let store_id = uuid::Uuid::now_v7().to_string();
            let (metadata, wrap) = match wrapper.new_data_key(&store_id).await {
                Ok(fresh) => fresh,
                Err(e) => return Ok(unusable(e)),
            };
            let record = KeyRecord {
                metadata_key: BlobKey {
                    id: metadata.id_text(),
                    store: store_id.clone(),
                    wraps: vec![wrap],
                },
                store_id,
                kek: wrapper.id().to_owned(),
                kdf: wrapper.kdf().map(str::to_owned),
                since: Timestamp::now(),
            };
            let detail = serde_json::json!({ "kek": record.kek, "wrapper": wrapper.kind() });
            let setting = Repair::Setting {
                name: ENCRYPTION_SETTING,
                value: Some(serde_json::json!(record).to_string()),
                if_absent: true,
                audit: Some(("encryption", detail)),
            };
            catalog.repair(&setting, actor).await?;
            // Another process may have encrypted it first: its record wins.
            let record = read_setting::<KeyRecord>(catalog, ENCRYPTION_SETTING)
                .await?
                .unwrap_or(record);
            (record, source)
        }
        (Some(record), None) => {
            return Ok(unusable(unavailable(format!(
                "this store is encrypted (its key is {}): give its key in [encryption] \
                 (key_file, key_env, passphrase_env or kms_key_id) or a COFFER_ENCRYPTION_* variable",
                record.kek
            ))));
        }
        (Some(record), Some(source)) => (record, source),
    };
    let rotation = read_setting::<RotationRecord>(catalog, ROTATION_SETTING).await?;
    // The key given may be the store's, or the one a rotation moves to.
    let mut candidates = vec![(record.kek.clone(), record.kdf.clone())];
    candidates.extend(rotation.map(|r| (r.to, r.to_kdf)));
    let mut last = None;
    for (kek, kdf) in &candidates {
        match source.resolve(kdf.as_deref()).await {
            Ok(wrapper) if wrapper.id() == kek => {
                let metadata_record = record.metadata_key.clone();
                let metadata = match metadata_record.wrap_by(kek) {
                    Some(wrap) => wrapper.unwrap(wrap, &metadata_record.id, &metadata_record.store).await,
                    None => Err(unavailable(format!(
                        "the store's metadata key is not wrapped by {kek} yet (a rotation to it is under way)"
                    ))),
                };
                return Ok(match metadata {
                    Ok(metadata) => EncryptionState::On(Arc::new(Encryption {
                        store_id: record.store_id.clone(),
                        wrapper,
                        metadata,
                        metadata_record,
                        foreign: std::sync::Mutex::default(),
                    })),
                    Err(e) => unusable(e),
                });
            }
            Ok(wrapper) => last = Some(wrapper.id().to_owned()),
            Err(e) => return Ok(unusable(e)),
        }
    }
    let given = last.unwrap_or_default();
    Ok(unusable(unavailable(format!(
        "{source} is not this store's key (it is {given}; the store's is {})",
        record.kek
    ))))
}

/// A store setting, decoded.
pub(crate) async fn read_setting<T: serde::de::DeserializeOwned>(
    catalog: &dyn Catalog,
    name: &str,
) -> Result<Option<T>> {
    match catalog.setting(name).await? {
        None => Ok(None),
        Some(text) => serde_json::from_str(&text)
            .map(Some)
            .map_err(|_| Error::new(ErrorKind::Catalog, format!("the store setting {name} is malformed"))),
    }
}

fn unusable(error: Error) -> EncryptionState {
    EncryptionState::Unavailable(error.kind(), error.message().to_owned())
}
