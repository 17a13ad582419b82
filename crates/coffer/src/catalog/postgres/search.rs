//! Full-text search on PostgreSQL: a GIN index over tsvectors made of the
//! exact words [`search_document`] builds (with their positions), written in
//! the same transactions as the versions.

use std::collections::BTreeMap;

use sqlx::postgres::PgConnection;

use super::db_error;
use crate::catalog::ObjectVersion;
use crate::catalog::reads;
use crate::catalog::rows::{Param, SearchSource};
use crate::catalog::search::{SCORE_DIGITS, SearchPage, SearchPlan, SearchQuery, search_document};
use crate::catalog::sql::Conn;
use crate::error::Result;

/// Versions indexed per transaction when a catalog made before search connects.
const BACKFILL_BATCH: i64 = 2000;

/// A document as a tsvector literal: each word once, quoted, with the
/// positions it holds (`'acme':3 'invoice':1,4`). Cast with `::tsvector`, it
/// is taken as written: no parsing, no dictionary.
pub(super) fn tsvector_literal(document: &str) -> String {
    let mut positions: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (i, word) in document.split(' ').filter(|w| !w.is_empty()).enumerate() {
        // PostgreSQL keeps positions up to 16383 and clamps the rest.
        positions.entry(word).or_default().push((i + 1).min(16_383).to_string());
    }
    positions
        .into_iter()
        .map(|(word, at)| format!("{}:{}", quoted(word), at.join(",")))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A lexeme in tsvector/tsquery syntax. Words hold only letters and digits;
/// quotes and backslashes are escaped all the same, so no text becomes syntax.
fn quoted(word: &str) -> String {
    format!("'{}'", word.replace('\\', "\\\\").replace('\'', "''"))
}

/// The tsquery for `words`: each a prefix term, all required.
fn tsquery_literal(words: &[String]) -> String {
    words
        .iter()
        .map(|word| format!("{}:*", quoted(word)))
        .collect::<Vec<_>>()
        .join(" & ")
}

/// The tsvector literal of a version's document (`None` for a delete marker, which has none).
pub(super) fn document_of(version: &ObjectVersion) -> Option<String> {
    (!version.is_delete_marker).then(|| {
        tsvector_literal(&search_document(
            version.key.as_str(),
            &version.metadata,
            &version.tags,
            &version.comments,
        ))
    })
}

/// Index the versions that have no document yet (listed in `search_backfill`
/// by the migration, or by a catalog migration), a batch per transaction.
/// Several processes may do this at once: a document already written is kept.
pub(super) async fn backfill(conn: &mut PgConnection) -> Result<()> {
    loop {
        let mut tx = sqlx::Connection::begin(&mut *conn)
            .await
            .map_err(|e| db_error("starting a transaction", e))?;
        let versions = reads::versions_in(
            Conn::from(&mut *tx),
            "SELECT key, version_id FROM search_backfill ORDER BY key, version_id LIMIT ? FOR UPDATE SKIP LOCKED",
            vec![Param::Int(BACKFILL_BATCH)],
        )
        .await?;
        if versions.is_empty() {
            return Ok(());
        }
        let keys: Vec<&str> = versions.iter().map(|v| v.key.as_str()).collect();
        let ids: Vec<&str> = versions.iter().map(|v| v.version_id.as_str()).collect();
        let documents: Vec<String> = versions.iter().map(|v| document_of(v).unwrap_or_default()).collect();
        sqlx::query(
            "WITH indexed AS (INSERT INTO version_search (key, version_id, document) \
               SELECT k, id, doc::tsvector FROM unnest($1::text[], $2::text[], $3::text[]) AS d(k, id, doc) \
               ON CONFLICT DO NOTHING) \
             DELETE FROM search_backfill WHERE (key, version_id) IN \
               (SELECT k, id FROM unnest($1::text[], $2::text[]) AS d(k, id))",
        )
        .bind(keys)
        .bind(ids)
        .bind(documents)
        .execute(&mut *tx)
        .await
        .map_err(|e| db_error("indexing versions", e))?;
        tx.commit().await.map_err(|e| db_error("committing", e))?;
    }
}

/// Run `query` (see [`SearchPlan`] for what a catalog must return).
pub(super) async fn search(conn: Conn<'_>, query: &SearchQuery) -> Result<SearchPage> {
    let plan = query.plan()?;
    let source = search_source(&plan);
    reads::search(conn, plan, source, "fv.metadata ->> ? = ?", str::to_owned).await
}

/// Where `plan`'s hits come from: the tsvector index, or without words the
/// latest pointers or the versions.
fn search_source(plan: &SearchPlan) -> SearchSource {
    if plan.words.is_empty() {
        let table = if plan.all_versions { "versions" } else { "latest" };
        SearchSource {
            from: format!("{table} d"),
            score: "0.0::float8".to_owned(),
            order: "d.key, d.version_id DESC",
            filters: vec!["NOT d.is_delete_marker".into()],
            params: Vec::new(),
        }
    } else {
        let mut from = "version_search d CROSS JOIN (SELECT ?::tsquery AS q) words".to_owned();
        if !plan.all_versions {
            from.push_str(" JOIN latest cur ON cur.key = d.key AND cur.version_id = d.version_id");
        }
        SearchSource {
            from,
            score: format!(
                "to_char(ts_rank(d.document, words.q)::float8, '9.{}EEEE')::float8",
                "9".repeat(SCORE_DIGITS - 1)
            ),
            order: "score DESC, d.key, d.version_id DESC",
            filters: vec!["d.document @@ words.q".into()],
            params: vec![Param::Text(tsquery_literal(&plan.words))],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{tsquery_literal, tsvector_literal};

    #[test]
    fn documents_become_tsvectors_of_their_exact_words() {
        assert_eq!(
            tsvector_literal("docs inv 001 pdf inv"),
            "'001':3 'docs':1 'inv':2,5 'pdf':4"
        );
        assert_eq!(tsvector_literal(""), "");
        assert_eq!(tsquery_literal(&["acme".into(), "o'k".into()]), "'acme':* & 'o''k':*");
    }
}
