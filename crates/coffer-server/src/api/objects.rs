//! `/api/v1/objects`: put (streamed), get (ranges, conditional requests),
//! head, delete and list, each one call of `Store`.

use std::time::{Duration, SystemTime};

use axum::Json;
use axum::body::Body;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use coffer::access::Scope;
use coffer::{ByteRange, GetOptions, ListOptions, ObjectVersion, PutOptions, Store, VersionId};
use futures::TryStreamExt;
use schemars::JsonSchema;
use serde::Deserialize;

use super::extract::{Key, Params};
use crate::auth::Caller;
use crate::problem::Problem;

/// The prefix of metadata headers: `x-coffer-meta-NAME: VALUE`.
pub const META_PREFIX: &str = "x-coffer-meta-";

/// `?version=ID`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct VersionQuery {
    /// A version other than the latest.
    pub version: Option<String>,
    /// Delete the version for good past a governance retention (admin).
    #[serde(default)]
    pub bypass_governance: bool,
}

/// A version id of the query, parsed.
pub fn version_of(query: &VersionQuery) -> Result<Option<VersionId>, Problem> {
    Ok(query.version.as_deref().map(str::parse).transpose()?)
}

/// A request body as the stream a put takes.
pub fn body_stream(body: Body) -> coffer::body::ByteStream {
    Box::pin(
        body.into_data_stream()
            .map_err(|e| coffer::Error::new(coffer::ErrorKind::Io, format!("the request body broke off: {e}"))),
    )
}

/// `PUT /api/v1/objects/KEY`: the body becomes the key's next version.
/// A put whose `If-Match` or `If-None-Match` does not hold is refused with
/// 412, as HTTP has it (the library's kind for it is a conflict).
pub async fn put(caller: Caller, Key(key): Key, headers: HeaderMap, body: Body) -> Result<Response, Problem> {
    caller.allow(Scope::Write, Some(&key))?;
    let conditional = headers.contains_key(header::IF_MATCH) || headers.contains_key(header::IF_NONE_MATCH);
    match put_body(&caller.store, &key, &headers, body).await {
        Ok(version) => Ok(created(&version)),
        Err(problem) if conditional => Err(problem.conflict_as_precondition()),
        Err(problem) => Err(problem),
    }
}

/// Store `body` as the next version of `key`, with the content type,
/// metadata and preconditions of `headers`.
pub async fn put_body(store: &Store, key: &str, headers: &HeaderMap, body: Body) -> Result<ObjectVersion, Problem> {
    let text = |name: HeaderName| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let metadata = headers
        .iter()
        .filter_map(|(name, value)| {
            let name = name.as_str().strip_prefix(META_PREFIX)?;
            Some(
                value
                    .to_str()
                    .map(|value| (name.to_owned(), value.to_owned()))
                    .map_err(|_| {
                        coffer::Error::new(
                            coffer::ErrorKind::InvalidInput,
                            format!("metadata header {META_PREFIX}{name} is not text"),
                        )
                    }),
            )
        })
        .collect::<coffer::Result<_>>()?;
    let options = PutOptions {
        content_type: text(header::CONTENT_TYPE),
        metadata,
        if_match: text(header::IF_MATCH).map(|etag| unquote(&etag).to_owned()),
        if_none_match: text(header::IF_NONE_MATCH).is_some_and(|v| v.trim() == "*"),
        ..PutOptions::default()
    };
    Ok(store.put_stream(key, body_stream(body), options).await?)
}

/// 201 with the new version as JSON and its ETag.
pub fn created(version: &ObjectVersion) -> Response {
    let mut response = (StatusCode::CREATED, Json(version)).into_response();
    version_headers(response.headers_mut(), version);
    response
}

/// `GET /api/v1/objects/KEY` (and `HEAD`, which axum routes here, without the body).
pub async fn get(
    caller: Caller,
    method: Method,
    Key(key): Key,
    Params(query): Params<VersionQuery>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    caller.allow(Scope::Read, Some(&key))?;
    let with_body = method != Method::HEAD;
    read(&caller.store, &key, version_of(&query)?.as_ref(), &headers, with_body).await
}

/// Answer a read of a version: 304 or 412 as its conditional headers say,
/// 416 for a range beyond it, else its bytes (206 for a range) streamed
/// and verified; `with_body` false for HEAD.
pub async fn read(
    store: &Store,
    key: &str,
    version_id: Option<&VersionId>,
    headers: &HeaderMap,
    with_body: bool,
) -> Result<Response, Problem> {
    let version = store.head(key, version_id).await?;
    if let Some(status) = precondition_status(headers, &version) {
        let mut response = status.into_response();
        version_headers(response.headers_mut(), &version);
        return Ok(response);
    }
    let range = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .map(str::parse::<ByteRange>)
        .transpose()?;
    let span = match range {
        Some(range) => Some(range.resolve(version.size).map_err(|_| {
            Problem::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "invalid_input",
                format!("range not satisfiable: the object has {} bytes", version.size),
            )
        })?),
        None => None,
    };
    let (status, length) = match &span {
        Some(span) => (StatusCode::PARTIAL_CONTENT, span.end - span.start),
        None => (StatusCode::OK, version.size),
    };
    let body = match with_body {
        true => {
            let options = GetOptions {
                range,
                ..GetOptions::default()
            };
            Body::from_stream(store.open_version(version.clone(), options).await?.body)
        }
        false => Body::empty(),
    };
    let mut response = (status, body).into_response();
    let out = response.headers_mut();
    version_headers(out, &version);
    out.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    out.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if let Some(span) = span {
        let value = format!("bytes {}-{}/{}", span.start, span.end - 1, version.size);
        out.insert(header::CONTENT_RANGE, header_value(&value));
    }
    let content_type = version.content_type.as_deref().unwrap_or("application/octet-stream");
    out.insert(header::CONTENT_TYPE, header_value(content_type));
    for (name, value) in &version.metadata {
        if let (Ok(name), Ok(value)) = (
            HeaderName::try_from(format!("{META_PREFIX}{name}")),
            HeaderValue::from_str(value),
        ) {
            out.insert(name, value);
        }
    }
    Ok(response)
}

/// `DELETE /api/v1/objects/KEY`: a delete marker; with `?version=ID` that
/// version is removed for good.
pub async fn delete(
    caller: Caller,
    Key(key): Key,
    Params(query): Params<VersionQuery>,
) -> Result<Json<ObjectVersion>, Problem> {
    caller.allow(Scope::Write, Some(&key))?;
    let removed = match (version_of(&query)?, query.bypass_governance) {
        (None, _) => caller.store.delete(&key).await?,
        (Some(version), false) => caller.store.delete_version(&key, &version).await?,
        (Some(version), true) => {
            caller.allow(Scope::Admin, Some(&key))?;
            caller.store.delete_version_bypassing_governance(&key, &version).await?
        }
    };
    Ok(Json(removed))
}

/// `GET /api/v1/objects?prefix=&delimiter=&max_keys=&start_after=`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct ListQuery {
    #[serde(default)]
    prefix: String,
    delimiter: Option<String>,
    max_keys: Option<usize>,
    start_after: Option<String>,
}

/// One page of a listing.
#[derive(Debug, serde::Serialize, JsonSchema)]
pub struct Listing {
    /// The keys' current versions, in key order.
    objects: Vec<ObjectVersion>,
    /// With a delimiter: the groups of keys, each ending in it.
    common_prefixes: Vec<String>,
    /// More keys follow.
    is_truncated: bool,
    /// Where the next page starts (`start_after`), when truncated.
    next_start_after: Option<String>,
}

/// `GET /api/v1/objects`: one page of current keys, in key order.
pub async fn list(caller: Caller, Params(query): Params<ListQuery>) -> Result<Json<Listing>, Problem> {
    let prefix = caller.token.narrow_prefix(&query.prefix)?;
    let options = ListOptions {
        prefix,
        delimiter: query.delimiter,
        max_keys: query.max_keys.unwrap_or(ListOptions::default().max_keys),
        start_after: query.start_after,
    };
    let page = caller.store.list(&options).await?;
    Ok(Json(Listing {
        objects: page.objects,
        common_prefixes: page.common_prefixes,
        is_truncated: page.is_truncated,
        next_start_after: page.next_start_after,
    }))
}

/// ETag, Last-Modified and the version's id.
fn version_headers(out: &mut HeaderMap, version: &ObjectVersion) {
    if let Some(etag) = &version.etag {
        out.insert(header::ETAG, header_value(&format!("\"{etag}\"")));
    }
    out.insert(
        header::LAST_MODIFIED,
        header_value(&httpdate::fmt_http_date(system_time(version))),
    );
    out.insert("x-coffer-version-id", header_value(version.version_id.as_str()));
}

pub(crate) fn system_time(version: &ObjectVersion) -> SystemTime {
    let micros = u64::try_from(version.created_at.as_micros()).unwrap_or(0);
    SystemTime::UNIX_EPOCH + Duration::from_micros(micros)
}

/// What the conditional headers make of a read (RFC 9110 13.2.2 order):
/// 412 when If-Match or If-Unmodified-Since fails, 304 when If-None-Match
/// or If-Modified-Since does.
pub(crate) fn precondition_status(headers: &HeaderMap, version: &ObjectVersion) -> Option<StatusCode> {
    let text = |name: HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    let etag = version.etag.as_deref().unwrap_or_default();
    let modified = system_time(version);
    let since = |name| text(name).and_then(|v| httpdate::parse_http_date(v).ok());
    // HTTP dates have whole seconds.
    let after = |date: SystemTime| modified.duration_since(date).is_ok_and(|d| d >= Duration::from_secs(1));
    if let Some(wanted) = text(header::IF_MATCH) {
        if !etag_matches(wanted, etag) {
            return Some(StatusCode::PRECONDITION_FAILED);
        }
    } else if since(header::IF_UNMODIFIED_SINCE).is_some_and(after) {
        return Some(StatusCode::PRECONDITION_FAILED);
    }
    if let Some(wanted) = text(header::IF_NONE_MATCH) {
        if etag_matches(wanted, etag) {
            return Some(StatusCode::NOT_MODIFIED);
        }
    } else if since(header::IF_MODIFIED_SINCE).is_some_and(|date| !after(date)) {
        return Some(StatusCode::NOT_MODIFIED);
    }
    None
}

/// Whether a list of entity tags (`"a", W/"b"` or `*`) names `etag`.
fn etag_matches(list: &str, etag: &str) -> bool {
    list.split(',')
        .map(str::trim)
        .any(|tag| tag == "*" || unquote(tag) == etag)
}

fn unquote(tag: &str) -> &str {
    tag.trim().trim_start_matches("W/").trim_matches('"')
}

/// A header value from text the server made (ids, numbers, dates, types
/// the library checked); one that would not be a header value is left empty.
pub fn header_value(text: &str) -> HeaderValue {
    HeaderValue::from_str(text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entity_tags_match_in_every_spelling() {
        assert!(etag_matches("\"abc\"", "abc"));
        assert!(etag_matches("W/\"x\", \"abc\"", "abc"));
        assert!(etag_matches("*", "abc"));
        assert!(!etag_matches("\"abd\"", "abc"));
    }
}
