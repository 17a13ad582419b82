//! The server's key: 256 random bits in a file readable by its owner only
//! (`<data-dir>/server.key` unless `server.key_file` names another). It
//! signs links and derives the secret keys of S3 access keys, so every
//! server of one store, and the CLI that hands out links, must read the same
//! file. A new key voids every link and S3 secret key made with the old one.

use std::fmt;
use std::io::Write;
use std::path::Path;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::error::{Error, ErrorKind, Result};

type HmacSha256 = Hmac<Sha256>;

/// The server's key (zeroed when dropped, never printed).
#[derive(Clone)]
pub struct ServerKey(Zeroizing<[u8; 32]>);

impl fmt::Debug for ServerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ServerKey(..)")
    }
}

impl ServerKey {
    /// The key in `path`, made there first (mode 0600) when the file does
    /// not exist yet.
    pub fn load_or_create(path: &Path) -> Result<ServerKey> {
        match std::fs::read_to_string(path) {
            Ok(text) => Self::from_hex(text.trim()).map_err(|e| {
                Error::new(
                    ErrorKind::KeyUnavailable,
                    format!("the server key file {}: {}", path.display(), e.message()),
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Self::create(path),
            Err(e) => Err(Error::new(
                ErrorKind::KeyUnavailable,
                format!("cannot read the server key file {}: {e}", path.display()),
            )),
        }
    }

    fn create(path: &Path) -> Result<ServerKey> {
        let key = crate::crypto::generate_key()?;
        if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| io_error(path, &e))?;
        }
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        match options.open(path) {
            Ok(mut file) => {
                let text = Zeroizing::new(format!("{}\n", hex::encode(&key[..])));
                file.write_all(text.as_bytes())
                    .and_then(|()| file.sync_all())
                    .map_err(|e| io_error(path, &e))?;
                Ok(ServerKey(key))
            }
            // Another process made it first: use theirs.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Self::load_or_create(path),
            Err(e) => Err(io_error(path, &e)),
        }
    }

    /// A key from its 64 hex digits.
    pub fn from_hex(text: &str) -> Result<ServerKey> {
        let mut key = Zeroizing::new([0u8; 32]);
        match hex::decode_to_slice(text, &mut key[..]) {
            Ok(()) => Ok(ServerKey(key)),
            Err(_) => Err(Error::invalid_input("a server key is 64 hex digits")),
        }
    }

    /// HMAC-SHA256 of `message` for `purpose` (each use of the key has its
    /// own purpose, so a tag made for one is worthless for another).
    pub(crate) fn tag(&self, purpose: &str, message: &[u8]) -> [u8; 32] {
        self.mac(purpose, message)
            .map(|mac| mac.finalize().into_bytes().into())
            .unwrap_or_default()
    }

    /// Whether `tag` is `message`'s tag for `purpose`, compared in constant time.
    pub(crate) fn verify(&self, purpose: &str, message: &[u8], tag: &[u8]) -> bool {
        self.mac(purpose, message)
            .is_some_and(|mac| mac.verify_slice(tag).is_ok())
    }

    /// The CSRF token of a web session signed in with the bearer `secret`:
    /// the server's pages send it back with each change they make.
    pub fn csrf_token(&self, secret: &str) -> String {
        hex::encode(self.tag("csrf", secret.as_bytes()))
    }

    /// Whether `token` is the CSRF token of `secret`'s session (constant time).
    pub fn verify_csrf(&self, secret: &str, token: &str) -> bool {
        hex::decode(token).is_ok_and(|tag| self.verify("csrf", secret.as_bytes(), &tag))
    }

    /// HMAC takes keys of any length, so this is never `None`.
    fn mac(&self, purpose: &str, message: &[u8]) -> Option<HmacSha256> {
        let mut mac = <HmacSha256 as Mac>::new_from_slice(&self.0[..]).ok()?;
        mac.update(purpose.as_bytes());
        mac.update(&[0]);
        mac.update(message);
        Some(mac)
    }

    /// The secret access key of the S3 access key `access_key`: derived, so
    /// that the catalog never holds it and every server computes the same.
    pub(crate) fn s3_secret_key(&self, access_key: &str) -> Zeroizing<String> {
        use base64::Engine;
        let tag = self.tag("s3 secret key", access_key.as_bytes());
        Zeroizing::new(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&tag[..30]))
    }
}

fn io_error(path: &Path, e: &std::io::Error) -> Error {
    Error::new(
        ErrorKind::KeyUnavailable,
        format!("cannot write the server key file {}: {e}", path.display()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_made_once_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/server.key");
        let made = ServerKey::load_or_create(&path).unwrap();
        let read = ServerKey::load_or_create(&path).unwrap();
        assert_eq!(made.tag("p", b"m"), read.tag("p", b"m"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(!format!("{made:?}").contains(&hex::encode(&made.0[..])));
    }

    #[test]
    fn tags_depend_on_purpose_and_verify_in_constant_time() {
        let key = ServerKey::from_hex(&"ab".repeat(32)).unwrap();
        let tag = key.tag("link", b"GET\na");
        assert!(key.verify("link", b"GET\na", &tag));
        assert!(!key.verify("other", b"GET\na", &tag));
        assert!(!key.verify("link", b"GET\nb", &tag));
        assert_eq!(key.s3_secret_key("CFA").len(), 40);
        assert_ne!(*key.s3_secret_key("CFA"), *key.s3_secret_key("CFB"));
    }

    #[test]
    fn a_damaged_key_file_is_one_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server.key");
        std::fs::write(&path, "not hex").unwrap();
        let err = ServerKey::load_or_create(&path).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::KeyUnavailable);
        assert!(err.message().contains("64 hex digits"), "{}", err.message());
    }
}
