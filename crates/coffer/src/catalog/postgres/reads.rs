//! Reading versions as one JSON document per query.

use sqlx::postgres::PgConnection;

use super::db_error;
use crate::catalog::ObjectVersion;
use crate::catalog::rows::{VERSION_JOINS, decode_versions, to_i64};
use crate::error::Result;

/// A version's tags as a JSON object, looked up for the row.
pub(super) const TAGS_OF_ROW: &str = "COALESCE((SELECT json_object_agg(t.name, t.value) FROM version_tags t \
     WHERE t.key = v.key AND t.version_id = v.version_id), '{}'::json)";
/// A version's comments as a JSON array, oldest first, looked up for the row.
pub(super) const COMMENTS_OF_ROW: &str = "COALESCE((SELECT json_agg(json_build_object('at', c.at, 'actor', c.actor, \
     'text', c.text) ORDER BY c.seq) FROM version_comments c WHERE c.key = v.key AND c.version_id = v.version_id), \
     '[]'::json)";

/// The aggregate that turns the versions a query selects (as `v`, joined by
/// [`VERSION_JOINS`]) into one JSON array in the shape
/// [`super::rows::JsonVersion`] decodes, as text (`NULL` when no row matched).
pub(super) fn versions_as_json(tags: &str, comments: &str) -> String {
    format!("json_agg({})::text", version_as_json(tags, comments))
}

/// One version (`v`, joined by [`VERSION_JOINS`]) as the JSON array [`versions_as_json`] collects.
pub(super) fn version_as_json(tags: &str, comments: &str) -> String {
    format!(
        "json_build_array(v.key, v.version_id, v.is_delete_marker::int, (l.version_id IS NOT NULL)::int, \
         v.size, v.etag, v.blob_sha256, v.content_type, v.metadata, v.created_at, v.created_by, b.locator, \
         b.damaged, {tags}, {comments})"
    )
}

pub(super) fn decode(json: Option<String>) -> Result<Vec<ObjectVersion>> {
    json.map_or_else(|| Ok(Vec::new()), |json| decode_versions(&json))
}

pub(super) async fn fetch_version(
    conn: &mut PgConnection,
    key: &str,
    version_id: &str,
) -> Result<Option<ObjectVersion>> {
    let sql = format!(
        "SELECT {} FROM versions v {VERSION_JOINS} WHERE v.key = $1 AND v.version_id = $2",
        versions_as_json(TAGS_OF_ROW, COMMENTS_OF_ROW)
    );
    let json: Option<String> = sqlx::query_scalar(&sql)
        .bind(key)
        .bind(version_id)
        .fetch_one(&mut *conn)
        .await
        .map_err(|e| db_error("reading a version", e))?;
    Ok(decode(json)?.pop())
}

/// A key's versions, newest first; tags and comments are grouped once for the key.
pub(super) async fn fetch_versions(
    conn: &mut PgConnection,
    key: &str,
    limit: Option<usize>,
) -> Result<Vec<ObjectVersion>> {
    let sql = format!(
        "SELECT {} FROM (SELECT * FROM versions WHERE key = $1 ORDER BY version_id DESC LIMIT $2) v {VERSION_JOINS} \
         LEFT JOIN (SELECT version_id, json_object_agg(name, value) AS tags FROM version_tags \
                    WHERE key = $1 GROUP BY version_id) t ON t.version_id = v.version_id \
         LEFT JOIN (SELECT version_id, json_agg(json_build_object('at', at, 'actor', actor, 'text', text) \
                    ORDER BY seq) AS comments FROM version_comments WHERE key = $1 GROUP BY version_id) c \
                   ON c.version_id = v.version_id",
        versions_as_json("COALESCE(t.tags, '{}'::json)", "COALESCE(c.comments, '[]'::json)")
    );
    let json: Option<String> = sqlx::query_scalar(&sql)
        .bind(key)
        .bind(limit.map(|n| to_i64(n as u64)))
        .fetch_one(&mut *conn)
        .await
        .map_err(|e| db_error("listing versions", e))?;
    let mut versions = decode(json)?;
    versions.sort_unstable_by(|a, b| b.version_id.cmp(&a.version_id));
    Ok(versions)
}
