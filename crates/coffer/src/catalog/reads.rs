//! The reads both engines share, each one SQL text over the engine's
//! [`Dialect`](super::dialect::Dialect), run on a [`Conn`] of either engine.

use super::dialect::{BLOB_SELECT, BLOBS_SELECT, Dialect, StatsRow, refcounts_select, stats_of};
use super::outbox::{
    DEAD_LETTER_COLUMNS, DELIVERY_STATES_SQL, DeadLetter, DeadLetterRow, EVENT_COUNTS_SQL, HOOK_COUNTERS_SQL,
    OutboxCounters, dead_letter, outbox_counters, parse_hook,
};
use super::rows::{
    AuditRow, BlobRow, JsonVersion, Param, PlanningRow, SearchDialect, SearchSource, VERSION_JOINS, VersionRow,
    audit_select, decode_json, decode_versions, dry_run_release, list_latest_select, planned_version,
    prefix_upper_bound, retention_of, search_select, to_i64, version_refs_select,
};
use super::sql::Conn;
use super::{
    AuditEntry, AuditQuery, BlobRecord, CatalogStats, DeletedVersion, KeyQuery, ObjectVersion, PendingRestore,
    SearchHit, SearchPage, SearchPlan, VersionRef,
};
use crate::error::Result;
use crate::events::HookDefinition;
use crate::retention::Protection;

/// Decode the JSON text of [`Dialect::versions_json`](super::dialect::Dialect::versions_json)
/// (`NULL` when no row matched, on PostgreSQL).
pub(super) fn versions_of(json: Option<String>) -> Result<Vec<ObjectVersion>> {
    json.map_or_else(|| Ok(Vec::new()), |json| decode_versions(&json))
}

/// The SQL of one version of a key (bind the key and the version id), as
/// the one-element JSON array of [`versions_of`].
pub(super) fn version_sql(dialect: &Dialect) -> String {
    format!(
        "SELECT {} FROM versions v {VERSION_JOINS} WHERE v.key = ? AND v.version_id = ?",
        dialect.versions_json_of_rows()
    )
}

/// The SQL of a key's latest version, a delete marker included (bind the
/// key), as the one-element JSON array of [`versions_of`].
pub(super) fn latest_sql(dialect: &Dialect) -> String {
    format!(
        "SELECT {} FROM latest l2 JOIN versions v ON v.key = l2.key AND v.version_id = l2.version_id \
         {VERSION_JOINS} WHERE l2.key = ?",
        dialect.versions_json_of_rows()
    )
}

/// One version of a key.
pub(super) async fn version(mut conn: Conn<'_>, key: &str, version_id: &str) -> Result<Option<ObjectVersion>> {
    let sql = version_sql(conn.dialect());
    let params = vec![Param::Text(key.to_owned()), Param::Text(version_id.to_owned())];
    let (json,): (Option<String>,) = conn.one("reading a version", &sql, params).await?;
    Ok(versions_of(json)?.pop())
}

/// A key's latest version (a delete marker included). (SQLite reads it on
/// the calling thread: `sqlite::inline`.)
#[cfg(feature = "catalog-postgres")]
pub(super) async fn latest(mut conn: Conn<'_>, key: &str) -> Result<Option<ObjectVersion>> {
    let sql = latest_sql(conn.dialect());
    let params = vec![Param::Text(key.to_owned())];
    let (json,): (Option<String>,) = conn.one("reading the latest version", &sql, params).await?;
    Ok(versions_of(json)?.pop())
}

/// A key's versions, newest first; at most `limit`.
pub(super) async fn versions(mut conn: Conn<'_>, key: &str, limit: Option<usize>) -> Result<Vec<ObjectVersion>> {
    let sql = conn.dialect().key_versions_select(limit.is_some());
    let mut params = vec![Param::Text(key.to_owned())];
    params.extend(limit.map(|n| Param::Int(to_i64(n as u64))));
    params.push(Param::Text(key.to_owned()));
    params.push(Param::Text(key.to_owned()));
    let (json,): (Option<String>,) = conn.one("listing versions", &sql, params).await?;
    let mut versions = versions_of(json)?;
    versions.sort_unstable_by(|a, b| b.version_id.cmp(&a.version_id));
    Ok(versions)
}

/// The versions named by `(key, version_id)` rows that `source` selects as
/// `p` (with its values): what a search backfill indexes.
pub(super) async fn versions_in(mut conn: Conn<'_>, source: &str, params: Vec<Param>) -> Result<Vec<ObjectVersion>> {
    let sql = format!(
        "SELECT {} FROM ({source}) p JOIN versions v ON v.key = p.key AND v.version_id = p.version_id {VERSION_JOINS}",
        conn.dialect().versions_json_of_rows()
    );
    let (json,): (Option<String>,) = conn.one("reading versions to index", &sql, params).await?;
    versions_of(json)
}

/// Current versions of keys, in key order.
pub(super) async fn list_latest(mut conn: Conn<'_>, query: &KeyQuery) -> Result<Vec<ObjectVersion>> {
    let dialect = conn.dialect();
    let mut versions = match dialect.bulk_as_json {
        true => {
            let (sql, params) = list_latest_select(query, &dialect.versions_json_of_rows());
            let (json,): (Option<String>,) = conn.one("listing keys", &sql, params).await?;
            versions_of(json)?
        }
        false => {
            let (sql, params) = list_latest_select(query, &dialect.version_columns_of_rows());
            let rows: Vec<VersionRow> = conn.all("listing keys", &sql, params).await?;
            rows.into_iter().map(ObjectVersion::try_from).collect::<Result<_>>()?
        }
    };
    versions.sort_unstable_by(|a, b| a.key.as_str().cmp(b.key.as_str()));
    Ok(versions)
}

/// Every version under `prefix` in (key, version id) order, after `after` in
/// that order; at most `limit`; without metadata and comments, and without
/// tags unless `tags` (what a plan over versions reads). The cursor is one row-value comparison, so
/// each page starts where the last ended in the primary key's index.
pub(super) async fn versions_page(
    mut conn: Conn<'_>,
    prefix: &str,
    after: Option<(&str, &str)>,
    limit: usize,
    tags: bool,
) -> Result<Vec<ObjectVersion>> {
    let mut filters = vec!["key >= ?".to_owned()];
    let mut params = vec![Param::Text(prefix.to_owned())];
    if let Some(upper) = prefix_upper_bound(prefix) {
        filters.push("key < ?".to_owned());
        params.push(Param::Text(upper));
    }
    if let Some((key, version_id)) = after {
        filters.push("(key, version_id) > (?, ?)".to_owned());
        params.extend([key, version_id].map(|p| Param::Text(p.to_owned())));
    }
    params.push(Param::Int(to_i64(limit as u64)));
    let as_json = conn.dialect().bulk_as_json;
    let sql = format!(
        "SELECT {} FROM (SELECT * FROM versions WHERE {} ORDER BY key, version_id LIMIT ?) v{}",
        conn.dialect().planning_columns(tags, as_json),
        filters.join(" AND "),
        if as_json { "" } else { " ORDER BY v.key, v.version_id" }
    );
    // The page's order is the database's (its collation may not be byte
    // order): the last version is the next page's cursor.
    let rows: Vec<PlanningRow> = match as_json {
        true => {
            let (json,): (Option<String>,) = conn.one("listing versions", &sql, params).await?;
            let mut rows: Vec<PlanningRow> = json.as_deref().map(decode_json).transpose()?.unwrap_or_default();
            // An aggregate keeps no order; SQLite compares text byte by byte.
            rows.sort_unstable_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
            rows
        }
        false => conn.all("listing versions", &sql, params).await?,
    };
    rows.into_iter().map(planned_version).collect()
}

/// Every version under `prefix`, with its blob.
pub(super) async fn version_refs(mut conn: Conn<'_>, prefix: &str) -> Result<Vec<VersionRef>> {
    let (sql, params) = version_refs_select(prefix);
    let rows: Vec<(String, String, Option<String>)> = conn.all("listing versions", &sql, params).await?;
    rows.into_iter().map(VersionRef::try_from).collect()
}

/// One blob by its SHA-256.
pub(super) async fn blob(mut conn: Conn<'_>, sha256: &str) -> Result<Option<BlobRecord>> {
    let sql = format!("{BLOB_SELECT} WHERE sha256 = ?");
    let row: Option<BlobRow> = conn
        .optional("reading a blob", &sql, vec![Param::Text(sha256.to_owned())])
        .await?;
    Ok(row.map(BlobRecord::from))
}

/// The setting `name` of the store as a whole, if set.
pub(super) async fn setting(mut conn: Conn<'_>, name: &str) -> Result<Option<String>> {
    let row: Option<(String,)> = conn
        .optional(
            "reading a store setting",
            "SELECT value FROM store_settings WHERE name = ?",
            vec![Param::Text(name.to_owned())],
        )
        .await?;
    Ok(row.map(|(value,)| value))
}

/// Up to `limit` blobs with a data key after `after`, in hash order.
pub(super) async fn data_keys(mut conn: Conn<'_>, after: &str, limit: usize) -> Result<Vec<(String, String)>> {
    conn.all(
        "reading data keys",
        "SELECT sha256, data_key FROM blobs WHERE data_key IS NOT NULL AND sha256 > ? ORDER BY sha256 LIMIT ?",
        vec![Param::Text(after.to_owned()), Param::Int(to_i64(limit as u64))],
    )
    .await
}

/// The restores asked for and not yet seen done, oldest first.
pub(super) async fn pending_restores(mut conn: Conn<'_>) -> Result<Vec<PendingRestore>> {
    let rows: Vec<(String, String, String)> = conn
        .all(
            "reading pending restores",
            "SELECT sha256, locator, restore_pending FROM blobs WHERE restore_pending IS NOT NULL",
            Vec::new(),
        )
        .await?;
    let mut pending = rows
        .into_iter()
        .map(|(sha256, path, request)| {
            Ok(PendingRestore {
                sha256,
                path,
                request: decode_json(&request)?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    pending.sort_by_key(|p| p.request.requested_at);
    Ok(pending)
}

/// Where the content of each of the blobs `sha256s` was moved, for those that were.
pub(super) async fn blob_placements(
    mut conn: Conn<'_>,
    sha256s: &[String],
) -> Result<std::collections::HashMap<String, String>> {
    let mut placed = std::collections::HashMap::new();
    for chunk in sha256s.chunks(500) {
        let marks = vec!["?"; chunk.len()].join(", ");
        let sql = format!("SELECT sha256, placement FROM blobs WHERE placement IS NOT NULL AND sha256 IN ({marks})");
        let params = chunk.iter().map(|sha256| Param::Text(sha256.clone())).collect();
        let rows: Vec<(String, String)> = conn.all("reading where content lies", &sql, params).await?;
        placed.extend(rows);
    }
    Ok(placed)
}

/// What protects each version whose content is the blob `sha256`.
pub(super) async fn blob_protections(mut conn: Conn<'_>, sha256: &str) -> Result<Vec<Protection>> {
    let rows: Vec<(Option<String>, Option<i64>, bool)> = conn
        .all(
            "reading what protects a blob",
            "SELECT retention_mode, retain_until, legal_hold FROM versions WHERE blob_sha256 = ?",
            vec![Param::Text(sha256.to_owned())],
        )
        .await?;
    rows.into_iter()
        .map(|(mode, until, legal_hold)| {
            Ok(Protection {
                retention: retention_of(mode, until)?,
                legal_hold,
            })
        })
        .collect()
}

/// Every blob, in hash order.
pub(super) async fn blobs(mut conn: Conn<'_>) -> Result<Vec<BlobRecord>> {
    let rows: Vec<BlobRow> = conn.all("listing blobs", BLOBS_SELECT, Vec::new()).await?;
    Ok(rows.into_iter().map(BlobRecord::from).collect())
}

/// The totals over the catalog.
pub(super) async fn stats(mut conn: Conn<'_>) -> Result<CatalogStats> {
    let sql = conn.dialect().stats_select();
    let row: StatsRow = conn.one("computing totals", &sql, Vec::new()).await?;
    Ok(stats_of(row))
}

/// Audit rows matching `query`.
pub(super) async fn audit(mut conn: Conn<'_>, query: &AuditQuery) -> Result<Vec<AuditEntry>> {
    let (sql, params) = audit_select(query, &conn.dialect().json_text("detail"));
    let rows: Vec<AuditRow> = conn.all("reading the audit log", &sql, params).await?;
    Ok(rows.into_iter().map(AuditEntry::from).collect())
}

/// How many audit rows are older than `before`, and the newest row's id.
pub(super) async fn audit_extent(mut conn: Conn<'_>, before: i64) -> Result<(u64, Option<i64>)> {
    let (count, newest): (i64, Option<i64>) = conn
        .one(
            "reading the audit log",
            "SELECT (SELECT COUNT(*) FROM audit WHERE at < ?), (SELECT MAX(id) FROM audit)",
            vec![Param::Int(before)],
        )
        .await?;
    Ok((u64::try_from(count).unwrap_or(0), newest))
}

/// The consistency checks whose SQL both engines share: each a description
/// and a query for the items that fail it.
const CONSISTENCY_CHECKS: [(&str, &str); 4] = [
    (
        "version references a missing blob",
        "SELECT v.key || ' ' || v.version_id FROM versions v LEFT JOIN blobs b ON b.sha256 = v.blob_sha256 \
         WHERE v.blob_sha256 IS NOT NULL AND b.sha256 IS NULL",
    ),
    (
        "blob reference count is wrong",
        "SELECT b.sha256 || ' refcount ' || b.refcount || ' but ' || COALESCE(r.n, 0) || ' versions' FROM blobs b \
         LEFT JOIN (SELECT blob_sha256, COUNT(*) AS n FROM versions GROUP BY blob_sha256) r \
         ON r.blob_sha256 = b.sha256 WHERE b.refcount <> COALESCE(r.n, 0)",
    ),
    (
        "latest pointer is not the newest version",
        "SELECT l.key FROM latest l JOIN (SELECT key, MAX(version_id) AS newest FROM versions GROUP BY key) m \
         ON m.key = l.key JOIN versions v ON v.key = l.key AND v.version_id = l.version_id \
         WHERE l.version_id <> m.newest OR l.is_delete_marker <> v.is_delete_marker",
    ),
    (
        "key has versions but no latest pointer",
        "SELECT DISTINCT v.key FROM versions v LEFT JOIN latest l ON l.key = v.key WHERE l.key IS NULL",
    ),
];

/// Run the shared consistency checks and `own` (the engine's), one line per problem.
pub(super) async fn consistency_problems(mut conn: Conn<'_>, own: &[(&str, &str)]) -> Result<Vec<String>> {
    let mut problems = Vec::new();
    for (what, sql) in CONSISTENCY_CHECKS.iter().chain(own) {
        let found: Vec<(String,)> = conn.all("consistency check", sql, Vec::new()).await?;
        problems.extend(found.into_iter().map(|(item,)| format!("{what}: {item}")));
    }
    Ok(problems)
}

/// Run a search: `source` says where the engine's index finds the words;
/// `metadata` how it filters on a metadata entry.
pub(super) async fn search(
    mut conn: Conn<'_>,
    plan: SearchPlan,
    source: SearchSource,
    metadata_filter: &'static str,
    metadata_name: fn(&str) -> String,
) -> Result<SearchPage> {
    let dialect = SearchDialect {
        metadata_filter,
        metadata_name,
        hits_json: conn.dialect().hits_json(),
    };
    let (sql, params) = search_select(&plan, source, &dialect);
    let (json,): (Option<String>,) = conn.one("searching", &sql, params).await?;
    let rows: Vec<(f64, JsonVersion)> = match json {
        Some(json) => decode_json(&json)?,
        None => Vec::new(),
    };
    let hits = rows
        .into_iter()
        .map(|(score, row)| {
            Ok(SearchHit {
                version: ObjectVersion::try_from(row)?,
                score,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(plan.page(hits))
}

/// Every hook, by name.
pub(super) async fn hooks(mut conn: Conn<'_>) -> Result<Vec<HookDefinition>> {
    let rows: Vec<(String,)> = conn
        .all(
            "reading hooks",
            "SELECT definition FROM hooks ORDER BY name",
            Vec::new(),
        )
        .await?;
    rows.iter().map(|(definition,)| parse_hook(definition)).collect()
}

/// Dead deliveries (of one hook, or all), newest first.
pub(super) async fn dead_letters(mut conn: Conn<'_>, hook: Option<&str>, limit: usize) -> Result<Vec<DeadLetter>> {
    let (hook_filter, mut params) = match hook {
        Some(hook) => ("AND d.hook = ?", vec![Param::Text(hook.to_owned())]),
        None => ("", Vec::new()),
    };
    params.push(Param::Int(to_i64(limit as u64)));
    let sql = format!(
        "SELECT {DEAD_LETTER_COLUMNS} FROM hook_deliveries d JOIN outbox o ON o.id = d.event \
         WHERE d.state = 'dead' {hook_filter} ORDER BY d.id DESC LIMIT ?"
    );
    let rows: Vec<DeadLetterRow> = conn.all("reading dead deliveries", &sql, params).await?;
    Ok(rows.into_iter().map(dead_letter).collect())
}

/// The outbox's counters and every hook's.
pub(super) async fn counters(mut conn: Conn<'_>) -> Result<OutboxCounters> {
    let (fanned_out, waiting): (i64, i64) = conn.one("counting events", EVENT_COUNTS_SQL, Vec::new()).await?;
    let hooks: Vec<(String, i64, i64, i64, String)> =
        conn.all("reading hook counters", HOOK_COUNTERS_SQL, Vec::new()).await?;
    let states: Vec<(String, String, i64)> = conn.all("counting deliveries", DELIVERY_STATES_SQL, Vec::new()).await?;
    outbox_counters(fanned_out, waiting, hooks, states)
}

/// What removing `doomed` would release, without removing anything.
pub(super) async fn dry_run_removals(mut conn: Conn<'_>, doomed: Vec<ObjectVersion>) -> Result<Vec<DeletedVersion>> {
    let (sql, params) = refcounts_select(&doomed);
    let refcounts: Vec<(String, i64)> = conn.all("reading blobs", &sql, params).await?;
    Ok(dry_run_release(doomed, refcounts.into_iter().collect()))
}
