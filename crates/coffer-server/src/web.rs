//! The web archive browser under `/ui`: hand-written pages, styles and
//! script embedded in the binary (no build step, nothing fetched from
//! elsewhere), which draw themselves from the REST API. Signing in with a
//! token sets it in an HttpOnly, SameSite=Strict cookie, beside a CSRF
//! token the pages send back with each change. Asset paths carry a hash of
//! the assets, so an upgrade is never served from a stale cache.

use std::sync::LazyLock;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, LOCATION, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use crate::AppState;
use crate::auth::{CSRF_COOKIE, Caller, SESSION_COOKIE, cookie};
use crate::problem::Problem;

const INDEX: &str = include_str!("../web/index.html");
const LOGIN: &str = include_str!("../web/login.html");
const APP_JS: &str = include_str!("../web/app.js");
const APP_CSS: &str = include_str!("../web/app.css");

/// Where the assets of this build are: `/ui/assets/<hash of the assets>`.
static ASSETS: LazyLock<String> = LazyLock::new(|| {
    let mut hash = Sha256::new();
    hash.update(APP_JS);
    hash.update(APP_CSS);
    format!("/ui/assets/{}", &hex::encode(hash.finalize())[..12])
});

/// Pages: no caching, no framing, and scripts and styles from here only.
fn page(html: String) -> Response {
    (
        [
            (CONTENT_TYPE, "text/html; charset=utf-8"),
            (CACHE_CONTROL, "no-store"),
            (axum::http::header::X_FRAME_OPTIONS, "DENY"),
            (
                axum::http::header::CONTENT_SECURITY_POLICY,
                "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
            ),
        ],
        html,
    )
        .into_response()
}

fn see_other(to: &str) -> Response {
    (StatusCode::SEE_OTHER, [(LOCATION, to)]).into_response()
}

/// `GET /` and `GET /ui`: the pages (the sign-in page without a session).
pub async fn index(State(state): State<AppState>, parts: Parts) -> Response {
    let signed_in = match cookie(&parts, SESSION_COOKIE) {
        Some(secret) => state.store.authenticate(&secret).await.is_ok(),
        None => false,
    };
    match signed_in {
        true => page(INDEX.replace("{{ASSETS}}", &ASSETS)),
        false => see_other("/ui/login"),
    }
}

/// `GET /ui/login`.
pub async fn login_page(parts: Parts) -> Response {
    let failed = parts.uri.query().is_some_and(|q| q.contains("failed"));
    let message = match failed {
        true => r#"<p class="error" id="failed">That token is not valid (unknown, expired or revoked).</p>"#,
        false => "",
    };
    page(LOGIN.replace("{{ASSETS}}", &ASSETS).replace("{{MESSAGE}}", message))
}

/// `POST /ui/login` (a form with `token`): a valid token becomes the
/// session cookie; an invalid one goes back to the sign-in page.
pub async fn login(State(state): State<AppState>, body: Bytes) -> Result<Response, Problem> {
    #[derive(serde::Deserialize)]
    struct Form {
        token: String,
    }
    let form: Form = serde_urlencoded::from_bytes(&body)
        .map_err(|_| Problem::invalid_input("the sign-in form sends token=TOKEN"))?;
    let secret = form.token.trim();
    if state.store.authenticate(secret).await.is_err() {
        return Ok(see_other("/ui/login?failed"));
    }
    let csrf = state.store.server_key()?.csrf_token(secret);
    let secure = match state.public_url.starts_with("https:") {
        true => "; Secure",
        false => "",
    };
    let mut response = see_other("/ui/");
    let headers = response.headers_mut();
    add_cookie(
        headers,
        &format!("{SESSION_COOKIE}={secret}; Path=/; HttpOnly; SameSite=Strict{secure}"),
    )?;
    add_cookie(
        headers,
        &format!("{CSRF_COOKIE}={csrf}; Path=/; SameSite=Strict{secure}"),
    )?;
    Ok(response)
}

/// `POST /ui/logout`: the cookies are cleared.
pub async fn logout() -> Result<Response, Problem> {
    let mut response = see_other("/ui/login");
    for name in [SESSION_COOKIE, CSRF_COOKIE] {
        add_cookie(
            response.headers_mut(),
            &format!("{name}=; Path=/; Max-Age=0; SameSite=Strict"),
        )?;
    }
    Ok(response)
}

fn add_cookie(headers: &mut HeaderMap, cookie: &str) -> Result<(), Problem> {
    let value = HeaderValue::from_str(cookie).map_err(|_| Problem::invalid_input("a token is printable text"))?;
    headers.append(SET_COOKIE, value);
    Ok(())
}

/// Who the pages act as: they show no more than the token's scope allows.
#[derive(serde::Serialize)]
pub struct SessionInfo {
    name: String,
    scope: coffer::access::Scope,
    prefix: String,
}

/// `GET /ui/api/session`.
pub async fn session(caller: Caller) -> Json<SessionInfo> {
    Json(SessionInfo {
        name: caller.token.name,
        scope: caller.token.scope,
        prefix: caller.token.prefix,
    })
}

/// `GET /ui/assets/{hash}/{file}`: cached for good, as the hash changes
/// with the assets.
pub async fn asset(Path((hash, file)): Path<(String, String)>) -> Response {
    let current = ASSETS.rsplit('/').next().unwrap_or_default();
    let (body, content_type) = match file.as_str() {
        "app.js" => (APP_JS, "text/javascript; charset=utf-8"),
        "app.css" => (APP_CSS, "text/css; charset=utf-8"),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    if hash != current {
        return StatusCode::NOT_FOUND.into_response();
    }
    (
        [
            (CONTENT_TYPE, content_type),
            (CACHE_CONTROL, "public, max-age=31536000, immutable"),
        ],
        body,
    )
        .into_response()
}
