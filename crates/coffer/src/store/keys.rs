//! The store's keys as `info` and `keys status` show them (`keys rotate`
//! is in `rotation.rs`).

use std::collections::BTreeMap;

use serde::Serialize;

use super::Store;
use crate::crypto::BlobKey;
use crate::crypto::keyring::{
    ENCRYPTION_SETTING, KeyRecord, LAST_ROTATION_SETTING, ROTATION_SETTING, RotationRecord, read_setting,
};
use crate::error::Result;
use crate::time::Timestamp;

/// Data keys read per catalog page.
pub(super) const DATA_KEY_PAGE: usize = 500;

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
            let page = self.data_key_page(&mut after).await?;
            for (_, key) in &page {
                for wrap in &key.wraps {
                    *data_keys.entry(wrap.kek.clone()).or_insert(0) += 1;
                }
            }
            if page.len() < DATA_KEY_PAGE {
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

    /// The page of data keys after `after`, which moves past it; a page
    /// shorter than [`DATA_KEY_PAGE`] is the last.
    pub(super) async fn data_key_page(&self, after: &mut String) -> Result<Vec<(String, BlobKey)>> {
        let page = self.catalog.data_keys(after, DATA_KEY_PAGE).await?;
        if let Some((last, _)) = page.last() {
            after.clone_from(last);
        }
        page.into_iter()
            .map(|(sha256, text)| Ok((sha256, BlobKey::from_text(&text)?)))
            .collect()
    }
}
