//! Search scores for words most versions hold: SQLite's BM25 makes them
//! tiny (near 1e-6), so scores are kept to significant digits, not decimal
//! places. They must stay above zero, keep their order, and page exactly
//! through a cursor. On SQLite and on PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::collections::BTreeSet;

use coffer::{Metadata, PutOptions, SearchQuery};

mod common;

use common::{Fixture, fs_store, pg_store};

#[tokio::test(flavor = "multi_thread")]
async fn sqlite() {
    common_words_score_above_zero_in_order_and_page_exactly(fs_store().await).await
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres() {
    let Some(f) = pg_store().await else { return };
    common_words_score_above_zero_in_order_and_page_exactly(f).await
}

async fn common_words_score_above_zero_in_order_and_page_exactly(f: Fixture) {
    let store = &f.store;
    for i in 0..30 {
        // Every version holds "invoice"; some hold it more often, or among more words.
        let title = format!("{} approved {}", "invoice ".repeat(1 + i % 4), "word ".repeat(i % 3));
        let options = PutOptions {
            metadata: Metadata::from([("title".to_owned(), title)]),
            ..PutOptions::default()
        };
        store
            .put_bytes(&format!("docs/{i:02}.txt"), "x", options)
            .await
            .unwrap();
    }
    let mut query = SearchQuery {
        text: "invoice".into(),
        limit: 7,
        ..SearchQuery::default()
    };
    let mut hits = Vec::new();
    loop {
        let page = store.search(&query).await.unwrap();
        hits.extend(page.hits);
        match page.next_cursor {
            Some(cursor) => query.cursor = Some(cursor),
            None => break,
        }
    }
    let keys: BTreeSet<String> = hits.iter().map(|h| h.version.key.to_string()).collect();
    assert_eq!((hits.len(), keys.len()), (30, 30), "every hit once across pages");
    assert!(
        hits.iter().all(|h| h.score > 0.0),
        "{:?}",
        hits.iter().map(|h| h.score).collect::<Vec<_>>()
    );
    assert!(
        hits.windows(2).all(|w| w[0].score >= w[1].score),
        "best first across pages"
    );
    let distinct: BTreeSet<u64> = hits.iter().map(|h| h.score.to_bits()).collect();
    assert!(distinct.len() >= 3, "scores tell the versions apart: {distinct:?}");
}
