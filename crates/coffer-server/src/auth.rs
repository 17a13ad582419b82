//! Who is calling: the bearer token of a request (or of the web pages'
//! session cookie, whose changes must carry its CSRF token), checked
//! against the catalog, and the store that records its changes as made by
//! `token:NAME`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use coffer::Store;
use coffer::access::{Scope, TokenRecord};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::AppState;
use crate::problem::Problem;

/// A caller with a valid token.
pub struct Caller {
    /// Its token.
    pub token: TokenRecord,
    /// The store, recording changes as the token's.
    pub store: Store,
}

impl Caller {
    /// Refuse (403) unless the token allows `need` on `key`.
    pub fn allow(&self, need: Scope, key: Option<&str>) -> Result<(), Problem> {
        self.token.authorize(need, key).map_err(Problem::from)
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Caller, Problem> {
        let (secret, from_cookie) = match bearer(parts) {
            Some(secret) => (secret, false),
            None => match cookie(parts, SESSION_COOKIE) {
                Some(secret) => (secret, true),
                None => {
                    return Err(Problem::new(
                        StatusCode::UNAUTHORIZED,
                        "unauthorized",
                        "no token: send Authorization: Bearer TOKEN (coffer token create makes one)",
                    ));
                }
            },
        };
        let token = state.tokens.authenticate(&state.store, &secret).await?;
        // A web session's changes carry the CSRF token its pages were given.
        if from_cookie && !parts.method.is_safe() {
            let sent = parts
                .headers
                .get(CSRF_HEADER)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            if !state.store.server_key()?.verify_csrf(&secret, sent) {
                return Err(Problem::new(
                    StatusCode::FORBIDDEN,
                    "forbidden",
                    "the request lacks the page's CSRF token: changes from the web pages carry X-CSRF-Token",
                ));
            }
        }
        let store = state.store.with_actor(token.actor());
        Ok(Caller { token, store })
    }
}

/// How long a token found valid is taken as valid without asking the
/// catalog again: a revoke reaches every server within this. Expiry is
/// checked at each use.
const TOKEN_CACHE_TTL: Duration = Duration::from_secs(1);

/// Tokens recently found valid, by their secret's SHA-256 (or their S3
/// access key's): a request costs no catalog read for its token while its
/// entry is fresh.
#[derive(Default)]
pub struct TokenCache {
    bearer: Cached<TokenRecord>,
    s3: Cached<(TokenRecord, Zeroizing<String>)>,
}

type Cached<T> = Mutex<HashMap<[u8; 32], (T, Instant)>>;

impl TokenCache {
    /// The token of `secret`, checked as [`Store::authenticate`] checks it.
    pub async fn authenticate(&self, store: &Store, secret: &str) -> coffer::Result<TokenRecord> {
        cached(&self.bearer, secret, |token| token, store.authenticate(secret)).await
    }

    /// The token and secret key of an S3 access key, as
    /// [`Store::s3_credentials`] gives them.
    pub async fn s3_credentials(
        &self,
        store: &Store,
        access_key: &str,
    ) -> coffer::Result<(TokenRecord, Zeroizing<String>)> {
        cached(
            &self.s3,
            access_key,
            |(token, _)| token,
            store.s3_credentials(access_key),
        )
        .await
    }
}

/// `name`'s entry in `cache` while fresh and its token usable, else what
/// `fetch` finds (kept).
async fn cached<T: Clone>(
    cache: &Cached<T>,
    name: &str,
    token_of: fn(&T) -> &TokenRecord,
    fetch: impl std::future::Future<Output = coffer::Result<T>>,
) -> coffer::Result<T> {
    let hash: [u8; 32] = Sha256::digest(name.as_bytes()).into();
    let lock = || cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let fresh = lock()
        .get(&hash)
        .filter(|(_, at)| at.elapsed() < TOKEN_CACHE_TTL)
        .map(|(entry, _)| entry.clone());
    if let Some(entry) = fresh {
        token_of(&entry).check_usable(coffer::Timestamp::now())?;
        return Ok(entry);
    }
    let entry = fetch.await?;
    let mut entries = lock();
    entries.retain(|_, (_, at)| at.elapsed() < TOKEN_CACHE_TTL);
    entries.insert(hash, (entry.clone(), Instant::now()));
    Ok(entry)
}

/// The cookie that holds a web session's token (HttpOnly, SameSite=Strict).
pub const SESSION_COOKIE: &str = "coffer_session";
/// The cookie the pages read their CSRF token from.
pub const CSRF_COOKIE: &str = "coffer_csrf";
/// The header a web page's change carries its CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";

fn bearer(parts: &Parts) -> Option<String> {
    let value = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, secret) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| secret.trim().to_owned())
}

/// The value of cookie `name`, if the request has it.
pub fn cookie(parts: &Parts, name: &str) -> Option<String> {
    parts
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.to_owned())
}
