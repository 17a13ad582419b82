//! `/links/KEY?method=&version=&expires=&signature=`: the links `coffer url`
//! makes for backends that cannot presign. The signature is checked in
//! constant time before anything is read; an expired or altered link is
//! refused (401) and changes nothing.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Response;
use coffer::access::{Link, LinkMethod};
use schemars::JsonSchema;
use serde::Deserialize;

use crate::AppState;
use crate::api::extract::{Key, Params};
use crate::api::objects;
use crate::problem::Problem;

/// The actor a link's upload is recorded as.
const LINK_ACTOR: &str = "link";

#[derive(Debug, Deserialize, JsonSchema)]
pub struct LinkQuery {
    method: String,
    version: Option<String>,
    expires: i64,
    signature: String,
}

/// GET, HEAD or PUT through a link.
pub async fn follow(
    State(state): State<AppState>,
    method: Method,
    Key(key): Key,
    Params(query): Params<LinkQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Problem> {
    let link = Link {
        method: LinkMethod::parse(&query.method)?,
        key,
        version: query.version,
        expires: query.expires,
    };
    state.store.verify_link(&link, &query.signature)?;
    let store = state.store.with_actor(LINK_ACTOR);
    match (link.method, &method) {
        (LinkMethod::Get, &Method::GET | &Method::HEAD) => {
            let version = link.version.as_deref().map(str::parse).transpose()?;
            objects::read(&store, &link.key, version.as_ref(), &headers, method == Method::GET).await
        }
        (LinkMethod::Put, &Method::PUT) => {
            let version = objects::put_body(&store, &link.key, &headers, body).await?;
            Ok(objects::created(&version))
        }
        (allowed, _) => Err(Problem::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "invalid_input",
            format!("this link is for {}", allowed.as_str().to_uppercase()),
        )),
    }
}
