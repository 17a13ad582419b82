//! Small things sealed whole into text: secrets kept in the catalog (hook
//! signing keys, queue credentials), each with a data key of its own, and
//! an encrypted store's manifests, with the store's metadata key. Either
//! way the wrapped data key travels with the text, so a key rotation
//! re-wraps it and a rebuilt catalog can open it.
//!
//! Sealed text is `coffer-sealed:v1:` and base64 of JSON
//! `{"key": <data key record>, "size": N, "data": <base64 of the sealed bytes>}`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};

use super::keyring::Encryption;
use super::{BlobKey, DataKey, segments};
use crate::error::{Error, ErrorKind, Result};

const PREFIX: &str = "coffer-sealed:v1:";

#[derive(Serialize, Deserialize)]
struct Sealed {
    key: BlobKey,
    size: u64,
    data: String,
}

/// Whether `text` is a sealed secret.
pub(crate) fn is_sealed(text: &str) -> bool {
    text.starts_with(PREFIX)
}

/// `secret`, sealed with a fresh data key.
pub(crate) async fn seal(encryption: &Encryption, secret: &str) -> Result<String> {
    let (key, record) = encryption.new_key().await?;
    seal_with(&key, record, secret.as_bytes())
}

/// `bytes`, sealed with `key`, whose record (`record`) goes with them.
pub(crate) fn seal_with(key: &DataKey, record: BlobKey, bytes: &[u8]) -> Result<String> {
    let sealed = Sealed {
        key: record,
        size: bytes.len() as u64,
        data: BASE64.encode(segments::seal_bytes(key, bytes)?),
    };
    Ok(encode(&sealed))
}

/// The bytes `sealed` holds, opened with `key` (the one its record names).
pub(crate) fn open_with(key: &DataKey, sealed: &str) -> Result<Vec<u8>> {
    let sealed = decode(sealed)?;
    let data = BASE64.decode(&sealed.data).map_err(|_| malformed())?;
    segments::open_bytes(key, &data, sealed.size)
}

/// The secret `sealed` holds.
pub(crate) async fn open(encryption: &Encryption, sealed: &str) -> Result<String> {
    let key = encryption.open_key(&key_of(sealed)?, "a sealed secret").await?;
    String::from_utf8(open_with(&key, sealed)?).map_err(|_| malformed())
}

/// The data key record of a sealed secret.
pub(crate) fn key_of(sealed: &str) -> Result<BlobKey> {
    decode(sealed).map(|s| s.key)
}

/// `sealed` with its data key record replaced by `key` (a rotation's).
pub(crate) fn with_key(sealed: &str, key: BlobKey) -> Result<String> {
    let mut decoded = decode(sealed)?;
    decoded.key = key;
    Ok(encode(&decoded))
}

fn encode(sealed: &Sealed) -> String {
    format!("{PREFIX}{}", BASE64.encode(serde_json::json!(sealed).to_string()))
}

fn decode(sealed: &str) -> Result<Sealed> {
    let body = sealed.strip_prefix(PREFIX).ok_or_else(malformed)?;
    let json = BASE64.decode(body).map_err(|_| malformed())?;
    serde_json::from_slice(&json).map_err(|_| malformed())
}

fn malformed() -> Error {
    Error::new(ErrorKind::IntegrityMismatch, "a sealed secret or manifest is malformed")
}
