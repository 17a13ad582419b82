//! Full-text search through `Store`: what puts, copies, rollbacks, tags and
//! comments make findable, what deletes and prunes take away, paging, bad
//! input, and catalogs made before search existed.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use coffer::backend::OpendalBackend;
use coffer::catalog::SqliteCatalog;
use coffer::{CopyOptions, ErrorKind, Metadata, PrunePolicy, PutOptions, SearchPage, SearchQuery, Store, Tags};
use sqlx::Connection;

mod common;

use common::{Fixture, fs_store, memory_store, pg_store};

/// Run a scenario against a store on each backend.
macro_rules! on_every_backend {
    ($($name:ident),* $(,)?) => {
        mod fs {
            $(#[tokio::test(flavor = "multi_thread")]
            async fn $name() { let f = super::fs_store().await; super::$name(&f).await }
            )*
        }
        mod memory {
            $(#[tokio::test(flavor = "multi_thread")]
            async fn $name() { let f = super::memory_store().await; super::$name(&f).await }
            )*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread")]
            async fn $name() { let Some(f) = super::pg_store().await else { return }; super::$name(&f).await }
            )*
        }
    };
}

on_every_backend!(
    better_matches_rank_first,
    changes_are_findable_at_once,
    pages_visit_every_hit_once,
    bad_input_is_refused_and_changes_nothing,
    long_words_are_stored_whole_and_found_by_their_beginning,
    a_prefix_finds_exactly_the_keys_under_it,
);

fn pairs(pairs: &[(&str, &str)]) -> Metadata {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn query(text: &str) -> SearchQuery {
    SearchQuery {
        text: text.into(),
        limit: 100,
        ..SearchQuery::default()
    }
}

/// The `key@version` of each hit, as a set.
fn found(page: &SearchPage) -> BTreeSet<String> {
    page.hits
        .iter()
        .map(|h| format!("{}@{}", h.version.key, h.version.version_id))
        .collect()
}

async fn keys(store: &Store, query: SearchQuery) -> Vec<String> {
    let page = store.search(&query).await.unwrap();
    page.hits.iter().map(|h| h.version.key.to_string()).collect()
}

async fn better_matches_rank_first(f: &Fixture) {
    let store = &f.store;
    // Rarer words weigh more: the two matches among a few other keys.
    for key in [
        "notes/acme.txt",
        "notes/acme-acme-acme.txt",
        "notes/a.txt",
        "notes/b.txt",
        "notes/c.txt",
    ] {
        store.put_bytes(key, "x", PutOptions::default()).await.unwrap();
    }
    let page = store.search(&query("acme")).await.unwrap();
    let ranked: Vec<(&str, bool)> = page
        .hits
        .iter()
        .map(|h| (h.version.key.as_str(), h.score > 0.0))
        .collect();
    assert_eq!(ranked, [("notes/acme-acme-acme.txt", true), ("notes/acme.txt", true)]);
    assert!(page.hits[0].score > page.hits[1].score);
    let unranked = store.search(&query("")).await.unwrap();
    assert!(unranked.hits.iter().all(|h| h.score == 0.0));
}

async fn changes_are_findable_at_once(f: &Fixture) {
    let store = &f.store;
    let options = PutOptions {
        metadata: pairs(&[("customer", "Acme Corp")]),
        tags: pairs(&[("qc_status", "approved")]),
        ..PutOptions::default()
    };
    let first = store
        .put_bytes("invoices/2024/inv_001.pdf", "one", options)
        .await
        .unwrap();
    store
        .put_bytes("invoices/2024/inv_002.pdf", "two", PutOptions::default())
        .await
        .unwrap();
    assert_eq!(keys(store, query("acme approved")).await, ["invoices/2024/inv_001.pdf"]);
    // A copy keeps the metadata, so it is found by it under its own key.
    store
        .copy(
            "invoices/2024/inv_001.pdf",
            "archive/inv_001.pdf",
            CopyOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(
        keys(store, query("acme")).await,
        ["archive/inv_001.pdf", "invoices/2024/inv_001.pdf"]
    );
    // An overwrite without the metadata is no longer found by it, unless every version is searched.
    let second = store
        .put_bytes("invoices/2024/inv_001.pdf", "one, fixed", PutOptions::default())
        .await
        .unwrap();
    assert_eq!(keys(store, query("acme")).await, ["archive/inv_001.pdf"]);
    let every = SearchQuery {
        all_versions: true,
        ..query("acme")
    };
    let page = store.search(&every).await.unwrap();
    assert!(found(&page).contains(&format!("invoices/2024/inv_001.pdf@{}", first.version_id)));
    // A rollback brings the old version's metadata back with its content.
    store
        .rollback("invoices/2024/inv_001.pdf", &first.version_id, Some("Wrong fix"))
        .await
        .unwrap();
    assert_eq!(
        keys(store, query("acme")).await,
        ["archive/inv_001.pdf", "invoices/2024/inv_001.pdf"]
    );
    assert_eq!(keys(store, query("wrong fix")).await, ["invoices/2024/inv_001.pdf"]);
    // Tags and comments on any version.
    store
        .tag(
            "invoices/2024/inv_002.pdf",
            &store.head("invoices/2024/inv_002.pdf", None).await.unwrap().version_id,
            Tags::from([("reviewer".to_string(), "zelda".to_string())]),
            &[],
        )
        .await
        .unwrap();
    store
        .comment(
            "invoices/2024/inv_001.pdf",
            &second.version_id,
            "Superseded by the rollback",
        )
        .await
        .unwrap();
    assert_eq!(keys(store, query("zel")).await, ["invoices/2024/inv_002.pdf"]);
    let superseded = SearchQuery {
        all_versions: true,
        ..query("superseded")
    };
    let page = store.search(&superseded).await.unwrap();
    assert_eq!(
        found(&page),
        BTreeSet::from([format!("invoices/2024/inv_001.pdf@{}", second.version_id)])
    );
    assert!(!page.hits[0].version.is_latest);
    // A deleted key is not found; prune takes old versions out of every search.
    store.delete("archive/inv_001.pdf").await.unwrap();
    assert_eq!(keys(store, query("acme")).await, ["invoices/2024/inv_001.pdf"]);
    let policy = PrunePolicy {
        keep: 1,
        keep_tagged: false,
    };
    store.prune("invoices/2024/inv_001.pdf", policy, false).await.unwrap();
    assert!(store.search(&superseded).await.unwrap().hits.is_empty());
    assert!(store.check_consistency().await.unwrap().is_empty());
}

async fn pages_visit_every_hit_once(f: &Fixture) {
    let store = &f.store;
    let puts = (0..25).map(|i| {
        let options = PutOptions {
            metadata: pairs(&[("batch", "b7")]),
            ..PutOptions::default()
        };
        async move {
            store
                .put_bytes(&format!("scans/{i:02}.txt"), format!("scan {i}"), options)
                .await
        }
    });
    futures::future::try_join_all(puts).await.unwrap();
    for text in ["b7 scans", ""] {
        let mut page_query = SearchQuery {
            limit: 10,
            ..query(text)
        };
        let mut seen = Vec::new();
        let mut pages = 0;
        loop {
            let page = store.search(&page_query).await.unwrap();
            pages += 1;
            seen.extend(page.hits.iter().map(|h| h.version.key.to_string()));
            match page.next_cursor {
                Some(cursor) => page_query.cursor = Some(cursor),
                None => break,
            }
        }
        assert_eq!(pages, 3, "{text:?}");
        let expected: Vec<String> = (0..25).map(|i| format!("scans/{i:02}.txt")).collect();
        let mut sorted = seen.clone();
        sorted.sort();
        assert_eq!(sorted, expected, "{text:?}: every hit once");
        if text.is_empty() {
            assert_eq!(seen, expected, "without text, in key order");
        }
    }
}

async fn bad_input_is_refused_and_changes_nothing(f: &Fixture) {
    let store = &f.store;
    for key in ["a/b.txt", "a/c.txt"] {
        store.put_bytes(key, "x", PutOptions::default()).await.unwrap();
    }
    let all_rows = coffer::AuditQuery {
        limit: 100,
        ..Default::default()
    };
    let audit_before = store.audit(&all_rows).await.unwrap();
    let cursor = store
        .search(&SearchQuery { limit: 1, ..query("") })
        .await
        .unwrap()
        .next_cursor
        .unwrap();
    let bad = [
        SearchQuery { limit: 0, ..query("b") },
        SearchQuery {
            limit: 1001,
            ..query("b")
        },
        query("--- ..."),
        query(&"word ".repeat(300)),
        SearchQuery {
            cursor: Some("0123".into()),
            ..query("b")
        },
        SearchQuery {
            cursor: Some(cursor),
            ..query("b")
        },
        SearchQuery {
            tags: vec![("no spaces".into(), "x".into())],
            ..query("b")
        },
        SearchQuery {
            metadata: vec![("k".into(), "\u{7}".into())],
            ..query("b")
        },
        SearchQuery {
            content_type: Some("text".into()),
            ..query("b")
        },
    ];
    for q in bad {
        let err = store.search(&q).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{q:?}");
        assert!(!err.message().contains('\n'), "{}", err.message());
    }
    // Text that looks like FTS5 syntax is only words.
    for text in ["\"b\" OR a*", "NEAR(a b)", "b AND NOT c", "^b", "a:b"] {
        assert!(store.search(&query(text)).await.is_ok(), "{text}");
    }
    assert_eq!(keys(store, query("b OR nothing")).await, Vec::<String>::new());
    assert_eq!(store.audit(&all_rows).await.unwrap(), audit_before);
    assert_eq!(store.versions("a/b.txt").await.unwrap().len(), 1);
}

/// A metadata value and a comment of one word each, as long as the validators
/// allow (PostgreSQL refuses index words over 2047 bytes): stored whole, and
/// found by their beginning.
async fn long_words_are_stored_whole_and_found_by_their_beginning(f: &Fixture) {
    let store = &f.store;
    let value = format!("Q{}", "q".repeat(coffer::key::MAX_METADATA_VALUE_BYTES - 1));
    let comment = format!("z{}", "é".repeat((coffer::key::MAX_COMMENT_BYTES - 1) / 2));
    let options = PutOptions {
        metadata: pairs(&[("blob", &value)]),
        ..PutOptions::default()
    };
    let v = store.put_bytes("long/words.txt", "x", options).await.unwrap();
    store.comment("long/words.txt", &v.version_id, &comment).await.unwrap();
    let head = store.head("long/words.txt", None).await.unwrap();
    assert_eq!(head.metadata["blob"], value);
    assert_eq!(head.comments[0].text, comment);
    assert_eq!(keys(store, query("qqqq")).await, ["long/words.txt"]);
    assert_eq!(keys(store, query(&comment[..1001])).await, ["long/words.txt"]);
    assert_eq!(keys(store, query(&value[..1024])).await, ["long/words.txt"]);
    assert!(store.check_consistency().await.unwrap().is_empty());
}

/// A prefix narrows the hits to the keys that start with it, byte for byte:
/// cut inside a word, across separators, in any case and script.
async fn a_prefix_finds_exactly_the_keys_under_it(f: &Fixture) {
    let store = &f.store;
    let keys_put = [
        "dept01/a.txt",
        "dept01x/b.txt",
        "dept1/c.txt",
        "Dept01/d.txt",
        "dept01/sub dir/e.txt",
        "a.b/f.txt",
        "a.bc/g.txt",
        "récits/h.txt",
        "recits/i.txt",
    ];
    let options = PutOptions {
        metadata: pairs(&[("kind", "invoice")]),
        ..PutOptions::default()
    };
    for key in keys_put {
        store.put_bytes(key, "x", options.clone()).await.unwrap();
    }
    store
        .put_bytes("dept01/other.txt", "x", PutOptions::default())
        .await
        .unwrap();
    for (prefix, expected) in [
        ("dept0", &["dept01/a.txt", "dept01/sub dir/e.txt", "dept01x/b.txt"][..]),
        ("dept01/", &["dept01/a.txt", "dept01/sub dir/e.txt"]),
        ("Dept01/", &["Dept01/d.txt"]),
        ("dept01/sub dir/", &["dept01/sub dir/e.txt"]),
        ("dept01/sub d", &["dept01/sub dir/e.txt"]),
        ("a.b", &["a.b/f.txt", "a.bc/g.txt"]),
        ("a.b/", &["a.b/f.txt"]),
        ("réc", &["récits/h.txt"]),
        ("nowhere/", &[]),
    ] {
        let mut found = keys(
            store,
            SearchQuery {
                prefix: Some(prefix.into()),
                ..query("invoice")
            },
        )
        .await;
        found.sort();
        assert_eq!(found, expected, "prefix {prefix:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn reindexed_catalog_is_searchable() {
    let f = fs_store().await;
    let store = &f.store;
    let v = store
        .put_bytes(
            "notes/plan.txt",
            "x",
            PutOptions {
                metadata: pairs(&[("title", "Launch plan")]),
                ..PutOptions::default()
            },
        )
        .await
        .unwrap();
    store
        .comment("notes/plan.txt", &v.version_id, "Approved by finance")
        .await
        .unwrap();
    let target = SqliteCatalog::open(&f.dir.path().join("rebuilt.db")).await.unwrap();
    store.reindex_into(&target).await.unwrap();
    let rebuilt = Store::from_parts(store.backend().clone(), Arc::new(target), "tester");
    assert_eq!(keys(&rebuilt, query("launch approved")).await, ["notes/plan.txt"]);
}

/// Make the catalog at `path` look as it did before the search migration: no search tables, migration not applied.
async fn remove_search_schema(path: &Path) {
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    sqlx::raw_sql(
        "DROP TRIGGER search_docs_remove; DROP TABLE search_fts; DROP TABLE search_docs; DROP TABLE search_backfill; \
         DELETE FROM _sqlx_migrations WHERE version = 20261125000000;",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    conn.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn catalog_made_before_search_is_indexed_when_opened() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("catalog.db");
    let backend = Arc::new(OpendalBackend::memory().unwrap());
    let open = |backend: Arc<OpendalBackend>| {
        let path = path.clone();
        async move { Store::from_parts(backend, Arc::new(SqliteCatalog::open(&path).await.unwrap()), "tester") }
    };
    let store = open(backend.clone()).await;
    // More versions than one backfill batch, and tags, comments and a delete marker.
    let puts = (0..2100).map(|i| {
        let store = &store;
        async move {
            store
                .put_bytes(&format!("bulk/{i:04}.txt"), format!("bulk {i}"), PutOptions::default())
                .await
        }
    });
    futures::future::try_join_all(puts).await.unwrap();
    let tagged = store
        .put_bytes(
            "docs/contract.pdf",
            "c",
            PutOptions {
                tags: pairs(&[("qc_status", "approved")]),
                ..PutOptions::default()
            },
        )
        .await
        .unwrap();
    store
        .comment("docs/contract.pdf", &tagged.version_id, "Signed by Zelda")
        .await
        .unwrap();
    store
        .put_bytes("docs/gone.txt", "g", PutOptions::default())
        .await
        .unwrap();
    store.delete("docs/gone.txt").await.unwrap();
    drop(store);

    remove_search_schema(&path).await;
    let store = open(backend).await;
    assert_eq!(keys(&store, query("zelda approved")).await, ["docs/contract.pdf"]);
    let bulk = SearchQuery {
        limit: 1000,
        ..query("bulk txt")
    };
    let mut total = 0;
    let mut page_query = bulk.clone();
    loop {
        let page = store.search(&page_query).await.unwrap();
        total += page.hits.len();
        match page.next_cursor {
            Some(cursor) => page_query.cursor = Some(cursor),
            None => break,
        }
    }
    assert_eq!(total, 2100);
    let gone = SearchQuery {
        all_versions: true,
        ..query("gone")
    };
    assert_eq!(
        store.search(&gone).await.unwrap().hits.len(),
        1,
        "the version, not its delete marker"
    );
    assert!(store.check_consistency().await.unwrap().is_empty());
}
