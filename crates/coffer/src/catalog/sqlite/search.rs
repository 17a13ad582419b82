//! Full-text search on SQLite: an FTS5 index over the documents
//! [`search_document`] builds, written in the same transactions as the versions.

use sqlx::sqlite::{SqliteConnection, SqlitePool};

use super::{COMMENTS_OF_ROW, TAGS_OF_ROW, VERSION_JOINS, db_error, exec, version_as_json, versions_as_json};
use crate::catalog::ObjectVersion;
use crate::catalog::rows::{JsonVersion, decode_json, decode_versions, prefix_upper_bound, to_i64};
use crate::catalog::search::{SCORE_DECIMALS, SearchHit, SearchPage, SearchPlan, SearchQuery, search_document};
use crate::error::{Error, ErrorKind, Result};

/// Index a new version: bind its key, version id and document.
pub(super) const INSERT_DOCUMENT: &str = "INSERT INTO search_docs (key, version_id) VALUES (?, ?); \
     INSERT INTO search_fts (rowid, document) VALUES (last_insert_rowid(), ?);";

/// Replace a version's document: bind the document, then its key and version id.
pub(super) const REWRITE_DOCUMENT: &str = "UPDATE search_fts SET document = ? \
     WHERE rowid = (SELECT id FROM search_docs WHERE key = ? AND version_id = ?);";

/// Versions indexed per transaction when a catalog made before search opens.
const BACKFILL_BATCH: i64 = 2000;

/// Index the versions a catalog made before search has no document for
/// (listed by the migration in `search_backfill`), a batch per transaction.
pub(super) async fn backfill(conn: &mut SqliteConnection) -> Result<()> {
    let pending: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM search_backfill)")
        .fetch_one(&mut *conn)
        .await
        .map_err(|e| db_error("looking for versions to index", e))?;
    if !pending {
        return Ok(());
    }
    loop {
        exec(conn, "BEGIN IMMEDIATE").await?;
        match backfill_batch(conn).await {
            Ok(indexed) => {
                exec(conn, "COMMIT").await?;
                if indexed == 0 {
                    return Ok(());
                }
            }
            Err(err) => {
                let _ = exec(conn, "ROLLBACK").await;
                return Err(err);
            }
        }
    }
}

/// Index one batch of `search_backfill`; returns how many versions it indexed.
async fn backfill_batch(conn: &mut SqliteConnection) -> Result<usize> {
    let sql = format!(
        "SELECT {} FROM (SELECT key, version_id FROM search_backfill ORDER BY key, version_id LIMIT ?) p \
         JOIN versions v ON v.key = p.key AND v.version_id = p.version_id {VERSION_JOINS}",
        versions_as_json(TAGS_OF_ROW, COMMENTS_OF_ROW)
    );
    let json: String = sqlx::query_scalar(&sql)
        .bind(BACKFILL_BATCH)
        .fetch_one(&mut *conn)
        .await
        .map_err(|e| db_error("reading versions to index", e))?;
    let versions = decode_versions(&json)?;
    let documents: Vec<(&str, &str, String)> = versions
        .iter()
        .map(|v| {
            let document = search_document(v.key.as_str(), &v.metadata, &v.tags, &v.comments);
            (v.key.as_str(), v.version_id.as_str(), document)
        })
        .collect();
    let documents = serde_json::to_string(&documents)
        .map_err(|e| Error::new(ErrorKind::Catalog, format!("cannot encode search documents: {e}")))?;
    sqlx::query(
        "INSERT INTO search_docs (key, version_id) SELECT value ->> 0, value ->> 1 FROM json_each(?1); \
         INSERT INTO search_fts (rowid, document) SELECT d.id, j.value ->> 2 FROM json_each(?1) j \
           JOIN search_docs d ON d.key = j.value ->> 0 AND d.version_id = j.value ->> 1; \
         DELETE FROM search_backfill WHERE (key, version_id) IN (SELECT value ->> 0, value ->> 1 FROM json_each(?1));",
    )
    .bind(documents)
    .execute(&mut *conn)
    .await
    .map_err(|e| db_error("indexing versions", e))?;
    Ok(versions.len())
}

/// A value to bind, in the order the query's placeholders appear.
enum Bind {
    Text(String),
    Int(i64),
    Real(f64),
}

/// The FTS5 query for `words`: each a quoted prefix term, all required. Words
/// hold only letters and digits; quotes are doubled all the same, so no text
/// can become FTS5 syntax.
fn fts5_query(words: &[String]) -> String {
    words
        .iter()
        .map(|word| format!("\"{}\"*", word.replace('"', "\"\"")))
        .collect::<Vec<_>>()
        .join(" AND ")
}

/// Run `query`. With words, the full-text index is read first (its matches
/// drive the joins, each a primary-key lookup); without, the latest pointers
/// or the versions are read in key order.
pub(super) async fn search(readers: &SqlitePool, query: &SearchQuery) -> Result<SearchPage> {
    let plan = query.plan()?;
    let (sql, binds) = search_sql(&plan);
    let mut q = sqlx::query_scalar::<_, String>(&sql);
    for bind in binds {
        q = match bind {
            Bind::Text(text) => q.bind(text),
            Bind::Int(n) => q.bind(n),
            Bind::Real(x) => q.bind(x),
        };
    }
    let json = q.fetch_one(readers).await.map_err(|e| db_error("searching", e))?;
    let rows: Vec<(f64, JsonVersion)> = decode_json(&json)?;
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

/// The statement for `plan` and its values.
fn search_sql(plan: &SearchPlan) -> (String, Vec<Bind>) {
    let mut binds = Vec::new();
    let mut filters: Vec<String> = Vec::new();
    // `d` is the candidate: its `key` and `version_id` name the version.
    let (mut from, score, order) = if plan.words.is_empty() {
        filters.push("NOT d.is_delete_marker".into());
        let table = if plan.all_versions { "versions" } else { "latest" };
        (format!("{table} d"), "0.0".to_owned(), "d.key, d.version_id DESC")
    } else {
        // CROSS JOIN keeps the index first: the planner cannot tell how many rows a MATCH yields.
        let mut from = "search_fts CROSS JOIN search_docs d ON d.id = search_fts.rowid".to_owned();
        if !plan.all_versions {
            from.push_str(" CROSS JOIN latest cur ON cur.key = d.key AND cur.version_id = d.version_id");
        }
        filters.push("search_fts MATCH ?".into());
        binds.push(Bind::Text(fts5_query(&plan.words)));
        // bm25 is lower for better matches; scores are higher.
        let score = format!("round(-bm25(search_fts), {SCORE_DECIMALS})");
        (from, score, "score DESC, d.key, d.version_id DESC")
    };
    if let Some(prefix) = &plan.prefix {
        filters.push("d.key >= ?".into());
        binds.push(Bind::Text(prefix.clone()));
        if let Some(upper) = prefix_upper_bound(prefix) {
            filters.push("d.key < ?".into());
            binds.push(Bind::Text(upper));
        }
    }
    for (name, value) in &plan.tags {
        filters.push(
            "EXISTS (SELECT 1 FROM version_tags t WHERE t.key = d.key AND t.version_id = d.version_id \
             AND t.name = ? AND t.value = ?)"
                .into(),
        );
        binds.push(Bind::Text(name.clone()));
        binds.push(Bind::Text(value.clone()));
    }
    let needs_version =
        !plan.metadata.is_empty() || plan.content_type.is_some() || plan.since.is_some() || plan.until.is_some();
    if needs_version {
        from.push_str(" JOIN versions fv ON fv.key = d.key AND fv.version_id = d.version_id");
    }
    for (name, value) in &plan.metadata {
        // Metadata names are letters, digits and `-_.`: safe inside a quoted JSON path.
        filters.push("json_extract(fv.metadata, ?) = ?".into());
        binds.push(Bind::Text(format!("$.\"{name}\"")));
        binds.push(Bind::Text(value.clone()));
    }
    if let Some(content_type) = &plan.content_type {
        filters.push("fv.content_type = ?".into());
        binds.push(Bind::Text(content_type.clone()));
    }
    if let Some(since) = plan.since {
        filters.push("fv.created_at >= ?".into());
        binds.push(Bind::Int(since.as_micros()));
    }
    if let Some(until) = plan.until {
        filters.push("fv.created_at < ?".into());
        binds.push(Bind::Int(until.as_micros()));
    }
    if let Some(after) = &plan.after {
        // Keyset: after the last hit in (score desc, key asc, version id desc) order;
        // the first bound lets an index range start at the last key.
        let rest = format!("({score} < ? OR ({score} = ? AND (d.key > ? OR (d.key = ? AND d.version_id < ?))))");
        if plan.words.is_empty() {
            filters.push("d.key >= ?".into());
            binds.push(Bind::Text(after.key.clone()));
        }
        filters.push(rest);
        binds.push(Bind::Real(after.score));
        binds.push(Bind::Real(after.score));
        binds.push(Bind::Text(after.key.clone()));
        binds.push(Bind::Text(after.key.clone()));
        binds.push(Bind::Text(after.version_id.clone()));
    }
    binds.push(Bind::Int(to_i64(plan.limit as u64 + 1)));
    let sql = format!(
        "SELECT json_group_array(json_array(page.score, {version})) FROM \
           (SELECT d.key, d.version_id, {score} AS score FROM {from} WHERE {filters} ORDER BY {order} LIMIT ?) page \
         JOIN versions v ON v.key = page.key AND v.version_id = page.version_id {VERSION_JOINS}",
        version = version_as_json(TAGS_OF_ROW, COMMENTS_OF_ROW),
        filters = filters.join(" AND "),
    );
    (sql, binds)
}

#[cfg(test)]
mod tests {
    use sqlx::Connection;

    use super::fts5_query;

    #[test]
    fn fts5_queries_quote_every_word() {
        let words = ["approved".to_owned(), "inv\"oice".to_owned()];
        assert_eq!(fts5_query(&words), "\"approved\"* AND \"inv\"\"oice\"*");
    }

    /// The bundled SQLite has FTS5 and is new enough for contentless-delete tables (3.43).
    #[tokio::test]
    async fn bundled_sqlite_has_fts5() {
        let mut conn = sqlx::SqliteConnection::connect("sqlite::memory:").await.unwrap();
        let (fts5, version): (bool, String) =
            sqlx::query_as("SELECT sqlite_compileoption_used('ENABLE_FTS5'), sqlite_version()")
                .fetch_one(&mut conn)
                .await
                .unwrap();
        let parts: Vec<u32> = version.split('.').map(|p| p.parse().unwrap()).collect();
        assert!(fts5, "SQLite {version} without FTS5");
        assert!((parts[0], parts[1]) >= (3, 43), "SQLite {version} is older than 3.43");
    }
}
