//! `/api/v1/search` and `/api/v1/audit`: the full-text search and the audit
//! log, each bounded to the keys the caller's token reaches.

use axum::Json;
use coffer::access::Scope;
use coffer::catalog::{AuditEntry, AuditQuery, SearchPage, SearchQuery};
use coffer::{ObjectKey, Timestamp};

use super::extract::Params;
use crate::auth::Caller;
use crate::problem::Problem;

/// The query string as pairs, so that a filter may repeat (`tag=a=1&tag=b=2`).
type Pairs = Vec<(String, String)>;

fn time(text: &str) -> Result<Timestamp, Problem> {
    Ok(Timestamp::parse_human(text)?)
}

fn number<T: std::str::FromStr>(name: &str, text: &str) -> Result<T, Problem> {
    text.parse()
        .map_err(|_| Problem::invalid_input(format!("{name} {text:?}: expected a whole number")))
}

fn flag(name: &str, text: &str) -> Result<bool, Problem> {
    match text {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(Problem::invalid_input(format!(
            "{name} {text:?}: expected true or false"
        ))),
    }
}

fn pair(name: &str, text: &str) -> Result<(String, String), Problem> {
    text.split_once('=')
        .map(|(n, v)| (n.to_owned(), v.to_owned()))
        .ok_or_else(|| Problem::invalid_input(format!("{name} {text:?}: expected NAME=VALUE")))
}

/// `GET /api/v1/search?q=&prefix=&tag=N=V&metadata=N=V&content_type=&since=&until=&all_versions=&limit=&cursor=`.
pub async fn search(caller: Caller, Params(pairs): Params<Pairs>) -> Result<Json<SearchPage>, Problem> {
    caller.allow(Scope::Read, None)?;
    let mut query = SearchQuery {
        limit: 50,
        ..SearchQuery::default()
    };
    let mut prefix = String::new();
    for (name, value) in &pairs {
        match name.as_str() {
            "q" => query.text = value.clone(),
            "prefix" => prefix = value.clone(),
            "tag" => query.tags.push(pair(name, value)?),
            "metadata" => query.metadata.push(pair(name, value)?),
            "content_type" => query.content_type = Some(value.clone()),
            "since" => query.since = Some(time(value)?),
            "until" => query.until = Some(time(value)?),
            "all_versions" => query.all_versions = flag(name, value)?,
            "limit" => query.limit = number(name, value)?,
            "cursor" => query.cursor = Some(value.clone()),
            _ => return Err(Problem::invalid_input(format!("unknown search parameter {name:?}"))),
        }
    }
    let prefix = caller.token.narrow_prefix(&prefix)?;
    query.prefix = (!prefix.is_empty()).then_some(prefix);
    Ok(Json(caller.store.search(&query).await?))
}

/// `GET /api/v1/audit?key=&prefix=&actor=&action=&since=&until=&after_id=&oldest_first=&limit=`:
/// audit rows, newest first. A token with a prefix sees the rows of its keys only.
pub async fn audit(caller: Caller, Params(pairs): Params<Pairs>) -> Result<Json<Vec<AuditEntry>>, Problem> {
    caller.allow(Scope::Read, None)?;
    let mut query = AuditQuery {
        limit: 100,
        ..AuditQuery::default()
    };
    let mut prefix = String::new();
    for (name, value) in &pairs {
        match name.as_str() {
            "key" => query.key = Some(ObjectKey::new(value.as_str())?),
            "prefix" => prefix = value.clone(),
            "actor" => query.actor = Some(value.clone()),
            "action" => query.action = Some(value.clone()),
            "since" => query.since = Some(time(value)?),
            "until" => query.until = Some(time(value)?),
            "after_id" => query.after_id = Some(number(name, value)?),
            "oldest_first" => query.oldest_first = flag(name, value)?,
            "limit" => query.limit = number(name, value)?,
            _ => return Err(Problem::invalid_input(format!("unknown audit parameter {name:?}"))),
        }
    }
    if let Some(key) = &query.key {
        caller.allow(Scope::Read, Some(key.as_str()))?;
    }
    let prefix = caller.token.narrow_prefix(&prefix)?;
    query.prefix = (!prefix.is_empty()).then_some(prefix);
    if query.limit == 0 || query.limit > 10_000 {
        return Err(Problem::invalid_input("limit must be 1 to 10000"));
    }
    Ok(Json(caller.store.audit(&query).await?))
}
