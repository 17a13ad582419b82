//! What both catalogs share: how a version read comes back from SQL (one
//! JSON document of arrays, decoded here), blob rows, and key-range helpers.
//!
//! Reading versions as one JSON document keeps sqlx's per-row cost out of
//! large reads (`history` of a key with 10,000 versions must stay well under
//! 50 ms); arrays without field names halve the text to build and parse.

use std::str::FromStr;

use sqlx::FromRow;

use std::collections::HashMap;

use super::{
    AuditEntry, AuditQuery, BlobRecord, Comment, DeletedVersion, KeyQuery, ObjectVersion, SearchPlan, VersionRef,
};
use crate::error::{Error, ErrorKind, Result};
use crate::key::{Metadata, ObjectKey, Tags};
use crate::retention::Retention;
use crate::time::Timestamp;
use crate::version::VersionId;

pub(super) fn corrupt(what: &str, err: Error) -> Error {
    Error::new(
        ErrorKind::Catalog,
        format!("catalog holds an invalid {what}: {}", err.message()),
    )
}

/// One version in the JSON each catalog's reads build: an array of these
/// fields, in this order (booleans as 0 or 1).
#[derive(serde::Deserialize)]
pub(super) struct JsonVersion {
    key: String,
    version_id: String,
    is_delete_marker: i64,
    is_latest: i64,
    size: u64,
    etag: Option<String>,
    sha256: Option<String>,
    content_type: Option<String>,
    metadata: Metadata,
    created_at: i64,
    created_by: String,
    blob_path: Option<String>,
    damaged: Option<String>,
    tags: Tags,
    comments: Vec<CommentRow>,
    retention_mode: Option<String>,
    retain_until: Option<i64>,
    legal_hold: i64,
    placement: Option<String>,
}

/// One version as a row (PostgreSQL's binary rows cost its server less than
/// building JSON): [`JsonVersion`]'s fields, its JSON fields as text.
#[derive(FromRow)]
pub(super) struct VersionRow {
    key: String,
    version_id: String,
    is_delete_marker: i32,
    is_latest: i32,
    size: i64,
    etag: Option<String>,
    sha256: Option<String>,
    content_type: Option<String>,
    metadata: String,
    created_at: i64,
    created_by: String,
    blob_path: Option<String>,
    damaged: Option<String>,
    tags: String,
    comments: String,
    retention_mode: Option<String>,
    retain_until: Option<i64>,
    legal_hold: i32,
    placement: Option<String>,
}

impl TryFrom<VersionRow> for ObjectVersion {
    type Error = Error;
    fn try_from(row: VersionRow) -> Result<Self> {
        ObjectVersion::try_from(JsonVersion {
            key: row.key,
            version_id: row.version_id,
            is_delete_marker: row.is_delete_marker.into(),
            is_latest: row.is_latest.into(),
            size: u64::try_from(row.size).unwrap_or(0),
            etag: row.etag,
            sha256: row.sha256,
            content_type: row.content_type,
            metadata: decode_json(&row.metadata)?,
            created_at: row.created_at,
            created_by: row.created_by,
            blob_path: row.blob_path,
            damaged: row.damaged,
            tags: decode_json(&row.tags)?,
            comments: decode_json(&row.comments)?,
            retention_mode: row.retention_mode,
            retain_until: row.retain_until,
            legal_hold: row.legal_hold.into(),
            placement: row.placement,
        })
    }
}

/// A comment as the catalog's JSON holds it.
#[derive(serde::Deserialize)]
struct CommentRow {
    at: i64,
    actor: String,
    text: String,
}

impl From<CommentRow> for Comment {
    fn from(row: CommentRow) -> Self {
        Comment {
            at: Timestamp::from_micros(row.at),
            actor: row.actor,
            text: row.text,
        }
    }
}

impl TryFrom<JsonVersion> for ObjectVersion {
    type Error = Error;
    fn try_from(row: JsonVersion) -> Result<Self> {
        Ok(ObjectVersion {
            key: ObjectKey::new(row.key).map_err(|e| corrupt("key", e))?,
            version_id: VersionId::from_str(&row.version_id).map_err(|e| corrupt("version id", e))?,
            is_delete_marker: row.is_delete_marker != 0,
            is_latest: row.is_latest != 0,
            size: row.size,
            etag: row.etag,
            sha256: row.sha256,
            content_type: row.content_type,
            metadata: row.metadata,
            created_at: Timestamp::from_micros(row.created_at),
            created_by: row.created_by,
            blob_path: row.blob_path,
            tags: row.tags,
            comments: row.comments.into_iter().map(Comment::from).collect(),
            damaged: row.damaged,
            placement: row.placement,
            retention: retention_of(row.retention_mode, row.retain_until)?,
            legal_hold: row.legal_hold != 0,
        })
    }
}

/// A version as plans over many versions read it (the columns of
/// `Dialect::planning_columns`, as a row or a JSON array): key, version id,
/// delete marker, size, SHA-256, made at, tags (JSON text, when asked
/// for), retention mode and date, legal hold.
pub(super) type PlanningRow = (
    String,
    String,
    i32,
    i64,
    Option<String>,
    i64,
    Option<String>,
    Option<String>,
    Option<i64>,
    i32,
);

/// The version a [`PlanningRow`] describes; what it does not carry comes
/// back empty (see `Catalog::versions_page`).
pub(super) fn planned_version(row: PlanningRow) -> Result<ObjectVersion> {
    let (key, version_id, marker, size, sha256, created_at, tags, mode, until, hold) = row;
    Ok(ObjectVersion {
        key: ObjectKey::new(key).map_err(|e| corrupt("key", e))?,
        version_id: VersionId::from_str(&version_id).map_err(|e| corrupt("version id", e))?,
        is_delete_marker: marker != 0,
        is_latest: false,
        size: u64::try_from(size).unwrap_or(0),
        etag: None,
        sha256,
        content_type: None,
        metadata: Metadata::new(),
        created_at: Timestamp::from_micros(created_at),
        created_by: String::new(),
        blob_path: None,
        tags: tags.as_deref().map(decode_json).transpose()?.unwrap_or_default(),
        comments: Vec::new(),
        damaged: None,
        placement: None,
        retention: retention_of(mode, until)?,
        legal_hold: hold != 0,
    })
}

/// A version's retention from its two columns (both set, or neither).
pub(super) fn retention_of(mode: Option<String>, until: Option<i64>) -> Result<Option<Retention>> {
    match (mode, until) {
        (Some(mode), Some(until)) => Ok(Some(Retention {
            mode: mode.parse().map_err(|e| corrupt("retention mode", e))?,
            until: Timestamp::from_micros(until),
        })),
        _ => Ok(None),
    }
}

/// Decode a JSON array of [`JsonVersion`]s.
pub(super) fn decode_versions(json: &str) -> Result<Vec<ObjectVersion>> {
    let rows: Vec<JsonVersion> = decode_json(json)?;
    rows.into_iter().map(ObjectVersion::try_from).collect()
}

/// Decode JSON a query built.
pub(super) fn decode_json<T: serde::de::DeserializeOwned>(json: &str) -> Result<T> {
    serde_json::from_str(json)
        .map_err(|e| Error::new(ErrorKind::Catalog, format!("catalog holds invalid version JSON: {e}")))
}

pub(super) fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[derive(FromRow)]
pub(super) struct BlobRow {
    sha256: String,
    size: i64,
    locator: String,
    refcount: i64,
    damaged: Option<String>,
    data_key: Option<String>,
}

impl From<BlobRow> for BlobRecord {
    fn from(row: BlobRow) -> Self {
        BlobRecord {
            sha256: row.sha256,
            size: u64::try_from(row.size).unwrap_or(0),
            path: row.locator,
            refcount: u64::try_from(row.refcount).unwrap_or(0),
            damaged: row.damaged,
            data_key: row.data_key,
        }
    }
}

/// How queries join a version (`v`) with its latest pointer (`l`) and its blob (`b`).
pub(super) const VERSION_JOINS: &str = "LEFT JOIN latest l ON l.key = v.key AND l.version_id = v.version_id \
     LEFT JOIN blobs b ON b.sha256 = v.blob_sha256";
/// How a list page joins its versions (`v`) with their blobs (`b`).
const BLOB_JOIN: &str = "LEFT JOIN blobs b ON b.sha256 = v.blob_sha256";

/// A value for a `?` placeholder of SQL that a shared builder wrote.
#[derive(Clone)]
pub(super) enum Param {
    Text(String),
    Int(i64),
    Real(f64),
    Bytes(Vec<u8>),
    /// SQL `NULL`.
    Null,
}

/// Bind `params` to `query`, in order.
macro_rules! bind_params {
    ($query:expr, $params:expr) => {{
        let mut query = $query;
        for param in $params {
            query = match param {
                $crate::catalog::rows::Param::Text(text) => query.bind(text),
                $crate::catalog::rows::Param::Int(number) => query.bind(number),
                $crate::catalog::rows::Param::Real(number) => query.bind(number),
                $crate::catalog::rows::Param::Bytes(bytes) => query.bind(bytes),
                $crate::catalog::rows::Param::Null => query.bind(None::<String>),
            };
        }
        query
    }};
}
pub(super) use bind_params;

/// The `SELECT` of one page of current versions (see [`KeyQuery`]), with
/// `?` placeholders and their values in order. `versions` selects the
/// versions (`v`, joined as by [`VERSION_JOINS`]): aggregated as one JSON
/// value, or as rows.
pub(super) fn list_latest_select(query: &KeyQuery, versions: &str) -> (String, Vec<Param>) {
    // The tightest of the lower bounds; `start_after` is the only exclusive one.
    let mut lower = query.prefix.clone();
    let mut exclusive = false;
    if let Some(at) = query.start_at.as_ref().filter(|at| at.as_str() > lower.as_str()) {
        lower = at.clone();
    }
    if let Some(after) = query
        .start_after
        .as_ref()
        .filter(|after| after.as_str() >= lower.as_str())
    {
        lower = after.clone();
        exclusive = true;
    }
    let upper = prefix_upper_bound(&query.prefix);
    let key_range = format!(
        "key {} ? {}",
        if exclusive { ">" } else { ">=" },
        if upper.is_some() { "AND key < ?" } else { "" },
    );
    let mut params = vec![Param::Text(lower)];
    params.extend(upper.map(Param::Text));
    let live_only = if query.include_deleted {
        ""
    } else {
        "AND NOT cur.is_delete_marker"
    };
    // Either the latest pointers (which know whether they are delete markers,
    // so no version is read before the page is chosen), or each key's newest
    // version made by `as_of`.
    let current = match query.as_of {
        None => format!("SELECT key, version_id, is_delete_marker FROM latest WHERE {key_range}"),
        Some(as_of) => {
            params.push(Param::Int(as_of.as_micros()));
            format!(
                "SELECT m.key, m.version_id, v.is_delete_marker FROM (SELECT key, MAX(version_id) AS version_id \
                 FROM versions WHERE {key_range} AND created_at <= ? GROUP BY key) m \
                 JOIN versions v ON v.key = m.key AND v.version_id = m.version_id"
            )
        }
    };
    params.push(Param::Int(to_i64(query.limit as u64)));
    // The page's keys first, then their versions as JSON. Without `as_of` the
    // page is made of latest pointers, so it stands for `l` itself.
    let (page, joins) = match query.as_of {
        None => ("l", BLOB_JOIN),
        Some(_) => ("page", VERSION_JOINS),
    };
    let sql = format!(
        "SELECT {versions} FROM (SELECT cur.key, cur.version_id FROM ({current}) cur \
           WHERE 1 = 1 {live_only} ORDER BY cur.key LIMIT ?) {page} \
         JOIN versions v ON v.key = {page}.key AND v.version_id = {page}.version_id {joins}"
    );
    (sql, params)
}

/// The `SELECT` of every version of the keys under `prefix` with its blob, in
/// key and version order, with `?` placeholders and their values.
pub(super) fn version_refs_select(prefix: &str) -> (String, Vec<Param>) {
    let upper = prefix_upper_bound(prefix);
    let sql = format!(
        "SELECT key, version_id, blob_sha256 FROM versions WHERE key >= ? {} ORDER BY key, version_id",
        if upper.is_some() { "AND key < ?" } else { "" }
    );
    let mut params = vec![Param::Text(prefix.to_owned())];
    params.extend(upper.map(Param::Text));
    (sql, params)
}

impl TryFrom<(String, String, Option<String>)> for VersionRef {
    type Error = Error;
    fn try_from((key, version_id, sha256): (String, String, Option<String>)) -> Result<Self> {
        Ok(VersionRef {
            key: ObjectKey::new(key).map_err(|e| corrupt("key", e))?,
            version_id: VersionId::from_str(&version_id).map_err(|e| corrupt("version id", e))?,
            sha256,
        })
    }
}

/// Where a search's candidates come from, as each catalog reads its index:
/// rows `d` with a `key` and `version_id`, their score, their order, and the
/// filters (and values) that make them match the query's words.
pub(super) struct SearchSource {
    pub(super) from: String,
    pub(super) score: String,
    pub(super) order: &'static str,
    pub(super) filters: Vec<String>,
    pub(super) params: Vec<Param>,
}

/// How a catalog's SQL for search differs beyond its source.
pub(super) struct SearchDialect {
    /// The filter on one metadata entry of `fv`: binds the name as
    /// `metadata_name` writes it, then the value.
    pub(super) metadata_filter: &'static str,
    pub(super) metadata_name: fn(&str) -> String,
    /// The select list that gathers the page into one JSON text
    /// ([`super::dialect::Dialect::hits_json`]).
    pub(super) hits_json: String,
}

/// The statement that runs `plan` on `source`, with `?` placeholders and their values in order.
pub(super) fn search_select(plan: &SearchPlan, source: SearchSource, dialect: &SearchDialect) -> (String, Vec<Param>) {
    let SearchSource {
        mut from,
        score,
        order,
        mut filters,
        mut params,
    } = source;
    if let Some(prefix) = &plan.prefix {
        filters.push("d.key >= ?".into());
        params.push(Param::Text(prefix.clone()));
        if let Some(upper) = prefix_upper_bound(prefix) {
            filters.push("d.key < ?".into());
            params.push(Param::Text(upper));
        }
    }
    for (name, value) in &plan.tags {
        filters.push(
            "EXISTS (SELECT 1 FROM version_tags t WHERE t.key = d.key AND t.version_id = d.version_id \
             AND t.name = ? AND t.value = ?)"
                .into(),
        );
        params.push(Param::Text(name.clone()));
        params.push(Param::Text(value.clone()));
    }
    let needs_version =
        !plan.metadata.is_empty() || plan.content_type.is_some() || plan.since.is_some() || plan.until.is_some();
    if needs_version {
        from.push_str(" JOIN versions fv ON fv.key = d.key AND fv.version_id = d.version_id");
    }
    for (name, value) in &plan.metadata {
        filters.push(dialect.metadata_filter.into());
        params.push(Param::Text((dialect.metadata_name)(name)));
        params.push(Param::Text(value.clone()));
    }
    if let Some(content_type) = &plan.content_type {
        filters.push("fv.content_type = ?".into());
        params.push(Param::Text(content_type.clone()));
    }
    if let Some(since) = plan.since {
        filters.push("fv.created_at >= ?".into());
        params.push(Param::Int(since.as_micros()));
    }
    if let Some(until) = plan.until {
        filters.push("fv.created_at < ?".into());
        params.push(Param::Int(until.as_micros()));
    }
    if let Some(after) = &plan.after {
        // Keyset: after the last hit in (score desc, key asc, version id desc) order;
        // without words the first bound lets an index range start at the last key.
        if plan.words.is_empty() {
            filters.push("d.key >= ?".into());
            params.push(Param::Text(after.key.clone()));
        }
        filters.push(format!(
            "({score} < ? OR ({score} = ? AND (d.key > ? OR (d.key = ? AND d.version_id < ?))))"
        ));
        params.push(Param::Real(after.score));
        params.push(Param::Real(after.score));
        params.push(Param::Text(after.key.clone()));
        params.push(Param::Text(after.key.clone()));
        params.push(Param::Text(after.version_id.clone()));
    }
    params.push(Param::Int(to_i64((plan.limit as u64).saturating_add(1))));
    let sql = format!(
        "SELECT {hits} FROM \
           (SELECT d.key, d.version_id, {score} AS score FROM {from} WHERE {filters} ORDER BY {order} LIMIT ?) page \
         JOIN versions v ON v.key = page.key AND v.version_id = page.version_id {VERSION_JOINS}",
        hits = dialect.hits_json,
        filters = filters.join(" AND "),
    );
    (sql, params)
}

/// What removing `doomed` would release, without removing anything, given
/// the reference count of each of their blobs: a blob is released by the
/// last of them to drop its final reference.
pub(super) fn dry_run_release(doomed: Vec<ObjectVersion>, mut refcounts: HashMap<String, i64>) -> Vec<DeletedVersion> {
    doomed
        .into_iter()
        .map(|version| {
            let released = version.sha256.as_ref().and_then(|sha256| {
                let count = refcounts.get_mut(sha256)?;
                *count -= 1;
                (*count == 0).then(|| version.blob_path.clone()).flatten()
            });
            DeletedVersion {
                version,
                unreferenced_blob: released,
            }
        })
        .collect()
}

/// An audit row as both catalogs select it: id, at, actor, action, key, version id, detail (JSON text).
pub(super) type AuditRow = (i64, i64, String, String, Option<String>, Option<String>, String);

/// The `SELECT` of the audit rows `query` asks for, with `?` placeholders and
/// their values in order. `detail` is the expression that reads the detail as text.
pub(super) fn audit_select(query: &AuditQuery, detail: &str) -> (String, Vec<Param>) {
    let mut filters = Vec::new();
    let mut params = Vec::new();
    let mut filter = |sql: &'static str, param: Param| {
        filters.push(sql);
        params.push(param);
    };
    if let Some(key) = &query.key {
        filter("key = ?", Param::Text(key.to_string()));
    }
    if let Some(prefix) = query.prefix.as_deref().filter(|p| !p.is_empty()) {
        filter("key >= ?", Param::Text(prefix.to_owned()));
        if let Some(upper) = prefix_upper_bound(prefix) {
            filter("key < ?", Param::Text(upper));
        }
    }
    if let Some(actor) = &query.actor {
        filter("actor = ?", Param::Text(actor.clone()));
    }
    if let Some(action) = &query.action {
        filter("action = ?", Param::Text(action.clone()));
    }
    if let Some(since) = query.since {
        filter("at >= ?", Param::Int(since.as_micros()));
    }
    if let Some(until) = query.until {
        filter("at < ?", Param::Int(until.as_micros()));
    }
    if let Some(after) = query.after_id {
        filter(if query.oldest_first { "id > ?" } else { "id < ?" }, Param::Int(after));
    }
    params.push(Param::Int(to_i64(query.limit as u64)));
    let sql = format!(
        "SELECT id, at, actor, action, key, version_id, {detail} FROM audit {} {} ORDER BY id {} LIMIT ?",
        if filters.is_empty() { "" } else { "WHERE" },
        filters.join(" AND "),
        if query.oldest_first { "ASC" } else { "DESC" },
    );
    (sql, params)
}

impl From<AuditRow> for AuditEntry {
    fn from((id, at, actor, action, key, version_id, detail): AuditRow) -> Self {
        AuditEntry {
            id,
            at: Timestamp::from_micros(at),
            actor,
            action,
            key,
            version_id,
            detail: serde_json::from_str(&detail).unwrap_or(serde_json::Value::Null),
        }
    }
}

/// The smallest string greater than every string that starts with `prefix`,
/// or `None` if there is none (an empty prefix, or one of only U+10FFFF).
pub(crate) fn prefix_upper_bound(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let next = (u32::from(last) + 1..=0x10FFFF).find_map(char::from_u32);
        if let Some(next) = next {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::prefix_upper_bound;

    #[test]
    fn upper_bounds_of_prefixes() {
        assert_eq!(prefix_upper_bound("invoices/"), Some("invoices0".into()));
        assert_eq!(prefix_upper_bound("a"), Some("b".into()));
        assert_eq!(prefix_upper_bound(""), None);
        assert_eq!(prefix_upper_bound("a\u{10FFFF}"), Some("b".into()));
        assert_eq!(prefix_upper_bound("\u{D7FF}"), Some("\u{E000}".into()));
    }
}
