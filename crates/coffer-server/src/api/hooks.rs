//! `/api/v1/hooks` and `/api/v1/events`: hooks (listed with their secrets
//! hidden, their statistics, added and removed by an admin), dead letters
//! and their replay, and an application's own events.

use axum::Json;
use axum::extract::Path;
use axum::http::StatusCode;
use coffer::access::Scope;
use coffer::catalog::DeadLetter;
use coffer::events::{EventFilter, HookDefinition, HookSpec, HooksReport};
use coffer::{Event, Timestamp};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

use super::extract::{JsonBody, Params};
use crate::auth::Caller;
use crate::problem::Problem;

/// `GET /api/v1/hooks`: every hook, secrets hidden.
pub async fn list(caller: Caller) -> Result<Json<Vec<HookDefinition>>, Problem> {
    caller.allow(Scope::Read, None)?;
    let hooks = caller.store.hooks().await?;
    Ok(Json(hooks.iter().map(HookDefinition::redacted).collect()))
}

/// `GET /api/v1/hooks/stats`: deliveries, failures and times of each hook.
pub async fn stats(caller: Caller) -> Result<Json<HooksReport>, Problem> {
    caller.allow(Scope::Read, None)?;
    Ok(Json(caller.store.hook_stats().await?))
}

/// A hook to add.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct NewHook {
    name: String,
    spec: HookSpec,
    #[serde(default)]
    filter: EventFilter,
    #[serde(default)]
    synchronous: bool,
    max_attempts: Option<u32>,
    /// Replace a hook of the same name.
    #[serde(default)]
    replace: bool,
}

/// `POST /api/v1/hooks` (admin). Hooks that act on the server's own
/// machine (exec, filelog) are added with the CLI there, not over HTTP.
pub async fn add(caller: Caller, JsonBody(hook): JsonBody<NewHook>) -> Result<(StatusCode, Json<Value>), Problem> {
    caller.allow(Scope::Admin, None)?;
    if matches!(hook.spec, HookSpec::Exec(_) | HookSpec::Filelog(_)) {
        return Err(coffer::Error::new(
            coffer::ErrorKind::Forbidden,
            format!(
                "{} hooks act on the server's machine: add them with `coffer hooks add` there",
                hook.spec.kind()
            ),
        )
        .into());
    }
    let definition = HookDefinition {
        name: hook.name,
        spec: hook.spec,
        filter: hook.filter,
        synchronous: hook.synchronous,
        max_attempts: hook.max_attempts.unwrap_or(coffer::DEFAULT_MAX_ATTEMPTS),
        created_at: Timestamp::now(),
        created_by: caller.store.actor().to_owned(),
    };
    caller.store.add_hook(&definition, hook.replace).await?;
    Ok((StatusCode::CREATED, Json(json!({ "added": definition.name }))))
}

/// `DELETE /api/v1/hooks/NAME` (admin).
pub async fn remove(caller: Caller, Path(name): Path<String>) -> Result<Json<Value>, Problem> {
    caller.allow(Scope::Admin, None)?;
    caller.store.remove_hook(&name).await?;
    Ok(Json(json!({ "removed": name })))
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct DeadQuery {
    hook: Option<String>,
    limit: Option<usize>,
}

/// `GET /api/v1/hooks/dead?hook=&limit=`: dead-lettered deliveries, newest first.
pub async fn dead(caller: Caller, Params(query): Params<DeadQuery>) -> Result<Json<Vec<DeadLetter>>, Problem> {
    caller.allow(Scope::Read, None)?;
    let letters = caller
        .store
        .dead_letters(query.hook.as_deref(), query.limit.unwrap_or(100))
        .await?;
    Ok(Json(letters))
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct ReplayBody {
    hook: Option<String>,
}

/// `POST /api/v1/hooks/replay` `{"hook": NAME}` (admin): dead deliveries pending again.
pub async fn replay(caller: Caller, JsonBody(body): JsonBody<ReplayBody>) -> Result<Json<Value>, Problem> {
    caller.allow(Scope::Admin, None)?;
    let replayed = caller.store.replay_hooks(body.hook.as_deref()).await?;
    Ok(Json(json!({ "replayed": replayed })))
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct FireBody {
    #[serde(rename = "type")]
    event_type: String,
    key: Option<String>,
    #[serde(default)]
    data: Value,
}

/// `POST /api/v1/events` `{"type", "key", "data"}`: an application's own event.
pub async fn fire(caller: Caller, JsonBody(body): JsonBody<FireBody>) -> Result<(StatusCode, Json<Event>), Problem> {
    caller.allow(Scope::Write, body.key.as_deref())?;
    let event = caller
        .store
        .fire_event(&body.event_type, body.key.as_deref(), body.data)
        .await?;
    Ok((StatusCode::CREATED, Json(event)))
}
