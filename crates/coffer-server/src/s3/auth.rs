//! Who is calling the S3 endpoint: s3s checks the SigV4 (or SigV2)
//! signature, header or presigned, with the secret key of the access key
//! `coffer token create --s3` issued; the token then gives the caller's
//! scope and prefix, and the store records changes as `token:NAME`.

use std::sync::Arc;

use coffer::Store;
use coffer::access::{Scope, TokenRecord};
use s3s::auth::{Credentials, S3Auth, SecretKey};
use s3s::{S3ErrorCode, S3Result};

use super::errors::{refused, s3_error};
use crate::auth::TokenCache;

/// The secret keys of access keys, from the catalog and the server key.
pub struct AccessKeys {
    pub store: Store,
    pub tokens: Arc<TokenCache>,
}

#[async_trait::async_trait]
impl S3Auth for AccessKeys {
    async fn get_secret_key(&self, access_key: &str) -> S3Result<SecretKey> {
        let (_, secret) = self
            .tokens
            .s3_credentials(&self.store, access_key)
            .await
            .map_err(s3_error)?;
        Ok(SecretKey::from(secret.as_str()))
    }
}

/// A caller whose signature checked out.
pub struct S3Caller {
    token: TokenRecord,
    /// The store, recording changes as the token's.
    pub store: Store,
}

impl S3Caller {
    /// The caller of a request: anonymous requests are refused.
    pub async fn of(store: &Store, tokens: &TokenCache, credentials: Option<&Credentials>) -> S3Result<S3Caller> {
        let credentials = credentials.ok_or_else(|| {
            refused(
                S3ErrorCode::AccessDenied,
                "anonymous requests are refused: sign with an access key from coffer token create --s3",
            )
        })?;
        let (token, _) = tokens
            .s3_credentials(store, &credentials.access_key)
            .await
            .map_err(s3_error)?;
        let store = store.with_actor(token.actor());
        Ok(S3Caller { token, store })
    }

    /// Refuse (AccessDenied) unless the token allows `need` on `key`
    /// (`None`: on the store as a whole).
    pub fn allow(&self, need: Scope, key: Option<&str>) -> S3Result<()> {
        self.token.authorize(need, key).map_err(s3_error)
    }

    /// The part of `prefix` the token may list (AccessDenied when none).
    pub fn narrow_prefix(&self, prefix: &str) -> S3Result<String> {
        self.token.narrow_prefix(prefix).map_err(s3_error)
    }
}
