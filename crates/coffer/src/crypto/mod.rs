//! Client-side envelope encryption of content: each blob is sealed with a
//! random data key ([`segments`]), and data keys are wrapped by the store's
//! key-encryption key ([`wrapper`]): a local key, a passphrase or a KMS key.
//!
//! A blob's wrapped data key ([`BlobKey`]) is kept in the catalog (the
//! blob's row) and in the manifest of each version that holds the blob, so
//! that `reindex` of an encrypted store works when given the key. While a
//! key rotation runs, a data key is wrapped by both the old and the new key.

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::error::{Error, ErrorKind, Result};

mod config;
pub(crate) mod keyring;
#[cfg(feature = "backend-s3")]
mod kms;
pub(crate) mod secrets;
pub(crate) mod segments;
mod wrapper;

pub use self::config::EncryptionConfig;
pub(crate) use self::keyring::EncryptionState;

pub use self::wrapper::KeySource;
pub(crate) use self::wrapper::Wrapper;

/// A data key of its own for one stream: what [`seal`] returns and
/// [`open`] takes. Only in memory; zeroed when dropped.
pub struct StreamKey(DataKey);

/// Seal `body` with a fresh data key, in coffer's blob format (see
/// [`segments`]): the key and the sealed stream, for tools that seal a
/// stream outside a store (the benchmark measures sealing alone this way).
pub fn seal(body: crate::body::ByteStream) -> Result<(StreamKey, crate::body::ByteStream)> {
    let key = DataKey::generate()?;
    let sealed = segments::seal_stream(&key, body)?;
    Ok((StreamKey(key), sealed))
}

/// Open `sealed`, the output of [`seal`] for `size` bytes, with its key.
pub fn open(key: &StreamKey, size: u64, sealed: crate::body::ByteStream) -> Result<crate::body::ByteStream> {
    segments::open_stream(
        &key.0,
        segments::SealedRange::of(size, None),
        sealed,
        "the stream".to_owned(),
    )
}

/// A new random 256-bit key, for a key file (`coffer keys generate`).
pub fn generate_key() -> Result<Zeroizing<[u8; 32]>> {
    let mut key = Zeroizing::new([0u8; 32]);
    aws_lc_rs::rand::fill(&mut key[..]).map_err(|_| no_randomness())?;
    Ok(key)
}

/// One blob's data key, in the clear (only in memory, zeroed when dropped).
pub(crate) struct DataKey {
    /// Its id: in the blob's header and in every wrapping's context.
    id: [u8; 16],
    secret: Zeroizing<[u8; 32]>,
}

impl DataKey {
    /// A fresh random key.
    pub(crate) fn generate() -> Result<DataKey> {
        let mut secret = Zeroizing::new([0u8; 32]);
        aws_lc_rs::rand::fill(&mut secret[..]).map_err(|_| no_randomness())?;
        Ok(DataKey {
            id: *uuid::Uuid::now_v7().as_bytes(),
            secret,
        })
    }

    /// The key `id` names, from its unwrapped bytes.
    pub(crate) fn from_parts(id: &str, secret: &[u8]) -> Result<DataKey> {
        let id = uuid::Uuid::parse_str(id).map_err(|_| corrupt_key_record(id))?;
        let secret: [u8; 32] = secret
            .try_into()
            .map_err(|_| Error::new(ErrorKind::KeyUnavailable, "an unwrapped data key is not 32 bytes"))?;
        Ok(DataKey {
            id: *id.as_bytes(),
            secret: Zeroizing::new(secret),
        })
    }

    /// The id as text (a UUID).
    pub(crate) fn id_text(&self) -> String {
        uuid::Uuid::from_bytes(self.id).to_string()
    }

    pub(crate) fn secret(&self) -> &[u8] {
        &self.secret[..]
    }
}

/// A blob's data key as stored: its id and its wrappings, one per
/// key-encryption key that can open it (two only while a rotation runs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobKey {
    /// The data key's id (a UUID).
    pub id: String,
    /// The id of the store the blob belongs to (part of every wrapping's
    /// context), so a catalog rebuilt from manifests can open it.
    pub store: String,
    /// The wrappings.
    pub wraps: Vec<Wrap>,
}

/// A data key wrapped by one key-encryption key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Wrap {
    /// The key-encryption key's id (`key:…`, `passphrase:…`, `kms:…`).
    pub kek: String,
    /// The wrapped key, base64.
    pub key: String,
    /// For a passphrase: the argon2id parameters and salt that derive its key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kdf: Option<String>,
}

impl BlobKey {
    /// The record as the catalog keeps it (JSON).
    pub(crate) fn to_text(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// A record the catalog kept.
    pub(crate) fn from_text(text: &str) -> Result<BlobKey> {
        serde_json::from_str(text).map_err(|_| corrupt_key_record(text.get(..40).unwrap_or(text)))
    }

    /// The wrapping by `kek`, if it has one.
    pub(crate) fn wrap_by(&self, kek: &str) -> Option<&Wrap> {
        self.wraps.iter().find(|w| w.kek == kek)
    }
}

fn corrupt_key_record(what: &str) -> Error {
    Error::new(
        ErrorKind::Catalog,
        format!("a blob's data key record is malformed ({what:?})"),
    )
}

pub(crate) fn no_randomness() -> Error {
    Error::new(ErrorKind::Io, "the system's random number generator failed")
}

/// The associated data every wrapping of a data key is bound to: the store
/// and the data key, so a wrapped key moved to another blob or store fails.
pub(crate) struct KeyContext<'a> {
    /// The store's id.
    pub store: &'a str,
    /// The data key's id.
    pub key: &'a str,
}

impl KeyContext<'_> {
    fn as_aad(&self) -> String {
        format!("coffer data key|store={}|key={}", self.store, self.key)
    }
}
