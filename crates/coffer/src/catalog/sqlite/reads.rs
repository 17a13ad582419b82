//! Reading versions as one JSON document per query.

use sqlx::sqlite::SqliteConnection;

use super::db_error;
use crate::catalog::ObjectVersion;
use crate::catalog::rows::{VERSION_JOINS, decode_versions, to_i64};
use crate::error::Result;

/// A version's tags as a JSON object, looked up for the row.
pub(super) const TAGS_OF_ROW: &str = "(SELECT json_group_object(t.name, t.value) FROM version_tags t \
     WHERE t.key = v.key AND t.version_id = v.version_id)";
/// A version's comments as a JSON array, oldest first, looked up for the row.
pub(super) const COMMENTS_OF_ROW: &str = "(SELECT json_group_array(json_object('at', c.at, 'actor', c.actor, 'text', c.text) \
     ORDER BY c.seq) FROM version_comments c WHERE c.key = v.key AND c.version_id = v.version_id)";

/// The aggregate that turns the versions a query selects (as `v`, joined by
/// [`VERSION_JOINS`]) into one JSON array, each version an array in
/// [`super::rows::JsonVersion`]'s field order, with tags and comments from the SQL given.
///
/// Versions are read as one JSON document: handing rows one by one through
/// sqlx costs several times what SQLite itself spends (`history` of a key
/// with 10,000 versions must stay well under 50 ms), and arrays without field
/// names halve the text to build and parse. The order is not kept: callers sort.
pub(super) fn versions_as_json(tags: &str, comments: &str) -> String {
    format!("json_group_array({})", version_as_json(tags, comments))
}

/// One version (`v`, joined by [`VERSION_JOINS`]) as the JSON array [`versions_as_json`] collects.
pub(super) fn version_as_json(tags: &str, comments: &str) -> String {
    format!(
        "json_array(v.key, v.version_id, v.is_delete_marker, l.version_id IS NOT NULL, v.size, \
         v.etag, v.blob_sha256, v.content_type, json(v.metadata), v.created_at, v.created_by, b.locator, \
         b.damaged, json({tags}), json({comments}))"
    )
}

pub(super) async fn fetch_version(
    conn: &mut SqliteConnection,
    key: &str,
    version_id: &str,
) -> Result<Option<ObjectVersion>> {
    let sql = format!(
        "SELECT {} FROM versions v {VERSION_JOINS} WHERE v.key = ? AND v.version_id = ?",
        versions_as_json(TAGS_OF_ROW, COMMENTS_OF_ROW)
    );
    let json: String = sqlx::query_scalar(&sql)
        .bind(key)
        .bind(version_id)
        .fetch_one(&mut *conn)
        .await
        .map_err(|e| db_error("reading a version", e))?;
    Ok(decode_versions(&json)?.pop())
}

/// A key's versions, newest first. Tags and comments are grouped once for the
/// key instead of looked up per version.
pub(super) async fn fetch_versions(
    conn: &mut SqliteConnection,
    key: &str,
    limit: Option<usize>,
) -> Result<Vec<ObjectVersion>> {
    let sql = format!(
        "SELECT {} FROM (SELECT * FROM versions WHERE key = ?1 ORDER BY version_id DESC LIMIT ?2) v {VERSION_JOINS} \
         LEFT JOIN (SELECT version_id, json_group_object(name, value) AS tags FROM version_tags \
                    WHERE key = ?1 GROUP BY version_id) t ON t.version_id = v.version_id \
         LEFT JOIN (SELECT version_id, json_group_array(json_object('at', at, 'actor', actor, 'text', text) \
                    ORDER BY seq) AS comments FROM version_comments WHERE key = ?1 GROUP BY version_id) c \
                   ON c.version_id = v.version_id",
        versions_as_json("COALESCE(t.tags, '{}')", "COALESCE(c.comments, '[]')")
    );
    let json: String = sqlx::query_scalar(&sql)
        .bind(key)
        .bind(limit.map_or(-1, |n| to_i64(n as u64)))
        .fetch_one(&mut *conn)
        .await
        .map_err(|e| db_error("listing versions", e))?;
    let mut versions = decode_versions(&json)?;
    versions.sort_unstable_by(|a, b| b.version_id.cmp(&a.version_id));
    Ok(versions)
}
