//! Access tokens: what one may do (its scope), where (its key prefix) and
//! until when, and how its secret looks.

use std::fmt;

use base64::Engine;
use serde::Serialize;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::error::{Error, ErrorKind, Result};
use crate::time::Timestamp;

/// What a token allows, each scope including the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Read objects, versions, history, search, bundles and hooks' stats.
    Read,
    /// Also write: put, delete, rollback, copy, tags, comments, metadata,
    /// retention and legal holds (extending them only).
    Write,
    /// Also manage: hooks, the audit log, bypassing a governance retention.
    Admin,
}

impl Scope {
    /// Every scope, weakest first.
    pub const ALL: [Scope; 3] = [Scope::Read, Scope::Write, Scope::Admin];

    /// Its name: `read`, `write` or `admin`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Write => "write",
            Scope::Admin => "admin",
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Scope {
    type Err = Error;

    fn from_str(text: &str) -> Result<Scope> {
        Scope::ALL
            .into_iter()
            .find(|scope| scope.as_str() == text)
            .ok_or_else(|| Error::invalid_input(format!("scope {text:?}: expected read, write or admin")))
    }
}

/// A token as the catalog holds it (without its secret, which is never stored).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TokenRecord {
    /// Its name: unique, shown in the audit log as `token:NAME`.
    pub name: String,
    /// What it allows.
    pub scope: Scope,
    /// The keys it reaches: those starting with this (empty: every key).
    pub prefix: String,
    /// Its S3 access key id, for a token made for the S3 endpoint.
    pub access_key: Option<String>,
    /// When it was made.
    pub created_at: Timestamp,
    /// Who made it.
    pub created_by: String,
    /// When it stops working, if ever.
    pub expires_at: Option<Timestamp>,
    /// When it was revoked, if it was.
    pub revoked_at: Option<Timestamp>,
}

impl TokenRecord {
    /// The actor its requests are recorded as.
    pub fn actor(&self) -> String {
        format!("token:{}", self.name)
    }

    /// Whether it works at `now`: `Unauthorized` once revoked or expired.
    pub fn check_usable(&self, now: Timestamp) -> Result<()> {
        if self.revoked_at.is_some() {
            return Err(Error::new(ErrorKind::Unauthorized, "the token was revoked"));
        }
        match self.expires_at {
            Some(expires) if expires <= now => Err(Error::new(ErrorKind::Unauthorized, "the token expired")),
            _ => Ok(()),
        }
    }

    /// Whether it allows an action of scope `need` on `key` (`None`: an
    /// action on no key, such as the hooks): `Forbidden` when it does not.
    pub fn authorize(&self, need: Scope, key: Option<&str>) -> Result<()> {
        if self.scope < need {
            return Err(Error::new(
                ErrorKind::Forbidden,
                format!("token {} has scope {}; this needs {need}", self.name, self.scope),
            ));
        }
        match key {
            Some(key) if !key.starts_with(&self.prefix) => Err(self.outside_prefix()),
            None if !self.prefix.is_empty() && need > Scope::Read => Err(self.outside_prefix()),
            _ => Ok(()),
        }
    }

    /// The prefix to list when `asked` is asked for: `asked` itself when it
    /// lies inside the token's prefix, the token's prefix when `asked`
    /// contains it (a listing of everything shows what the token reaches),
    /// `Forbidden` otherwise.
    pub fn narrow_prefix(&self, asked: &str) -> Result<String> {
        if asked.starts_with(&self.prefix) {
            Ok(asked.to_owned())
        } else if self.prefix.starts_with(asked) {
            Ok(self.prefix.clone())
        } else {
            Err(self.outside_prefix())
        }
    }

    fn outside_prefix(&self) -> Error {
        Error::new(
            ErrorKind::Forbidden,
            format!("token {} reaches only keys under {:?}", self.name, self.prefix),
        )
    }
}

/// What [`Store::create_token`](crate::Store::create_token) makes.
#[derive(Debug, Clone)]
pub struct NewToken {
    /// Its name (a generated one when `None`).
    pub name: Option<String>,
    /// What it allows.
    pub scope: Scope,
    /// The keys it reaches (empty: every key).
    pub prefix: String,
    /// How long it works (forever when `None`).
    pub expires_in: Option<std::time::Duration>,
    /// Also make it an S3 access key (its secret key derives from the
    /// server's key).
    pub s3: bool,
}

/// A token just made: its record and its secret, shown this once.
pub struct IssuedToken {
    /// What the catalog holds.
    pub record: TokenRecord,
    /// The bearer secret (`Authorization: Bearer ...`).
    pub secret: Zeroizing<String>,
    /// The S3 secret access key, for a token made with `s3`.
    pub s3_secret_key: Option<Zeroizing<String>>,
}

impl fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedToken")
            .field("record", &self.record)
            .finish_non_exhaustive()
    }
}

/// The prefix of every token secret, so that scanners recognise one.
const SECRET_PREFIX: &str = "coffer_";

/// A new bearer secret: the prefix and 256 random bits.
pub(crate) fn new_secret() -> Result<Zeroizing<String>> {
    let mut bytes = Zeroizing::new([0u8; 32]);
    aws_lc_rs::rand::fill(&mut bytes[..]).map_err(|_| crate::crypto::no_randomness())?;
    Ok(Zeroizing::new(format!(
        "{SECRET_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&bytes[..])
    )))
}

/// The SHA-256 of a secret, as the catalog keeps it (hex).
pub(crate) fn secret_sha256(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// The characters of an S3 access key id after its `CF`.
const ACCESS_KEY_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// A new S3 access key id: `CF` and 18 random characters, as AWS's ids look.
pub(crate) fn new_access_key() -> Result<String> {
    let mut bytes = [0u8; 18];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| crate::crypto::no_randomness())?;
    let tail: String = bytes
        .iter()
        .map(|b| char::from(ACCESS_KEY_ALPHABET[usize::from(*b) % ACCESS_KEY_ALPHABET.len()]))
        .collect();
    Ok(format!("CF{tail}"))
}

/// Whether `text` looks like an access key id coffer makes.
pub fn s3_access_key_shape(text: &str) -> bool {
    text.len() == 20 && text.starts_with("CF") && text[2..].bytes().all(|b| ACCESS_KEY_ALPHABET.contains(&b))
}

/// A token name: 1 to 64 of letters, digits, `.`, `_` and `-`.
pub(crate) fn check_token_name(name: &str) -> Result<()> {
    let fine =
        !name.is_empty() && name.len() <= 64 && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    match fine {
        true => Ok(()),
        false => Err(Error::invalid_input(format!(
            "token name {name:?}: use 1 to 64 letters, digits, '.', '_' or '-'"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(scope: Scope, prefix: &str) -> TokenRecord {
        TokenRecord {
            name: "t".into(),
            scope,
            prefix: prefix.into(),
            access_key: None,
            created_at: Timestamp::from_micros(0),
            created_by: "me".into(),
            expires_at: None,
            revoked_at: None,
        }
    }

    #[test]
    fn a_scope_includes_the_weaker_ones() {
        let write = token(Scope::Write, "");
        assert!(write.authorize(Scope::Read, Some("a")).is_ok());
        assert!(write.authorize(Scope::Write, Some("a")).is_ok());
        let refused = write.authorize(Scope::Admin, None).unwrap_err();
        assert_eq!(refused.kind(), ErrorKind::Forbidden);
        assert_eq!(refused.message(), "token t has scope write; this needs admin");
    }

    #[test]
    fn a_prefix_bounds_keys_and_listings() {
        let scoped = token(Scope::Write, "invoices/");
        assert!(scoped.authorize(Scope::Write, Some("invoices/a.pdf")).is_ok());
        assert_eq!(
            scoped.authorize(Scope::Read, Some("hr/a.pdf")).unwrap_err().kind(),
            ErrorKind::Forbidden
        );
        // Changes to no key in particular (hooks) are beyond a prefixed token.
        assert!(scoped.authorize(Scope::Write, None).is_err());
        assert_eq!(scoped.narrow_prefix("").unwrap(), "invoices/");
        assert_eq!(scoped.narrow_prefix("invoices/2024").unwrap(), "invoices/2024");
        assert!(scoped.narrow_prefix("hr/").is_err());
    }

    #[test]
    fn revoked_and_expired_tokens_do_not_work() {
        let mut t = token(Scope::Read, "");
        let now = Timestamp::from_micros(1_000);
        assert!(t.check_usable(now).is_ok());
        t.expires_at = Some(now);
        assert_eq!(t.check_usable(now).unwrap_err().message(), "the token expired");
        t.expires_at = None;
        t.revoked_at = Some(now);
        assert_eq!(t.check_usable(now).unwrap_err().kind(), ErrorKind::Unauthorized);
    }

    #[test]
    fn secrets_and_access_keys_have_their_shapes() {
        let secret = new_secret().unwrap();
        assert!(
            secret.starts_with("coffer_") && secret.len() == 7 + 43,
            "{}",
            secret.len()
        );
        assert_ne!(*secret, *new_secret().unwrap());
        assert_eq!(secret_sha256("abc").len(), 64);
        let key = new_access_key().unwrap();
        assert!(s3_access_key_shape(&key), "{key}");
        assert!(!s3_access_key_shape("AKIAEXAMPLE"));
        assert!(check_token_name("ci-deploy.1").is_ok());
        assert!(check_token_name("a b").is_err());
        assert!(check_token_name("").is_err());
    }
}
