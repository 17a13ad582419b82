//! Who is calling: the bearer token of a request, checked against the
//! catalog, and the store that records its changes as made by `token:NAME`.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use coffer::Store;
use coffer::access::{Scope, TokenRecord};

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
        let secret = bearer(parts).ok_or_else(|| {
            Problem::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "no token: send Authorization: Bearer TOKEN (coffer token create makes one)",
            )
        })?;
        let token = state.store.authenticate(&secret).await?;
        let store = state.store.with_actor(token.actor());
        Ok(Caller { token, store })
    }
}

fn bearer(parts: &Parts) -> Option<String> {
    let value = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, secret) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| secret.trim().to_owned())
}
