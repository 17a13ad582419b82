//! Key-encryption keys: what wraps the data keys of a store's blobs.
//!
//! - a local 256-bit key, from a file or an environment variable (BYOK);
//! - a passphrase, through argon2id with parameters and salt kept beside
//!   every wrapping (and in the catalog), so the same key derives again;
//! - a KMS key (AWS KMS or a KMS-compatible service): the data key comes
//!   from `GenerateDataKey`, opens with `Decrypt`, and a rotation between
//!   two KMS keys uses `ReEncrypt`, so the data key never leaves KMS then.
//!
//! Local and passphrase keys wrap with AES-256-GCM under a random nonce,
//! bound to the store and the data key's id; KMS binds the same two as its
//! encryption context. A key is named by an id that does not reveal it:
//! `key:` or `passphrase:` and 16 hex digits of an HMAC of the key, or
//! `kms:` and the KMS key id.

use std::fmt;
use std::path::PathBuf;

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

use super::{DataKey, KeyContext, Wrap, no_randomness};
use crate::error::{Error, ErrorKind, Result};

/// argon2id's cost for passphrases (OWASP's recommendation: 19 MiB, two
/// passes, one lane), written into every wrapping so it can change later.
const ARGON2_MEMORY_KIB: u32 = 19 * 1024;
const ARGON2_PASSES: u32 = 2;
const ARGON2_LANES: u32 = 1;

/// Where a store's key-encryption key comes from (the `[encryption]` table).
#[derive(Clone, PartialEq, Eq)]
pub enum KeySource {
    /// A file holding 32 bytes: raw, 64 hex digits or base64.
    KeyFile(PathBuf),
    /// The environment variable of this name holds the key (hex or base64).
    KeyEnv(String),
    /// The environment variable of this name holds a passphrase.
    Passphrase(String),
    /// A KMS key.
    Kms {
        /// Its id or ARN (or an alias).
        key_id: String,
        /// Another KMS-compatible service's URL.
        endpoint: Option<String>,
        /// The region; from the ARN, `AWS_REGION` or `us-east-1` when absent.
        region: Option<String>,
    },
}

impl fmt::Display for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeySource::KeyFile(path) => write!(f, "the key file {}", path.display()),
            KeySource::KeyEnv(var) => write!(f, "the key in ${var}"),
            KeySource::Passphrase(var) => write!(f, "the passphrase in ${var}"),
            KeySource::Kms { key_id, .. } => write!(f, "the KMS key {key_id}"),
        }
    }
}

impl fmt::Debug for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl KeySource {
    /// The key itself. A passphrase derives with `kdf` (a store's recorded
    /// parameters), or with fresh ones for a new store or rotation.
    pub(crate) async fn resolve(&self, kdf: Option<&str>) -> Result<Wrapper> {
        match self {
            KeySource::KeyFile(path) => {
                let bytes = Zeroizing::new(std::fs::read(path).map_err(|e| {
                    unavailable(format!("the key file {} cannot be read: {}", path.display(), e.kind()))
                })?);
                let key = parse_key(&bytes).ok_or_else(|| {
                    unavailable(format!(
                        "the key file {} does not hold a 256-bit key (32 bytes, 64 hex digits or base64)",
                        path.display()
                    ))
                })?;
                Ok(Wrapper::secret("key", key, None))
            }
            KeySource::KeyEnv(var) => {
                let text = Zeroizing::new(
                    std::env::var(var).map_err(|_| unavailable(format!("${var} (the store's key) is not set")))?,
                );
                let key = parse_key(text.as_bytes()).ok_or_else(|| {
                    unavailable(format!("${var} does not hold a 256-bit key (64 hex digits or base64)"))
                })?;
                Ok(Wrapper::secret("key", key, None))
            }
            KeySource::Passphrase(var) => {
                let passphrase = Zeroizing::new(
                    std::env::var(var)
                        .map_err(|_| unavailable(format!("${var} (the store's passphrase) is not set")))?,
                );
                if passphrase.is_empty() {
                    return Err(unavailable(format!("${var} (the store's passphrase) is empty")));
                }
                let kdf = match kdf {
                    Some(kdf) => kdf.to_owned(),
                    None => fresh_kdf()?,
                };
                let derived = {
                    let kdf = kdf.clone();
                    tokio::task::spawn_blocking(move || derive(passphrase.as_bytes(), &kdf))
                        .await
                        .map_err(|_| unavailable("deriving the passphrase's key failed".to_owned()))??
                };
                Ok(Wrapper::secret("passphrase", derived, Some(kdf)))
            }
            #[cfg(feature = "backend-s3")]
            KeySource::Kms {
                key_id,
                endpoint,
                region,
            } => {
                let client = super::kms::KmsClient::new(key_id, endpoint.as_deref(), region.as_deref())?;
                Ok(Wrapper {
                    id: format!("kms:{key_id}"),
                    kind: Kind::Kms(std::sync::Arc::new(client)),
                })
            }
            #[cfg(not(feature = "backend-s3"))]
            KeySource::Kms { .. } => Err(Error::not_built("KMS keys", "backend-s3")),
        }
    }
}

/// A key-encryption key, ready to wrap and unwrap.
pub(crate) struct Wrapper {
    id: String,
    kind: Kind,
}

enum Kind {
    Secret {
        key: Zeroizing<[u8; 32]>,
        kdf: Option<String>,
    },
    #[cfg(feature = "backend-s3")]
    Kms(std::sync::Arc<super::kms::KmsClient>),
}

impl fmt::Debug for Wrapper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Wrapper({})", self.id)
    }
}

impl Wrapper {
    fn secret(prefix: &str, key: Zeroizing<[u8; 32]>, kdf: Option<String>) -> Wrapper {
        Wrapper {
            id: format!("{prefix}:{}", fingerprint(&key)),
            kind: Kind::Secret { key, kdf },
        }
    }

    /// The key's id.
    pub(crate) fn id(&self) -> &str {
        &self.id
    }

    /// The passphrase's derivation parameters, for a passphrase.
    pub(crate) fn kdf(&self) -> Option<&str> {
        match &self.kind {
            Kind::Secret { kdf, .. } => kdf.as_deref(),
            #[cfg(feature = "backend-s3")]
            Kind::Kms(_) => None,
        }
    }

    /// The kind of key: `key`, `passphrase` or `kms`.
    pub(crate) fn kind(&self) -> &str {
        self.id.split(':').next().unwrap_or_default()
    }

    /// A fresh data key for a blob of `store`, and its wrapping.
    pub(crate) async fn new_data_key(&self, store: &str) -> Result<(DataKey, Wrap)> {
        match &self.kind {
            Kind::Secret { .. } => {
                let key = DataKey::generate()?;
                let wrap = self.wrap(&key, store).await?;
                Ok((key, wrap))
            }
            #[cfg(feature = "backend-s3")]
            Kind::Kms(client) => {
                let id = DataKey::generate()?.id_text();
                let context = KeyContext { store, key: &id };
                let (secret, wrapped) = client.generate_data_key(&context).await?;
                Ok((DataKey::from_parts(&id, &secret)?, self.wrapping(wrapped)))
            }
        }
    }

    /// Wrap `key` (of a blob of `store`).
    pub(crate) async fn wrap(&self, key: &DataKey, store: &str) -> Result<Wrap> {
        let context = KeyContext {
            store,
            key: &key.id_text(),
        };
        match &self.kind {
            Kind::Secret { key: kek, .. } => {
                let mut nonce = [0u8; NONCE_LEN];
                aws_lc_rs::rand::fill(&mut nonce).map_err(|_| no_randomness())?;
                let mut sealed = key.secret().to_vec();
                cipher(kek)?
                    .seal_in_place_append_tag(
                        Nonce::assume_unique_for_key(nonce),
                        Aad::from(context.as_aad().as_bytes()),
                        &mut sealed,
                    )
                    .map_err(|_| Error::new(ErrorKind::Io, "wrapping a data key failed"))?;
                let mut wrapped = nonce.to_vec();
                wrapped.extend_from_slice(&sealed);
                Ok(self.wrapping(wrapped))
            }
            #[cfg(feature = "backend-s3")]
            Kind::Kms(client) => Ok(self.wrapping(client.encrypt(key.secret(), &context).await?)),
        }
    }

    /// Open `wrap`, this key's wrapping of the data key `key_id` of a blob of `store`.
    pub(crate) async fn unwrap(&self, wrap: &Wrap, key_id: &str, store: &str) -> Result<DataKey> {
        let wrapped = BASE64
            .decode(&wrap.key)
            .map_err(|_| Error::new(ErrorKind::Catalog, "a wrapped data key is not base64"))?;
        let context = KeyContext { store, key: key_id };
        match &self.kind {
            Kind::Secret { key: kek, .. } => {
                if wrapped.len() < NONCE_LEN {
                    return Err(Error::new(ErrorKind::Catalog, "a wrapped data key is too short"));
                }
                let (nonce, sealed) = wrapped.split_at(NONCE_LEN);
                let mut sealed = Zeroizing::new(sealed.to_vec());
                let nonce = Nonce::try_assume_unique_for_key(nonce)
                    .map_err(|_| Error::new(ErrorKind::Catalog, "a wrapped data key is malformed"))?;
                let secret = cipher(kek)?
                    .open_in_place(nonce, Aad::from(context.as_aad().as_bytes()), &mut sealed[..])
                    .map_err(|_| {
                        unavailable(format!(
                            "the data key {key_id} does not open with {} (wrong key, or the key record was moved)",
                            self.id
                        ))
                    })?;
                DataKey::from_parts(key_id, secret)
            }
            #[cfg(feature = "backend-s3")]
            Kind::Kms(client) => DataKey::from_parts(key_id, &client.decrypt(&wrapped, &context).await?),
        }
    }

    /// `wrap` (by `from`) of the data key `key_id`, wrapped by this key
    /// instead. Between two KMS keys the data key stays inside KMS.
    pub(crate) async fn rewrap(&self, from: &Wrapper, wrap: &Wrap, key_id: &str, store: &str) -> Result<Wrap> {
        #[cfg(feature = "backend-s3")]
        if let (Kind::Kms(to), Kind::Kms(_)) = (&self.kind, &from.kind) {
            let wrapped = BASE64
                .decode(&wrap.key)
                .map_err(|_| Error::new(ErrorKind::Catalog, "a wrapped data key is not base64"))?;
            let context = KeyContext { store, key: key_id };
            return Ok(self.wrapping(to.re_encrypt(&wrapped, &context).await?));
        }
        let key = from.unwrap(wrap, key_id, store).await?;
        self.wrap(&key, store).await
    }

    fn wrapping(&self, wrapped: Vec<u8>) -> Wrap {
        Wrap {
            kek: self.id.clone(),
            key: BASE64.encode(wrapped),
            kdf: self.kdf().map(str::to_owned),
        }
    }
}

fn cipher(key: &[u8; 32]) -> Result<LessSafeKey> {
    UnboundKey::new(&AES_256_GCM, key)
        .map(LessSafeKey::new)
        .map_err(|_| Error::new(ErrorKind::Io, "a key-encryption key is malformed"))
}

pub(crate) fn unavailable(message: String) -> Error {
    Error::new(ErrorKind::KeyUnavailable, message)
}

/// 32 bytes from a key file's or variable's text: raw, hex or base64.
fn parse_key(bytes: &[u8]) -> Option<Zeroizing<[u8; 32]>> {
    let mut key = Zeroizing::new([0u8; 32]);
    if bytes.len() == 32 {
        key.copy_from_slice(bytes);
        return Some(key);
    }
    let text = std::str::from_utf8(bytes).ok()?.trim();
    let decoded = Zeroizing::new(match text.len() {
        64 => hex::decode(text).ok()?,
        _ => BASE64.decode(text).ok()?,
    });
    (decoded.len() == 32).then(|| {
        key.copy_from_slice(&decoded);
        key
    })
}

/// The id part of a key's name: 16 hex digits of an HMAC keyed by the key.
fn fingerprint(key: &[u8; 32]) -> String {
    let mac = Hmac::<Sha256>::new_from_slice(key)
        .map(|mac| {
            mac.chain_update(b"coffer key-encryption key id")
                .finalize()
                .into_bytes()
        })
        .unwrap_or_default();
    hex::encode(&mac[..8])
}

/// Parameters and a fresh salt for a new passphrase.
fn fresh_kdf() -> Result<String> {
    let mut salt = [0u8; 16];
    aws_lc_rs::rand::fill(&mut salt).map_err(|_| no_randomness())?;
    Ok(format!(
        "argon2id$m={ARGON2_MEMORY_KIB},t={ARGON2_PASSES},p={ARGON2_LANES}${}",
        BASE64.encode(salt)
    ))
}

/// The key a passphrase derives with `kdf` (`argon2id$m=…,t=…,p=…$salt`).
fn derive(passphrase: &[u8], kdf: &str) -> Result<Zeroizing<[u8; 32]>> {
    let malformed = || {
        Error::new(
            ErrorKind::Catalog,
            format!("the passphrase parameters {kdf:?} are malformed"),
        )
    };
    let mut parts = kdf.split('$');
    let (Some("argon2id"), Some(costs), Some(salt), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed());
    };
    let cost = |name: &str| -> Result<u32> {
        costs
            .split(',')
            .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
            .and_then(|value| value.parse().ok())
            .ok_or_else(malformed)
    };
    let params = argon2::Params::new(cost("m")?, cost("t")?, cost("p")?, Some(32)).map_err(|_| malformed())?;
    let salt = BASE64.decode(salt).map_err(|_| malformed())?;
    let mut key = Zeroizing::new([0u8; 32]);
    argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
        .hash_password_into(passphrase, &salt, &mut key[..])
        .map_err(|_| malformed())?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_wrapped_key_opens_with_its_key_and_context_only() {
        let kek = Wrapper::secret("key", Zeroizing::new([7u8; 32]), None);
        let other = Wrapper::secret("key", Zeroizing::new([8u8; 32]), None);
        assert_ne!(kek.id(), other.id());
        let (key, wrap) = kek.new_data_key("store-1").await.unwrap();
        let opened = kek.unwrap(&wrap, &key.id_text(), "store-1").await.unwrap();
        assert_eq!(opened.secret(), key.secret());
        let err = other.unwrap(&wrap, &key.id_text(), "store-1").await.err().unwrap();
        assert_eq!(err.kind(), ErrorKind::KeyUnavailable);
        assert!(kek.unwrap(&wrap, &key.id_text(), "store-2").await.is_err());
        let another = DataKey::generate().unwrap().id_text();
        assert!(kek.unwrap(&wrap, &another, "store-1").await.is_err());
        let rewrapped = other.rewrap(&kek, &wrap, &key.id_text(), "store-1").await.unwrap();
        assert_eq!(rewrapped.kek, other.id());
        let opened = other.unwrap(&rewrapped, &key.id_text(), "store-1").await.unwrap();
        assert_eq!(opened.secret(), key.secret());
    }

    #[test]
    fn keys_parse_from_raw_hex_and_base64_and_nothing_else() {
        let raw = [0x42u8; 32];
        let hex = hex::encode(raw);
        let b64 = BASE64.encode(raw);
        for text in [&raw[..], hex.as_bytes(), format!("{b64}\n").as_bytes()] {
            assert_eq!(parse_key(text).as_deref(), Some(&raw));
        }
        assert!(parse_key(b"too short").is_none());
        assert!(parse_key(&hex.as_bytes()[..62]).is_none());
    }

    #[test]
    fn a_passphrase_derives_the_same_key_from_the_same_parameters() {
        let kdf = "argon2id$m=64,t=1,p=1$c2FsdHNhbHRzYWx0c2FsdA==";
        let a = derive(b"correct horse", kdf).unwrap();
        assert_eq!(a, derive(b"correct horse", kdf).unwrap());
        assert_ne!(a, derive(b"wrong horse", kdf).unwrap());
        assert!(derive(b"x", "argon2id$m=64$salt").is_err());
        assert!(fresh_kdf().unwrap().starts_with("argon2id$m=19456,t=2,p=1$"));
    }
}
