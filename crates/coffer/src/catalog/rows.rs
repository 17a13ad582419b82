//! What both catalogs share: how a version read comes back from SQL (one
//! JSON document of arrays, decoded here), blob rows, and key-range helpers.
//!
//! Reading versions as one JSON document keeps sqlx's per-row cost out of
//! large reads (`history` of a key with 10,000 versions must stay well under
//! 50 ms); arrays without field names halve the text to build and parse.

use std::str::FromStr;

use sqlx::FromRow;

use super::{AuditEntry, AuditQuery, BlobRecord, Comment, ObjectVersion};
use crate::error::{Error, ErrorKind, Result};
use crate::key::{Metadata, ObjectKey, Tags};
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
        })
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
}

impl From<BlobRow> for BlobRecord {
    fn from(row: BlobRow) -> Self {
        BlobRecord {
            sha256: row.sha256,
            size: u64::try_from(row.size).unwrap_or(0),
            path: row.locator,
            refcount: u64::try_from(row.refcount).unwrap_or(0),
            damaged: row.damaged,
        }
    }
}

/// A value for a `?` placeholder of SQL that a shared builder wrote.
pub(super) enum Param {
    Text(String),
    Int(i64),
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
