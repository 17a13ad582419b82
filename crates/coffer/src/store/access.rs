//! Access through `coffer serve`: tokens (made, listed, revoked, checked)
//! and links signed with the server's key, for backends that cannot presign.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use zeroize::Zeroizing;

use super::Store;
use super::remote::check_expiry;
use crate::access::{
    IssuedToken, Link, LinkMethod, NewToken, ServerKey, TokenRecord, check_token_name, new_access_key, new_secret,
    secret_sha256,
};
use crate::backend::PresignedUrl;
use crate::catalog::{TokenChange, TokenLookup};
use crate::config::ServerConfig;
use crate::error::{Error, ErrorKind, Result};
use crate::time::Timestamp;
use crate::version::VersionId;

/// Where the server is reached and where its key lies; the key is read once.
#[derive(Debug)]
pub(super) struct ServerAccess {
    public_url: String,
    key_path: PathBuf,
    key: OnceLock<ServerKey>,
}

impl ServerAccess {
    pub(super) fn new(config: &ServerConfig, data_dir: &std::path::Path) -> ServerAccess {
        ServerAccess {
            public_url: config.public_url(),
            key_path: config.key_path(data_dir),
            key: OnceLock::new(),
        }
    }

    fn key(&self) -> Result<&ServerKey> {
        if let Some(key) = self.key.get() {
            return Ok(key);
        }
        let key = ServerKey::load_or_create(&self.key_path)?;
        Ok(self.key.get_or_init(|| key))
    }
}

impl Store {
    /// The same store, reached through a server at `config`'s public URL,
    /// with its key in `config`'s key file (under `data_dir` by default).
    pub fn with_server(&self, config: &ServerConfig, data_dir: &std::path::Path) -> Store {
        Store {
            server: Some(Arc::new(ServerAccess::new(config, data_dir))),
            ..self.clone()
        }
    }

    fn server_access(&self) -> Result<&ServerAccess> {
        self.server.as_deref().ok_or_else(|| {
            Error::new(
                ErrorKind::Unsupported,
                "this store has no server settings: open it from a config to use links or S3 access keys",
            )
        })
    }

    /// The server's key (made on first use).
    pub fn server_key(&self) -> Result<ServerKey> {
        self.server_access()?.key().cloned()
    }

    /// Make a token: recorded (its secret's hash only) with an audit row
    /// `token_create`; its secret is returned this once.
    pub async fn create_token(&self, new: NewToken) -> Result<IssuedToken> {
        let name = match new.name {
            Some(name) => name,
            None => format!("token-{}", &secret_sha256(&new_secret()?)[..8]),
        };
        check_token_name(&name)?;
        crate::key::validate_prefix(&new.prefix)?;
        let now = Timestamp::now();
        let expires_at = new
            .expires_in
            .map(|span| {
                i64::try_from(span.as_micros())
                    .ok()
                    .and_then(|micros| now.as_micros().checked_add(micros))
                    .map(Timestamp::from_micros)
                    .ok_or_else(|| Error::invalid_input("the token's expiry is too far away"))
            })
            .transpose()?;
        let (access_key, s3_secret_key) = match new.s3 {
            true => {
                let access_key = new_access_key()?;
                let secret_key = self.server_key()?.s3_secret_key(&access_key);
                (Some(access_key), Some(secret_key))
            }
            false => (None, None),
        };
        let secret = new_secret()?;
        let record = TokenRecord {
            name,
            scope: new.scope,
            prefix: new.prefix,
            access_key,
            created_at: now,
            created_by: self.actor.clone(),
            expires_at,
            revoked_at: None,
        };
        self.catalog
            .token_change(TokenChange::Create {
                token: record.clone(),
                secret_sha256: secret_sha256(&secret),
            })
            .await?;
        Ok(IssuedToken {
            record,
            secret,
            s3_secret_key,
        })
    }

    /// Every token, by name (revoked and expired ones included).
    pub async fn tokens(&self) -> Result<Vec<TokenRecord>> {
        self.catalog.tokens().await
    }

    /// Revoke the token `name` (with an audit row `token_revoke`); its
    /// requests are refused from now on.
    pub async fn revoke_token(&self, name: &str) -> Result<()> {
        self.catalog
            .token_change(TokenChange::Revoke {
                name: name.to_owned(),
                at: Timestamp::now(),
                actor: self.actor.clone(),
            })
            .await
    }

    /// The token whose secret is `secret`: `Unauthorized` when there is
    /// none, or it was revoked or has expired.
    pub async fn authenticate(&self, secret: &str) -> Result<TokenRecord> {
        let token = self
            .catalog
            .token(TokenLookup::SecretSha256(&secret_sha256(secret)))
            .await?
            .ok_or_else(|| Error::new(ErrorKind::Unauthorized, "the token is not known"))?;
        token.check_usable(Timestamp::now())?;
        Ok(token)
    }

    /// The token of the S3 access key `access_key` and its secret key:
    /// `Unauthorized` when there is none, or it was revoked or has expired.
    pub async fn s3_credentials(&self, access_key: &str) -> Result<(TokenRecord, Zeroizing<String>)> {
        let token = self
            .catalog
            .token(TokenLookup::AccessKey(access_key))
            .await?
            .ok_or_else(|| Error::new(ErrorKind::Unauthorized, "the access key is not known"))?;
        token.check_usable(Timestamp::now())?;
        let secret_key = self.server_key()?.s3_secret_key(access_key);
        Ok((token, secret_key))
    }

    /// Whether [`presign_get`](Self::presign_get) and
    /// [`presign_put`](Self::presign_put) give URLs of the backend itself;
    /// when not (local disk, or an encrypted store, whose stored bytes are
    /// ciphertext), links through the server stand in ([`link`](Self::link)).
    pub fn presigns(&self) -> bool {
        self.backend.capabilities().presign && !self.encryption.is_on()
    }

    /// A link through the server that reads a version of `key` (the latest
    /// when `version_id` is `None`, fixed now), or writes the next version
    /// of `key` (`LinkMethod::Put`), for `expires`.
    pub async fn link(
        &self,
        key: &str,
        version_id: Option<&VersionId>,
        method: LinkMethod,
        expires: Duration,
    ) -> Result<PresignedUrl> {
        check_expiry(expires)?;
        let access = self.server_access()?;
        let version = match method {
            LinkMethod::Get => Some(self.head(key, version_id).await?.version_id.to_string()),
            LinkMethod::Put => {
                crate::key::ObjectKey::new(key)?;
                None
            }
        };
        let expires_at = Timestamp::now().as_micros() / 1_000_000 + i64::try_from(expires.as_secs()).unwrap_or(0);
        let link = Link {
            method,
            key: key.to_owned(),
            version,
            expires: expires_at,
        };
        Ok(PresignedUrl {
            method: match method {
                LinkMethod::Get => "GET",
                LinkMethod::Put => "PUT",
            }
            .to_owned(),
            url: link.to_url(&access.public_url, access.key()?)?,
            headers: Vec::new(),
        })
    }

    /// Check a link's signature at the current time (see [`Link::verify`]).
    pub fn verify_link(&self, link: &Link, signature: &str) -> Result<()> {
        link.verify(self.server_access()?.key()?, signature, Timestamp::now())
    }
}
