//! `/api/v1/bundles`: bundles listed and shown, their resources read, and
//! bundles built over HTTP (start, add resources, complete, abort). A
//! token reaches bundles when its prefix covers the bundles' keys.

use axum::Json;
use axum::body::Body;
use axum::extract::Path;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use coffer::access::Scope;
use coffer::bundle::Layout;
use coffer::catalog::{BundleQuery, BundleRecord, BundleResource};
use coffer::{BundleRef, Store};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::extract::{JsonBody, Params};
use super::objects::{body_stream, header_value};
use crate::auth::Caller;
use crate::problem::Problem;

/// Where every bundle's keys start.
fn bundles_root(store: &Store) -> String {
    format!("{}bundles/", store.bundle_config().prefix)
}

fn allow(caller: &Caller, need: Scope) -> Result<(), Problem> {
    caller.allow(need, Some(&bundles_root(&caller.store)))
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct ListQuery {
    #[serde(default)]
    open: bool,
    after: Option<String>,
    limit: Option<usize>,
}

/// `GET /api/v1/bundles?open=&after=&limit=`: bundles in creation order.
pub async fn list(caller: Caller, Params(query): Params<ListQuery>) -> Result<Json<Vec<BundleRecord>>, Problem> {
    allow(&caller, Scope::Read)?;
    let query = BundleQuery {
        open_only: query.open,
        after: query.after,
        limit: query.limit.unwrap_or(100),
        ..BundleQuery::default()
    };
    Ok(Json(caller.store.bundles(&query).await?))
}

/// `GET /api/v1/bundles/ID`.
pub async fn show(caller: Caller, Path(id): Path<String>) -> Result<Json<BundleRecord>, Problem> {
    allow(&caller, Scope::Read)?;
    Ok(Json(caller.store.bundle_info(&id).await?))
}

/// `GET /api/v1/bundles/ID/resources`: in position order.
pub async fn resources(caller: Caller, Path(id): Path<String>) -> Result<Json<Vec<BundleResource>>, Problem> {
    allow(&caller, Scope::Read)?;
    Ok(Json(caller.store.bundle_resources(&id).await?))
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct ResourceQuery {
    /// The resource's URL or name.
    which: String,
}

/// `GET /api/v1/bundles/ID/resource?which=URL|NAME`: its bytes, verified.
pub async fn resource(
    caller: Caller,
    Path(id): Path<String>,
    Params(query): Params<ResourceQuery>,
) -> Result<Response, Problem> {
    allow(&caller, Scope::Read)?;
    let resource = caller.store.bundle_resource(&id, &query.which).await?;
    let body = caller.store.read_bundle_resource(&resource).await?;
    let mut response = Body::from_stream(body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_LENGTH, resource.size.into());
    let content_type = resource.content_type.as_deref().unwrap_or("application/octet-stream");
    headers.insert(header::CONTENT_TYPE, header_value(content_type));
    Ok(response)
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct StartBody {
    primary_url: Option<String>,
    recipe_id: Option<String>,
    #[serde(default)]
    meta: Map<String, Value>,
    layout: Option<Layout>,
    unzip: Option<bool>,
}

/// `POST /api/v1/bundles` `{"primary_url", "recipe_id", "meta", "layout", "unzip"}`: a new open bundle.
pub async fn start(
    caller: Caller,
    JsonBody(body): JsonBody<StartBody>,
) -> Result<(StatusCode, Json<BundleRecord>), Problem> {
    allow(&caller, Scope::Write)?;
    let bundle = caller
        .store
        .start_bundle(BundleRef {
            primary_url: body.primary_url,
            recipe_id: body.recipe_id,
            meta: body.meta,
            layout: body.layout,
            unzip: body.unzip,
        })
        .await?;
    let record = caller.store.bundle_info(bundle.id()).await?;
    Ok((StatusCode::CREATED, Json(record)))
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct AddQuery {
    url: String,
    status: Option<u16>,
}

/// `PUT /api/v1/bundles/ID/resources?url=U&status=200` with the resource
/// as the body (its `Content-Type` recorded): the resources stored (one,
/// or an archive's entries with unzip on).
pub async fn add(
    caller: Caller,
    Path(id): Path<String>,
    Params(query): Params<AddQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<Vec<BundleResource>>), Problem> {
    allow(&caller, Scope::Write)?;
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    let bundle = caller.store.open_bundle(&id).await?;
    let added = bundle
        .add_resource(&query.url, content_type, query.status.unwrap_or(200), body_stream(body))
        .await?;
    Ok((StatusCode::CREATED, Json(added)))
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct CompleteBody {
    #[serde(default)]
    metadata: Map<String, Value>,
}

/// `POST /api/v1/bundles/ID/complete` `{"metadata": {...}}`: sealed and announced.
pub async fn complete(
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<CompleteBody>,
) -> Result<Json<BundleRecord>, Problem> {
    allow(&caller, Scope::Write)?;
    Ok(Json(caller.store.complete_bundle(&id, body.metadata).await?))
}

/// `DELETE /api/v1/bundles/ID`: an open bundle aborted, what it stored removed.
pub async fn abort(caller: Caller, Path(id): Path<String>) -> Result<StatusCode, Problem> {
    allow(&caller, Scope::Write)?;
    caller.store.abort_bundle(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}
