//! Property test of the versioning invariants: any sequence of put, copy,
//! delete, delete-version, rollback, tag and prune over a few keys leaves the
//! version lists, latest pointers, blob reference counts and stored bytes just
//! as a plain in-memory model of versions says.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use coffer::backend::OpendalBackend;
use coffer::catalog::SqliteCatalog;
use coffer::{CopyOptions, ErrorKind, PrunePolicy, PutOptions, Store, Tags, VersionId};
use futures::TryStreamExt;
use proptest::prelude::*;
use sha2::{Digest, Sha256};

const KEYS: [&str; 3] = ["a", "b/c", "d.txt"];
/// Few and overlapping, so contents are shared (deduplicated) between versions and keys.
const CONTENTS: [&str; 4] = ["", "x", "hello", "hello world"];

#[derive(Debug, Clone)]
enum Op {
    Put { key: usize, content: usize },
    Copy { from: usize, to: usize },
    Delete { key: usize },
    DeleteVersion { key: usize, nth: usize },
    Rollback { key: usize, nth: usize },
    Tag { key: usize, nth: usize },
    Prune { key: usize, keep: usize, keep_tagged: bool },
}

fn op() -> impl Strategy<Value = Op> {
    let key = 0..KEYS.len();
    prop_oneof![
        3 => (key.clone(), 0..CONTENTS.len()).prop_map(|(key, content)| Op::Put { key, content }),
        1 => (key.clone(), key.clone()).prop_map(|(from, to)| Op::Copy { from, to }),
        1 => key.clone().prop_map(|key| Op::Delete { key }),
        1 => (key.clone(), 0..8usize).prop_map(|(key, nth)| Op::DeleteVersion { key, nth }),
        1 => (key.clone(), 0..8usize).prop_map(|(key, nth)| Op::Rollback { key, nth }),
        1 => (key.clone(), 0..8usize).prop_map(|(key, nth)| Op::Tag { key, nth }),
        1 => (key, 1..4usize, any::<bool>()).prop_map(|(key, keep, keep_tagged)| Op::Prune { key, keep, keep_tagged }),
    ]
}

/// One version as the model knows it: `None` content is a delete marker.
#[derive(Debug, Clone)]
struct Version {
    id: VersionId,
    content: Option<usize>,
    tagged: bool,
}

/// Each key's versions, oldest first.
type Model = BTreeMap<usize, Vec<Version>>;

fn live_content(model: &Model, key: usize) -> Option<usize> {
    model
        .get(&key)
        .and_then(|versions| versions.last())
        .and_then(|v| v.content)
}

fn pick(model: &Model, key: usize, nth: usize) -> Option<Version> {
    let versions = model.get(&key).filter(|v| !v.is_empty())?;
    Some(versions[nth % versions.len()].clone())
}

fn sha256(content: usize) -> String {
    hex::encode(Sha256::digest(CONTENTS[content].as_bytes()))
}

async fn apply(store: &Store, model: &mut Model, op: &Op) {
    match *op {
        Op::Put { key, content } => {
            let v = store
                .put_bytes(KEYS[key], CONTENTS[content], PutOptions::default())
                .await
                .unwrap();
            model.entry(key).or_default().push(Version {
                id: v.version_id,
                content: Some(content),
                tagged: false,
            });
        }
        Op::Copy { from, to } => {
            let copied = store.copy(KEYS[from], KEYS[to], CopyOptions::default()).await;
            match live_content(model, from) {
                Some(content) => model.entry(to).or_default().push(Version {
                    id: copied.unwrap().version_id,
                    content: Some(content),
                    tagged: false,
                }),
                None => assert_eq!(copied.unwrap_err().kind(), ErrorKind::NotFound),
            }
        }
        Op::Delete { key } => {
            let deleted = store.delete(KEYS[key]).await;
            match live_content(model, key) {
                Some(_) => model.entry(key).or_default().push(Version {
                    id: deleted.unwrap().version_id,
                    content: None,
                    tagged: false,
                }),
                None => assert_eq!(deleted.unwrap_err().kind(), ErrorKind::NotFound),
            }
        }
        Op::DeleteVersion { key, nth } => {
            if let Some(target) = pick(model, key, nth) {
                store.delete_version(KEYS[key], &target.id).await.unwrap();
                model.entry(key).or_default().retain(|v| v.id != target.id);
            }
        }
        Op::Rollback { key, nth } => {
            if let Some(target) = pick(model, key, nth) {
                let rolled = store.rollback(KEYS[key], &target.id, Some("prop")).await;
                match target.content {
                    Some(content) => model.entry(key).or_default().push(Version {
                        id: rolled.unwrap().version_id,
                        content: Some(content),
                        tagged: false,
                    }),
                    None => assert_eq!(rolled.unwrap_err().kind(), ErrorKind::InvalidInput),
                }
            }
        }
        Op::Tag { key, nth } => {
            if let Some(target) = pick(model, key, nth) {
                let tags = Tags::from([("keep".to_string(), "yes".to_string())]);
                let tagged = store.tag(KEYS[key], &target.id, tags, &[]).await;
                if target.content.is_none() {
                    // A delete marker cannot be tagged: refused, nothing changes.
                    assert_eq!(tagged.unwrap_err().kind(), ErrorKind::InvalidInput);
                    return;
                }
                tagged.unwrap();
                for v in model.entry(key).or_default().iter_mut().filter(|v| v.id == target.id) {
                    v.tagged = true;
                }
            }
        }
        Op::Prune { key, keep, keep_tagged } => {
            let policy = PrunePolicy { keep, keep_tagged };
            let pruned = store.prune(KEYS[key], policy, false).await;
            let versions = model.entry(key).or_default();
            if versions.is_empty() {
                assert_eq!(pruned.unwrap_err().kind(), ErrorKind::NotFound);
                return;
            }
            let newest_first: Vec<Version> = versions.iter().rev().cloned().collect();
            let kept: BTreeSet<VersionId> = newest_first
                .iter()
                .enumerate()
                .filter(|(i, v)| *i < keep || (keep_tagged && v.tagged))
                .map(|(_, v)| v.id.clone())
                .collect();
            assert_eq!(pruned.unwrap().removed.len(), versions.len() - kept.len());
            versions.retain(|v| kept.contains(&v.id));
        }
    }
}

async fn check(store: &Store, model: &Model) {
    let mut references: BTreeMap<String, u64> = BTreeMap::new();
    let mut version_count = 0;
    for (key, name) in KEYS.iter().enumerate() {
        let expected: Vec<&Version> = model.get(&key).map(|v| v.iter().rev().collect()).unwrap_or_default();
        let actual = match store.versions(name).await {
            Ok(versions) => versions,
            Err(e) if e.kind() == ErrorKind::NotFound => Vec::new(),
            Err(e) => panic!("{e}"),
        };
        let ids: Vec<&VersionId> = actual.iter().map(|v| &v.version_id).collect();
        let expected_ids: Vec<&VersionId> = expected.iter().map(|v| &v.id).collect();
        assert_eq!(ids, expected_ids, "versions of {name}");
        for (i, (got, want)) in actual.iter().zip(&expected).enumerate() {
            assert_eq!(got.is_latest, i == 0, "latest pointer of {name}");
            assert_eq!(got.is_delete_marker, want.content.is_none());
            assert_eq!(got.sha256, want.content.map(sha256));
            assert_eq!(!got.tags.is_empty(), want.tagged);
            if let Some(content) = want.content {
                *references.entry(sha256(content)).or_default() += 1;
                let (_, bytes) = store.get_bytes(name, Some(&got.version_id)).await.unwrap();
                assert_eq!(
                    bytes,
                    CONTENTS[content].as_bytes(),
                    "bytes of {name} {}",
                    got.version_id
                );
            }
        }
        version_count += expected.len();
    }
    let refcounts: BTreeMap<String, u64> = store
        .catalog()
        .blobs()
        .await
        .unwrap()
        .into_iter()
        .map(|b| (b.sha256, b.refcount))
        .collect();
    assert_eq!(refcounts, references, "blob reference counts");
    store.flush_hot().await.unwrap();
    let list = |prefix: &'static str| async move {
        let paths: Vec<String> = store.backend().list(prefix).await.unwrap().try_collect().await.unwrap();
        paths.len()
    };
    assert_eq!(
        list("blobs/").await,
        references.len(),
        "one stored blob per referenced content"
    );
    assert_eq!(list("manifests/").await, version_count, "one manifest per version");
    assert!(store.check_consistency().await.unwrap().is_empty());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn versioning_matches_a_simple_model(ops in proptest::collection::vec(op(), 1..50)) {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        runtime.block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let catalog = SqliteCatalog::open(&dir.path().join("catalog.db")).await.unwrap();
            let store = Store::from_parts(Arc::new(OpendalBackend::memory().unwrap()), Arc::new(catalog), "prop");
            let mut model = Model::new();
            for op in &ops {
                apply(&store, &mut model, op).await;
            }
            check(&store, &model).await;
        });
    }
}
