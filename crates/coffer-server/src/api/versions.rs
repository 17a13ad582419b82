//! A key's versions and what can be done to them: versions, history,
//! compare, rollback, undelete, copy, tags, comments, metadata, retention
//! and legal hold. The key is the path's tail, after the resource's name.

use axum::Json;
use coffer::access::Scope;
use coffer::{CopyOptions, HistoryEntry, Metadata, ObjectVersion, Retention, Tags, Timestamp, VersionId};
use schemars::JsonSchema;
use serde::Deserialize;

use super::extract::{JsonBody, Key, Params};
use super::objects::VersionQuery;
use crate::auth::Caller;
use crate::problem::Problem;

fn version_id(text: &str) -> Result<VersionId, Problem> {
    Ok(text.parse()?)
}

/// The version `?version=` names: required for changes to one version.
fn named_version(query: &VersionQuery) -> Result<VersionId, Problem> {
    match &query.version {
        Some(text) => version_id(text),
        None => Err(Problem::invalid_input("give ?version=ID")),
    }
}

/// `GET /api/v1/versions/KEY`: every version and delete marker, newest first.
pub async fn versions(caller: Caller, Key(key): Key) -> Result<Json<Vec<ObjectVersion>>, Problem> {
    caller.allow(Scope::Read, Some(&key))?;
    Ok(Json(caller.store.versions(&key).await?))
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct HistoryQuery {
    limit: Option<usize>,
}

/// `GET /api/v1/history/KEY?limit=N`: versions with author, tags, comments and size change.
pub async fn history(
    caller: Caller,
    Key(key): Key,
    Params(query): Params<HistoryQuery>,
) -> Result<Json<Vec<HistoryEntry>>, Problem> {
    caller.allow(Scope::Read, Some(&key))?;
    Ok(Json(caller.store.history(&key, query.limit).await?))
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct CompareQuery {
    from: String,
    to: String,
}

/// `GET /api/v1/compare/KEY?from=ID&to=ID`: size, content, metadata, tags and text diff.
pub async fn compare(
    caller: Caller,
    Key(key): Key,
    Params(query): Params<CompareQuery>,
) -> Result<Json<coffer::Comparison>, Problem> {
    caller.allow(Scope::Read, Some(&key))?;
    let comparison = caller
        .store
        .compare(&key, &version_id(&query.from)?, &version_id(&query.to)?)
        .await?;
    Ok(Json(comparison))
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct RollbackBody {
    version: String,
    comment: Option<String>,
}

/// `POST /api/v1/rollback/KEY` `{"version": ID, "comment": ...}`: that version current again.
pub async fn rollback(
    caller: Caller,
    Key(key): Key,
    JsonBody(body): JsonBody<RollbackBody>,
) -> Result<Json<ObjectVersion>, Problem> {
    caller.allow(Scope::Write, Some(&key))?;
    let version = version_id(&body.version)?;
    Ok(Json(
        caller.store.rollback(&key, &version, body.comment.as_deref()).await?,
    ))
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct UndeleteBody {
    comment: Option<String>,
}

/// `POST /api/v1/undelete/KEY` `{"comment": ...}`: a deleted key back.
pub async fn undelete(
    caller: Caller,
    Key(key): Key,
    JsonBody(body): JsonBody<UndeleteBody>,
) -> Result<Json<ObjectVersion>, Problem> {
    caller.allow(Scope::Write, Some(&key))?;
    Ok(Json(caller.store.undelete(&key, body.comment.as_deref()).await?))
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct CopyBody {
    source: String,
    version: Option<String>,
    metadata: Option<Metadata>,
    content_type: Option<String>,
}

/// `POST /api/v1/copy/DESTINATION` `{"source": KEY, "version": ...}`: a new
/// version of DESTINATION with the source's content (no bytes copied).
pub async fn copy(
    caller: Caller,
    Key(destination): Key,
    JsonBody(body): JsonBody<CopyBody>,
) -> Result<Json<ObjectVersion>, Problem> {
    caller.allow(Scope::Read, Some(&body.source))?;
    caller.allow(Scope::Write, Some(&destination))?;
    let options = CopyOptions {
        source_version: body.version.as_deref().map(version_id).transpose()?,
        metadata: body.metadata,
        content_type: body.content_type,
    };
    Ok(Json(caller.store.copy(&body.source, &destination, options).await?))
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct TagsBody {
    #[serde(default)]
    set: Tags,
    #[serde(default)]
    remove: Vec<String>,
}

/// `PUT /api/v1/tags/KEY?version=ID` `{"set": {...}, "remove": [...]}`.
pub async fn tags(
    caller: Caller,
    Key(key): Key,
    Params(query): Params<VersionQuery>,
    JsonBody(body): JsonBody<TagsBody>,
) -> Result<Json<ObjectVersion>, Problem> {
    caller.allow(Scope::Write, Some(&key))?;
    let version = named_version(&query)?;
    Ok(Json(caller.store.tag(&key, &version, body.set, &body.remove).await?))
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct CommentBody {
    text: String,
}

/// `POST /api/v1/comments/KEY?version=ID` `{"text": ...}`.
pub async fn comment(
    caller: Caller,
    Key(key): Key,
    Params(query): Params<VersionQuery>,
    JsonBody(body): JsonBody<CommentBody>,
) -> Result<Json<ObjectVersion>, Problem> {
    caller.allow(Scope::Write, Some(&key))?;
    let version = named_version(&query)?;
    Ok(Json(caller.store.comment(&key, &version, &body.text).await?))
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct MetadataBody {
    #[serde(default)]
    set: Metadata,
    #[serde(default)]
    remove: Vec<String>,
    content_type: Option<String>,
}

/// `PATCH /api/v1/metadata/KEY` `{"set": {...}, "remove": [...], "content_type": ...}`:
/// a new version with the changed metadata.
pub async fn metadata(
    caller: Caller,
    Key(key): Key,
    JsonBody(body): JsonBody<MetadataBody>,
) -> Result<Json<ObjectVersion>, Problem> {
    caller.allow(Scope::Write, Some(&key))?;
    let changed = caller
        .store
        .update_metadata(&key, body.set, &body.remove, body.content_type)
        .await?;
    Ok(Json(changed))
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct RetentionBody {
    /// `governance` (the default) or `compliance`.
    mode: Option<String>,
    /// Until this time (RFC 3339 or a date) ...
    until: Option<String>,
    /// ... or for this span from now (`10y`, `90d`).
    span: Option<String>,
    /// Shorten or remove a governance retention in force (admin).
    #[serde(default)]
    bypass_governance: bool,
}

/// `PUT /api/v1/retention/KEY?version=ID` `{"mode", "until" | "span"}`.
pub async fn retention(
    caller: Caller,
    Key(key): Key,
    Params(query): Params<VersionQuery>,
    JsonBody(body): JsonBody<RetentionBody>,
) -> Result<Json<ObjectVersion>, Problem> {
    caller.allow(Scope::Write, Some(&key))?;
    if body.bypass_governance {
        caller.allow(Scope::Admin, Some(&key))?;
    }
    let version = named_version(&query)?;
    let now = Timestamp::now();
    let retention = Retention::requested(body.until.as_deref(), body.span.as_deref(), body.mode.as_deref(), now)?
        .ok_or_else(|| Problem::invalid_input("give until or span"))?;
    let changed = caller
        .store
        .set_retention(&key, &version, retention, body.bypass_governance)
        .await?;
    Ok(Json(changed))
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct LegalHoldBody {
    on: bool,
}

/// `PUT /api/v1/legal-hold/KEY?version=ID` `{"on": true|false}`.
pub async fn legal_hold(
    caller: Caller,
    Key(key): Key,
    Params(query): Params<VersionQuery>,
    JsonBody(body): JsonBody<LegalHoldBody>,
) -> Result<Json<ObjectVersion>, Problem> {
    caller.allow(Scope::Write, Some(&key))?;
    let version = named_version(&query)?;
    Ok(Json(caller.store.set_legal_hold(&key, &version, body.on).await?))
}
