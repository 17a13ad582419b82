//! Property test across both catalogs: any key, metadata, tags and comment
//! the validators accept is stored and read back whole, found by each of its
//! search words, on SQLite and on PostgreSQL alike, and carried by `catalog
//! migrate` from SQLite into PostgreSQL unchanged and still searchable.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::cell::RefCell;
use std::sync::Arc;

use coffer::backend::OpendalBackend;
use coffer::catalog::{PostgresCatalog, SqliteCatalog, search_words};
use coffer::testkit::TestDatabase;
use coffer::{Config, Metadata, NoProgress, ObjectVersion, PutOptions, SearchQuery, Store, Tags};
use proptest::prelude::*;
use proptest::test_runner::{Config as RunnerConfig, TestRunner};

/// Cases per run: each is a few puts and searches on two catalogs.
const CASES: u32 = 40;

/// What one case stores.
#[derive(Debug, Clone)]
struct Input {
    key: String,
    metadata: Metadata,
    tags: Tags,
    comment: String,
}

/// `text` cut to at most `max` bytes, at a character boundary.
fn at_most(mut text: String, max: usize) -> String {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    text
}

/// Text as users write it, any character but control ones (which every
/// validator refuses), and now and then one long word.
fn text(max_bytes: usize) -> impl Strategy<Value = String> {
    let any_char = any::<char>().prop_filter("no control characters", |c| !c.is_control());
    prop_oneof![
        3 => "[a-zA-Z0-9 ,._/-]{0,40}",
        3 => proptest::collection::vec(any_char, 0..80).prop_map(String::from_iter),
        1 => ("[a-zA-Zé]", 1000..3000usize).prop_map(|(c, n)| c.repeat(n)),
    ]
    .prop_map(move |text| at_most(text, max_bytes))
}

fn key() -> impl Strategy<Value = String> {
    let segment = proptest::collection::vec(any::<char>(), 1..12).prop_map(|chars| {
        chars
            .into_iter()
            .map(|c| if c.is_control() || c == '/' { '_' } else { c })
            .collect::<String>()
    });
    let segment = prop_oneof![3 => "[a-zA-Z0-9._ -]{1,20}", 1 => segment]
        .prop_filter("no . or .. segments", |s| s != "." && s != "..");
    proptest::collection::vec(segment, 1..4).prop_map(|segments| at_most(segments.join("/"), 900))
}

fn input() -> impl Strategy<Value = Input> {
    let metadata = proptest::collection::btree_map(
        "[A-Za-z0-9._-]{1,128}",
        text(coffer::key::MAX_METADATA_VALUE_BYTES),
        0..4,
    );
    let tags =
        proptest::collection::btree_map("[A-Za-z0-9._:/@-]{1,128}", text(coffer::key::MAX_TAG_VALUE_BYTES), 0..4);
    let comment = text(coffer::key::MAX_COMMENT_BYTES).prop_filter("not blank", |c| !c.trim().is_empty());
    (key(), metadata, tags, comment).prop_filter_map(
        "within the validators' limits",
        |(key, metadata, tags, comment)| {
            let input = Input {
                key,
                metadata,
                tags,
                comment,
            };
            accepted(&input).then_some(input)
        },
    )
}

/// Whether the validators accept `input` (the strategies aim inside their limits; this makes sure).
fn accepted(input: &Input) -> bool {
    coffer::ObjectKey::new(input.key.as_str()).is_ok()
        && coffer::key::validate_metadata(&input.metadata).is_ok()
        && coffer::key::validate_tags(&input.tags).is_ok()
        && coffer::key::validate_comment(&input.comment).is_ok()
}

/// Each distinct search word of what `input` stores.
fn words_of(key: &str, input: &Input) -> Vec<String> {
    let texts = std::iter::once(key)
        .chain(input.metadata.values().map(String::as_str))
        .chain(input.tags.iter().flat_map(|(n, v)| [n.as_str(), v.as_str()]))
        .chain(std::iter::once(input.comment.as_str()));
    let mut words: Vec<String> = texts.flat_map(search_words).collect();
    words.sort();
    words.dedup();
    words
}

/// Store `input` under `key`, with its comment; the version as read back.
async fn store_input(store: &Store, key: &str, input: &Input) -> ObjectVersion {
    let options = PutOptions {
        metadata: input.metadata.clone(),
        tags: input.tags.clone(),
        ..PutOptions::default()
    };
    let put = store.put_bytes(key, "x", options).await.unwrap();
    store.comment(key, &put.version_id, &input.comment).await.unwrap();
    store.head(key, Some(&put.version_id)).await.unwrap()
}

/// The version holds `input` exactly.
fn holds(version: &ObjectVersion, key: &str, input: &Input) {
    assert_eq!(version.key.as_str(), key);
    assert_eq!(version.metadata, input.metadata);
    assert_eq!(version.tags, input.tags);
    let comments: Vec<&str> = version.comments.iter().map(|c| c.text.as_str()).collect();
    assert_eq!(comments, [input.comment.as_str()]);
}

/// Each word of `input` finds `version` (searched among keys starting with `key`).
async fn found_by_each_word(store: &Store, version: &ObjectVersion, input: &Input) {
    for word in words_of(version.key.as_str(), input) {
        let query = SearchQuery {
            text: word.clone(),
            prefix: Some(version.key.to_string()),
            limit: 10,
            ..SearchQuery::default()
        };
        let page = store.search(&query).await.unwrap();
        assert!(
            page.hits.iter().any(|hit| hit.version.version_id == version.version_id),
            "{word:?} does not find {}",
            version.key
        );
    }
}

#[test]
fn accepted_input_is_stored_found_and_migrated_alike_on_both_catalogs() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let Some(postgres) = runtime.block_on(TestDatabase::create()).unwrap() else {
        return;
    };
    let Some(destination) = runtime.block_on(TestDatabase::create()).unwrap() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let backend = Arc::new(OpendalBackend::fs(&dir.path().join("blobs")).unwrap());
    let (sqlite, catalog, on_postgres) = runtime.block_on(async {
        let catalog = Arc::new(SqliteCatalog::open(&dir.path().join("catalog.db")).await.unwrap());
        let sqlite = Store::from_parts(backend.clone(), catalog.clone(), "tester");
        let config = Config {
            catalog_url: Some(postgres.url().to_owned()),
            ..Config::embedded(dir.path().join("pg"))
        };
        (
            sqlite,
            catalog,
            Store::open(&config).await.unwrap().with_actor("tester"),
        )
    });

    let stored = RefCell::new(Vec::new());
    let mut runner = TestRunner::new(RunnerConfig {
        cases: CASES,
        failure_persistence: None,
        ..RunnerConfig::default()
    });
    runner
        .run(&input(), |input| {
            // A key of its own for every case, shrinking included.
            let key = format!("case{}/{}", stored.borrow().len(), input.key);
            runtime.block_on(async {
                for store in [&sqlite, &on_postgres] {
                    let version = store_input(store, &key, &input).await;
                    holds(&version, &key, &input);
                    found_by_each_word(store, &version, &input).await;
                }
            });
            stored.borrow_mut().push((key, input));
            Ok(())
        })
        .unwrap();

    let stored = stored.into_inner();
    runtime.block_on(async {
        let to = PostgresCatalog::connect(destination.url()).await.unwrap();
        coffer::catalog::migrate_catalog(&catalog, &to, &NoProgress)
            .await
            .unwrap();
        let migrated = Store::from_parts(backend, Arc::new(to), "tester");
        for (key, input) in &stored {
            let version = migrated.head(key, None).await.unwrap();
            assert_eq!(version, sqlite.head(key, None).await.unwrap());
            holds(&version, key, input);
            found_by_each_word(&migrated, &version, input).await;
        }
        for store in [&sqlite, &on_postgres, &migrated] {
            assert!(store.check_consistency().await.unwrap().is_empty());
        }
    });
}
