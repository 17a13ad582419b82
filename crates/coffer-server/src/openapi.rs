//! `/api/v1/openapi.json`: the OpenAPI 3.0 document of the REST API, made
//! from the code: every operation below names the types its handler takes
//! and answers with, and their schemas come from those types (schemars).

use axum::Json;
use schemars::generate::{Contract, SchemaSettings};
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde_json::{Map, Value, json};

use crate::api::{bundles, hooks, objects, versions};
use coffer::catalog::{AuditEntry, BundleRecord, BundleResource, DeadLetter, SearchPage};
use coffer::events::{HookDefinition, HooksReport};
use coffer::{Comparison, Event, HistoryEntry, ObjectVersion};

/// A schema from a type, in one of the two generators.
type SchemaOf = fn(&mut SchemaGenerator) -> Schema;

fn of<T: JsonSchema>(generator: &mut SchemaGenerator) -> Schema {
    generator.subschema_for::<T>()
}

/// What an operation takes as its body.
enum Input {
    None,
    Json(SchemaOf),
    Bytes,
}

/// What it answers with on success.
enum Output {
    Json(u16, SchemaOf),
    /// An object's bytes (200, or 206 for a range; 304 and 412 by its conditional headers).
    Content,
    Empty(u16),
}

/// One operation: method, path (OpenAPI's form), summary, query
/// parameters (a type whose fields they are, or names of free-form
/// text parameters), body and answer.
struct Operation {
    method: &'static str,
    path: &'static str,
    summary: &'static str,
    query: Query,
    input: Input,
    output: Output,
}

enum Query {
    None,
    Typed(SchemaOf),
    /// Text parameters (a filter may repeat).
    Named(&'static [&'static str]),
}

fn operations() -> Vec<Operation> {
    use Input as I;
    use Output as O;
    use Query as Q;
    let op = |method, path, summary, query, input, output| Operation {
        method,
        path,
        summary,
        query,
        input,
        output,
    };
    vec![
        op(
            "get",
            "/api/v1/objects",
            "List a page of current keys",
            Q::Typed(of::<objects::ListQuery>),
            I::None,
            O::Json(200, of::<objects::Listing>),
        ),
        op(
            "put",
            "/api/v1/objects/{key}",
            "Store the body as the key's next version",
            Q::None,
            I::Bytes,
            O::Json(201, of::<ObjectVersion>),
        ),
        op(
            "get",
            "/api/v1/objects/{key}",
            "Read a version's bytes (ranges, conditional requests)",
            Q::Typed(of::<objects::VersionQuery>),
            I::None,
            O::Content,
        ),
        op(
            "delete",
            "/api/v1/objects/{key}",
            "Add a delete marker, or remove one version for good",
            Q::Typed(of::<objects::VersionQuery>),
            I::None,
            O::Json(200, of::<ObjectVersion>),
        ),
        op(
            "get",
            "/api/v1/versions/{key}",
            "Every version and delete marker, newest first",
            Q::None,
            I::None,
            O::Json(200, of::<Vec<ObjectVersion>>),
        ),
        op(
            "get",
            "/api/v1/history/{key}",
            "Versions with author, tags, comments and size change",
            Q::Typed(of::<versions::HistoryQuery>),
            I::None,
            O::Json(200, of::<Vec<HistoryEntry>>),
        ),
        op(
            "get",
            "/api/v1/compare/{key}",
            "How two versions differ",
            Q::Typed(of::<versions::CompareQuery>),
            I::None,
            O::Json(200, of::<Comparison>),
        ),
        op(
            "post",
            "/api/v1/rollback/{key}",
            "Make an older version current again",
            Q::None,
            I::Json(of::<versions::RollbackBody>),
            O::Json(200, of::<ObjectVersion>),
        ),
        op(
            "post",
            "/api/v1/undelete/{key}",
            "Bring a deleted key back",
            Q::None,
            I::Json(of::<versions::UndeleteBody>),
            O::Json(200, of::<ObjectVersion>),
        ),
        op(
            "post",
            "/api/v1/copy/{key}",
            "Copy another key's version to this key",
            Q::None,
            I::Json(of::<versions::CopyBody>),
            O::Json(200, of::<ObjectVersion>),
        ),
        op(
            "put",
            "/api/v1/tags/{key}",
            "Set or remove a version's tags",
            Q::Typed(of::<objects::VersionQuery>),
            I::Json(of::<versions::TagsBody>),
            O::Json(200, of::<ObjectVersion>),
        ),
        op(
            "post",
            "/api/v1/comments/{key}",
            "Comment on a version",
            Q::Typed(of::<objects::VersionQuery>),
            I::Json(of::<versions::CommentBody>),
            O::Json(200, of::<ObjectVersion>),
        ),
        op(
            "patch",
            "/api/v1/metadata/{key}",
            "A new version with changed metadata",
            Q::None,
            I::Json(of::<versions::MetadataBody>),
            O::Json(200, of::<ObjectVersion>),
        ),
        op(
            "put",
            "/api/v1/retention/{key}",
            "Set a version's retention",
            Q::Typed(of::<objects::VersionQuery>),
            I::Json(of::<versions::RetentionBody>),
            O::Json(200, of::<ObjectVersion>),
        ),
        op(
            "put",
            "/api/v1/legal-hold/{key}",
            "Set or clear a version's legal hold",
            Q::Typed(of::<objects::VersionQuery>),
            I::Json(of::<versions::LegalHoldBody>),
            O::Json(200, of::<ObjectVersion>),
        ),
        op(
            "get",
            "/api/v1/search",
            "Full-text search",
            Q::Named(&[
                "q",
                "prefix",
                "tag",
                "metadata",
                "content_type",
                "since",
                "until",
                "all_versions",
                "limit",
                "cursor",
            ]),
            I::None,
            O::Json(200, of::<SearchPage>),
        ),
        op(
            "get",
            "/api/v1/audit",
            "Audit rows, newest first",
            Q::Named(&[
                "key",
                "prefix",
                "actor",
                "action",
                "since",
                "until",
                "after_id",
                "oldest_first",
                "limit",
            ]),
            I::None,
            O::Json(200, of::<Vec<AuditEntry>>),
        ),
        op(
            "get",
            "/api/v1/hooks",
            "Every hook, secrets hidden",
            Q::None,
            I::None,
            O::Json(200, of::<Vec<HookDefinition>>),
        ),
        op(
            "post",
            "/api/v1/hooks",
            "Add a hook (admin)",
            Q::None,
            I::Json(of::<hooks::NewHook>),
            O::Json(201, of::<Value>),
        ),
        op(
            "get",
            "/api/v1/hooks/stats",
            "Each hook's deliveries, failures and times",
            Q::None,
            I::None,
            O::Json(200, of::<HooksReport>),
        ),
        op(
            "get",
            "/api/v1/hooks/dead",
            "Dead-lettered deliveries",
            Q::Typed(of::<hooks::DeadQuery>),
            I::None,
            O::Json(200, of::<Vec<DeadLetter>>),
        ),
        op(
            "post",
            "/api/v1/hooks/replay",
            "Retry dead-lettered deliveries (admin)",
            Q::None,
            I::Json(of::<hooks::ReplayBody>),
            O::Json(200, of::<Value>),
        ),
        op(
            "delete",
            "/api/v1/hooks/{name}",
            "Remove a hook (admin)",
            Q::None,
            I::None,
            O::Json(200, of::<Value>),
        ),
        op(
            "post",
            "/api/v1/events",
            "Fire an application's own event",
            Q::None,
            I::Json(of::<hooks::FireBody>),
            O::Json(201, of::<Event>),
        ),
        op(
            "get",
            "/api/v1/bundles",
            "Bundles in creation order",
            Q::Typed(of::<bundles::ListQuery>),
            I::None,
            O::Json(200, of::<Vec<BundleRecord>>),
        ),
        op(
            "post",
            "/api/v1/bundles",
            "Start a bundle",
            Q::None,
            I::Json(of::<bundles::StartBody>),
            O::Json(201, of::<BundleRecord>),
        ),
        op(
            "get",
            "/api/v1/bundles/{id}",
            "One bundle",
            Q::None,
            I::None,
            O::Json(200, of::<BundleRecord>),
        ),
        op(
            "delete",
            "/api/v1/bundles/{id}",
            "Abort an open bundle",
            Q::None,
            I::None,
            O::Empty(204),
        ),
        op(
            "get",
            "/api/v1/bundles/{id}/resources",
            "A bundle's resources",
            Q::None,
            I::None,
            O::Json(200, of::<Vec<BundleResource>>),
        ),
        op(
            "put",
            "/api/v1/bundles/{id}/resources",
            "Add a resource (the body) to an open bundle",
            Q::Typed(of::<bundles::AddQuery>),
            I::Bytes,
            O::Json(201, of::<Vec<BundleResource>>),
        ),
        op(
            "get",
            "/api/v1/bundles/{id}/resource",
            "A resource's bytes",
            Q::Typed(of::<bundles::ResourceQuery>),
            I::None,
            O::Content,
        ),
        op(
            "post",
            "/api/v1/bundles/{id}/complete",
            "Complete a bundle",
            Q::None,
            I::Json(of::<bundles::CompleteBody>),
            O::Json(200, of::<BundleRecord>),
        ),
    ]
}

/// The problem details every error answers with.
fn problem_schema() -> Value {
    json!({
        "type": "object",
        "required": ["type", "title", "status", "detail", "kind"],
        "properties": {
            "type": { "type": "string" }, "title": { "type": "string" }, "status": { "type": "integer" },
            "detail": { "type": "string" }, "kind": { "type": "string" },
        },
    })
}

/// The query parameters a typed query stands for: one per field.
fn typed_parameters(schema: &Schema) -> Vec<Value> {
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|names| names.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    schema
        .get("properties")
        .and_then(Value::as_object)
        .map(|properties| {
            properties
                .iter()
                .map(|(name, property)| {
                    json!({ "name": name, "in": "query", "required": required.contains(&name.as_str()), "schema": property })
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The document.
pub fn document() -> Value {
    // Answers as they are written (fields skipped when empty are optional),
    // bodies and queries as they are read, each inline.
    let mut answers = SchemaSettings::openapi3()
        .with(|s| s.contract = Contract::Serialize)
        .into_generator();
    let mut inputs = SchemaSettings::openapi3()
        .with(|s| s.inline_subschemas = true)
        .into_generator();
    let problem = json!({ "description": "An error (RFC 9457 problem details)",
        "content": { "application/problem+json": { "schema": { "$ref": "#/components/schemas/Problem" } } } });
    let mut paths = Map::new();
    for operation in operations() {
        let mut parameters: Vec<Value> = operation
            .path
            .split('/')
            .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
            .map(|name| json!({ "name": name, "in": "path", "required": true, "schema": { "type": "string", "minLength": 1 } }))
            .collect();
        match operation.query {
            Query::None => {}
            Query::Typed(schema) => parameters.extend(typed_parameters(&schema(&mut inputs))),
            Query::Named(names) => {
                parameters.extend(names.iter().map(
                    |name| json!({ "name": name, "in": "query", "required": false, "schema": { "type": "string" } }),
                ))
            }
        }
        let mut responses = Map::new();
        match operation.output {
            Output::Json(status, schema) => {
                let schema = Value::from(schema(&mut answers));
                responses.insert(
                    status.to_string(),
                    json!({ "description": "Done", "content": { "application/json": { "schema": schema } } }),
                );
            }
            Output::Content => {
                let bytes = json!({ "*/*": { "schema": { "type": "string", "format": "binary" } } });
                responses.insert("200".into(), json!({ "description": "The bytes", "content": bytes }));
                responses.insert(
                    "206".into(),
                    json!({ "description": "The bytes of the range", "content": bytes }),
                );
                responses.insert(
                    "304".into(),
                    json!({ "description": "Not modified (If-None-Match, If-Modified-Since)" }),
                );
                responses.insert(
                    "412".into(),
                    json!({ "description": "A precondition failed (If-Match, If-Unmodified-Since)" }),
                );
            }
            Output::Empty(status) => {
                responses.insert(status.to_string(), json!({ "description": "Done" }));
            }
        }
        responses.insert("default".into(), problem.clone());
        let mut entry = json!({
            "summary": operation.summary,
            "operationId": format!("{}_{}", operation.method, operation.path.trim_start_matches("/api/v1/").replace(['/', '{', '}', '-'], "_")),
            "parameters": parameters,
            "responses": responses,
        });
        match operation.input {
            Input::None => {}
            Input::Json(schema) => {
                entry["requestBody"] = json!({ "required": true,
                    "content": { "application/json": { "schema": Value::from(schema(&mut inputs)) } } });
            }
            Input::Bytes => {
                entry["requestBody"] = json!({ "required": true,
                    "content": { "application/octet-stream": { "schema": { "type": "string", "format": "binary" } } } });
            }
        }
        let path = paths.entry(operation.path).or_insert_with(|| json!({}));
        path[operation.method] = entry;
    }
    let mut schemas = answers.take_definitions(true);
    schemas.insert("Problem".into(), problem_schema());
    json!({
        "openapi": "3.0.3",
        "info": { "title": "coffer", "version": env!("CARGO_PKG_VERSION"),
                  "description": "A versioned, audited archive: objects, versions, search, audit, hooks and bundles." },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": { "token": { "type": "http", "scheme": "bearer" } },
        },
        "security": [{ "token": [] }],
    })
}

/// `GET /api/v1/openapi.json`.
pub async fn serve() -> Json<Value> {
    Json(document())
}
