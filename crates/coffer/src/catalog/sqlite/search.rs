//! Full-text search on SQLite: an FTS5 index over the documents
//! [`search_document`] builds, written in the same transactions as the versions.

use sqlx::sqlite::SqliteConnection;

use super::{db_error, exec};
use crate::catalog::reads;
use crate::catalog::rows::{Param, SearchSource};
use crate::catalog::search::{SCORE_DIGITS, SearchPage, SearchPlan, SearchQuery, search_document, search_words};
use crate::catalog::sql::Conn;
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
    let versions = reads::versions_in(
        Conn::from(&mut *conn),
        "SELECT key, version_id FROM search_backfill ORDER BY key, version_id LIMIT ?",
        vec![Param::Int(BACKFILL_BATCH)],
    )
    .await?;
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

/// The FTS5 query for `plan`: each word a quoted prefix term, all required,
/// and with a key prefix the phrase every document under it opens with (see
/// [`prefix_phrase`]). Words hold only letters and digits; quotes are
/// doubled all the same, so no text can become FTS5 syntax.
fn fts5_query(plan: &SearchPlan) -> String {
    let words = plan.words.iter().map(|word| format!("{}*", quoted(word)));
    let anchor = plan.prefix.as_deref().and_then(prefix_phrase);
    words.chain(anchor).collect::<Vec<_>>().join(" AND ")
}

/// `text` as an FTS5 string.
fn quoted(text: &str) -> String {
    format!("\"{}\"", text.replace('"', "\"\""))
}

/// An FTS5 phrase that every document of a key under `prefix` matches. A
/// document opens with its key's words, so such a key's document starts
/// with the prefix's words, the last one possibly cut short (`^"a b"*`).
/// Matching it narrows a common word's matches to the prefix inside the
/// index, before any row is read (the key range still decides). `None` when
/// the prefix has no words, or is not ASCII: lowercasing other scripts may
/// depend on the letters that follow.
fn prefix_phrase(prefix: &str) -> Option<String> {
    let words = search_words(prefix);
    if !prefix.is_ascii() || words.is_empty() {
        return None;
    }
    let cut_short = prefix.ends_with(|c: char| c.is_ascii_alphanumeric());
    Some(format!(
        "^{}{}",
        quoted(&words.join(" ")),
        if cut_short { "*" } else { "" }
    ))
}

/// Run `query`. With words, the full-text index is read first (its matches
/// drive the joins, each a primary-key lookup); without, the latest pointers
/// or the versions are read in key order.
pub(super) async fn search(conn: Conn<'_>, query: &SearchQuery) -> Result<SearchPage> {
    let plan = query.plan()?;
    let source = search_source(&plan);
    // Metadata names are letters, digits and `-_.`: safe inside a quoted JSON path.
    reads::search(conn, plan, source, "json_extract(fv.metadata, ?) = ?", |name| {
        format!("$.\"{name}\"")
    })
    .await
}

/// Where `plan`'s hits come from: the full-text index, or without words the
/// latest pointers or the versions.
fn search_source(plan: &SearchPlan) -> SearchSource {
    if plan.words.is_empty() {
        let table = if plan.all_versions { "versions" } else { "latest" };
        SearchSource {
            from: format!("{table} d"),
            score: "0.0".to_owned(),
            order: "d.key, d.version_id DESC",
            filters: vec!["NOT d.is_delete_marker".into()],
            params: Vec::new(),
        }
    } else {
        // CROSS JOIN keeps the index first: the planner cannot tell how many rows a MATCH yields.
        let mut from = "search_fts CROSS JOIN search_docs d ON d.id = search_fts.rowid".to_owned();
        if !plan.all_versions {
            from.push_str(" CROSS JOIN latest cur ON cur.key = d.key AND cur.version_id = d.version_id");
        }
        SearchSource {
            from,
            // bm25 is lower for better matches; scores are higher.
            score: format!("CAST(printf('%.{}e', -bm25(search_fts)) AS REAL)", SCORE_DIGITS - 1),
            order: "score DESC, d.key, d.version_id DESC",
            filters: vec!["search_fts MATCH ?".into()],
            params: vec![Param::Text(fts5_query(plan))],
        }
    }
}

#[cfg(test)]
mod tests {
    use sqlx::Connection;

    use super::{fts5_query, prefix_phrase};
    use crate::catalog::search::SearchQuery;

    #[test]
    fn fts5_queries_quote_every_word() {
        let mut plan = SearchQuery {
            text: "approved".into(),
            limit: 10,
            ..SearchQuery::default()
        }
        .plan()
        .unwrap();
        plan.words = vec!["approved".to_owned(), "inv\"oice".to_owned()];
        assert_eq!(fts5_query(&plan), "\"approved\"* AND \"inv\"\"oice\"*");
        plan.prefix = Some("Dept07/2024-".to_owned());
        assert_eq!(
            fts5_query(&plan),
            "\"approved\"* AND \"inv\"\"oice\"* AND ^\"dept07 2024\""
        );
    }

    #[test]
    fn a_prefix_cut_inside_a_word_matches_the_words_it_begins() {
        assert_eq!(prefix_phrase("dept0").as_deref(), Some("^\"dept0\"*"));
        assert_eq!(prefix_phrase("/a/b/").as_deref(), Some("^\"a b\""));
        assert_eq!(prefix_phrase("//"), None);
        assert_eq!(prefix_phrase("récits/"), None);
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
