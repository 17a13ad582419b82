//! Version management and integrity on `Store`: history, rollback, compare,
//! tags, comments, prune, audit, verify, reindex, import and export.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::sync::Arc;
use std::time::Duration;

use coffer::catalog::{CatalogLocation, SqliteCatalog};
use coffer::{
    AuditQuery, Config, CopyOptions, ErrorKind, ExportOptions, ImportOptions, Metadata, ObjectVersion, PrunePolicy,
    PutOptions, Store, Tags, TextDiff, Timestamp, VerifyOptions, VersionId,
};
use futures::TryStreamExt;

mod common;

use common::{Fixture, fs_store, memory_store, pg_store};

/// Run a scenario against a store on each backend, and on local disk with a PostgreSQL catalog.
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
    history_shows_size_changes_tags_and_comments,
    rollback_references_the_old_blob_and_records_why,
    compare_reports_what_differs,
    tags_and_comments_are_validated_and_kept_in_manifests,
    prune_keeps_the_latest_the_newest_and_the_tagged,
    max_versions_prunes_after_each_put,
    every_change_is_audited_and_filterable,
    verify_finds_damage_and_orphans_and_repair_cleans_up,
    reindex_rebuilds_the_catalog_from_manifests,
);

async fn put(store: &Store, key: &str, content: &str) -> ObjectVersion {
    store
        .put_bytes(key, content.to_owned(), PutOptions::default())
        .await
        .unwrap()
}

fn tags(pairs: &[(&str, &str)]) -> Tags {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

async fn read(store: &Store, key: &str, version: Option<&VersionId>) -> String {
    String::from_utf8(store.get_bytes(key, version).await.unwrap().1.to_vec()).unwrap()
}

async fn history_shows_size_changes_tags_and_comments(f: &Fixture) {
    let s = &f.store;
    let v1 = put(s, "h.txt", "0123456789").await;
    s.tag("h.txt", &v1.version_id, tags(&[("qc", "ok")]), &[])
        .await
        .unwrap();
    s.with_actor("qc")
        .comment("h.txt", &v1.version_id, "first")
        .await
        .unwrap();
    put(s, "h.txt", "0123").await;
    s.delete("h.txt").await.unwrap();
    put(s, "h.txt", "abc").await;

    let history = s.history("h.txt", None).await.unwrap();
    let changes: Vec<i64> = history.iter().map(|e| e.size_change).collect();
    assert_eq!(
        changes,
        [3, -4, -6, 10],
        "newest first; a delete marker counts as 0 bytes"
    );
    assert!(history[0].version.is_latest && history[1].version.is_delete_marker);
    let oldest = &history[3].version;
    assert_eq!(oldest.tags, tags(&[("qc", "ok")]));
    assert_eq!(oldest.comments.len(), 1);
    assert_eq!(
        (oldest.comments[0].actor.as_str(), oldest.comments[0].text.as_str()),
        ("qc", "first")
    );

    let limited = s.history("h.txt", Some(2)).await.unwrap();
    assert_eq!(limited.len(), 2);
    assert_eq!(
        limited[1].size_change, -4,
        "the oldest shown still compares with the one before it"
    );
    assert_eq!(s.history("nope", None).await.unwrap_err().kind(), ErrorKind::NotFound);
}

async fn rollback_references_the_old_blob_and_records_why(f: &Fixture) {
    let s = &f.store;
    let v1 = s
        .put_bytes(
            "r.pdf",
            "good",
            PutOptions {
                metadata: Metadata::from([("doc".to_string(), "invoice".to_string())]),
                ..PutOptions::default()
            },
        )
        .await
        .unwrap();
    put(s, "r.pdf", "bad").await;
    let blobs_before = s.info().await.unwrap().stats.blobs;

    let operator = s.with_actor("operator1");
    let rolled = operator
        .rollback("r.pdf", &v1.version_id, Some("Reverting incorrect changes"))
        .await
        .unwrap();
    assert!(rolled.is_latest && rolled.version_id > v1.version_id);
    assert_eq!(rolled.blob_path, v1.blob_path, "the old blob is referenced, not copied");
    assert_eq!(s.info().await.unwrap().stats.blobs, blobs_before);
    assert_eq!(rolled.metadata, v1.metadata);
    assert_eq!(rolled.created_by, "operator1");
    assert_eq!(rolled.comments[0].text, "Reverting incorrect changes");
    assert_eq!(read(s, "r.pdf", None).await, "good");
    let audit = s
        .audit(&AuditQuery {
            action: Some("rollback".into()),
            limit: 5,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].actor, "operator1");
    assert_eq!(audit[0].detail["rolled_back_to"], v1.version_id.to_string());

    let marker = s.delete("r.pdf").await.unwrap();
    let err = s.rollback("r.pdf", &marker.version_id, None).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.message().contains("delete marker"), "{err}");
    let missing = VersionId::generate();
    assert_eq!(
        s.rollback("r.pdf", &missing, None).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert_eq!(
        s.versions("r.pdf").await.unwrap().len(),
        4,
        "failed rollbacks change nothing"
    );
}

async fn compare_reports_what_differs(f: &Fixture) {
    let s = &f.store;
    let options = |team: &str| PutOptions {
        metadata: Metadata::from([("team".to_string(), team.to_string())]),
        ..PutOptions::default()
    };
    let a = s.put_bytes("c.txt", "one\ntwo\nthree\n", options("a")).await.unwrap();
    let b = s
        .put_bytes("c.txt", "one\n2\nthree\nfour\n", options("b"))
        .await
        .unwrap();
    s.tag("c.txt", &b.version_id, tags(&[("qc", "approved")]), &[])
        .await
        .unwrap();

    let diff = s.compare("c.txt", &a.version_id, &b.version_id).await.unwrap();
    assert!(!diff.same_content);
    assert_eq!(diff.size_change, 3);
    assert_eq!(diff.metadata["team"].before.as_deref(), Some("a"));
    assert_eq!(diff.metadata["team"].after.as_deref(), Some("b"));
    assert_eq!(diff.tags["qc"].before, None);
    let TextDiff::Unified(text) = &diff.text_diff else {
        panic!("text versions get a diff: {:?}", diff.text_diff)
    };
    assert!(
        text.contains("-two\n") && text.contains("+2\n") && text.contains("+four\n"),
        "{text}"
    );

    let c = s.copy("c.txt", "c.txt", CopyOptions::default()).await.unwrap();
    let same = s.compare("c.txt", &b.version_id, &c.version_id).await.unwrap();
    assert!(same.same_content && same.size_change == 0);

    s.put_bytes("bin", vec![0u8, 159, 146, 150], PutOptions::default())
        .await
        .unwrap();
    let versions = s.versions("bin").await.unwrap();
    let bin2 = s
        .put_bytes("bin", vec![1u8, 0, 2], PutOptions::default())
        .await
        .unwrap();
    let binary = s
        .compare("bin", &versions[0].version_id, &bin2.version_id)
        .await
        .unwrap();
    assert!(matches!(binary.text_diff, TextDiff::Skipped(_)));

    let missing = VersionId::generate();
    assert_eq!(
        s.compare("c.txt", &a.version_id, &missing).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
}

async fn tags_and_comments_are_validated_and_kept_in_manifests(f: &Fixture) {
    let s = &f.store;
    let v = put(s, "t.txt", "x").await;
    let id = &v.version_id;
    let tagged = s
        .tag(
            "t.txt",
            id,
            tags(&[("qc_status", "approved"), ("batch_id", "batch_001")]),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(tagged.tags.len(), 2);
    let tagged = s
        .tag("t.txt", id, tags(&[("qc_status", "rejected")]), &["batch_id".into()])
        .await
        .unwrap();
    assert_eq!(tagged.tags, tags(&[("qc_status", "rejected")]));

    for bad in [
        tags(&[("bad name", "1")]),
        tags(&[("", "1")]),
        tags(&[("ok", "line\nbreak")]),
    ] {
        let err = s.tag("t.txt", id, bad, &[]).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    }
    let too_many: Tags = (0..51).map(|i| (format!("t{i}"), "v".to_string())).collect();
    assert_eq!(
        s.tag("t.txt", id, too_many, &[]).await.unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
    assert_eq!(
        s.comment("t.txt", id, "  ").await.unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
    let missing = VersionId::generate();
    assert_eq!(
        s.comment("t.txt", &missing, "hi").await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    let unchanged = s.head("t.txt", Some(id)).await.unwrap();
    assert_eq!(
        unchanged.tags,
        tags(&[("qc_status", "rejected")]),
        "refused changes change nothing"
    );
    assert!(unchanged.comments.is_empty());

    s.with_actor("qc_supervisor")
        .comment("t.txt", id, "Initial upload after QC approval")
        .await
        .unwrap();
    let v = s.with_actor("auditor").comment("t.txt", id, "Checked").await.unwrap();
    let texts: Vec<(&str, &str)> = v.comments.iter().map(|c| (c.actor.as_str(), c.text.as_str())).collect();
    assert_eq!(
        texts,
        [
            ("qc_supervisor", "Initial upload after QC approval"),
            ("auditor", "Checked")
        ]
    );
    assert_eq!(s.versions("t.txt").await.unwrap()[0].comments, v.comments);

    // The manifest follows, so reindex can bring them back.
    let manifests: Vec<String> = s
        .backend()
        .list("manifests/")
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    let chunks: Vec<bytes::Bytes> = s
        .backend()
        .read(&manifests[0], None)
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    let manifest: coffer::layout::Manifest = serde_json::from_slice(&chunks.concat()).unwrap();
    assert_eq!(manifest.tags, v.tags);
    assert_eq!(manifest.comments, v.comments);
}

async fn prune_keeps_the_latest_the_newest_and_the_tagged(f: &Fixture) {
    let s = &f.store;
    let mut ids = Vec::new();
    for content in ["v1", "v2", "v1", "v4", "v5", "v6"] {
        ids.push(put(s, "p.txt", content).await.version_id);
    }
    s.tag("p.txt", &ids[1], tags(&[("keep", "yes")]), &[]).await.unwrap();
    let policy = PrunePolicy {
        keep: 2,
        keep_tagged: true,
    };

    let dry = s.prune("p.txt", policy, true).await.unwrap();
    assert!(dry.dry_run);
    let doomed: Vec<&VersionId> = dry.removed.iter().map(|v| &v.version_id).collect();
    assert_eq!(doomed, [&ids[3], &ids[2], &ids[0]]);
    assert_eq!(dry.blobs_freed, 2, "v4 and v1 (both of its versions go)");
    assert_eq!(s.versions("p.txt").await.unwrap().len(), 6, "a dry run removes nothing");

    let report = s.prune("p.txt", policy, false).await.unwrap();
    assert_eq!(report.removed.len(), 3);
    let left: Vec<VersionId> = s
        .versions("p.txt")
        .await
        .unwrap()
        .into_iter()
        .map(|v| v.version_id)
        .collect();
    assert_eq!(left, [ids[5].clone(), ids[4].clone(), ids[1].clone()]);
    assert_eq!(read(s, "p.txt", Some(&ids[1])).await, "v2");
    assert!(s.check_consistency().await.unwrap().is_empty());
    assert_eq!(s.info().await.unwrap().stats.blobs, 3);

    let err = s
        .prune(
            "p.txt",
            PrunePolicy {
                keep: 0,
                keep_tagged: false,
            },
            false,
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.message().contains("latest"), "{err}");
    assert_eq!(s.versions("p.txt").await.unwrap().len(), 3);

    // A shared blob outlives the pruned version that referenced it.
    put(s, "q/a", "shared").await;
    s.copy("q/a", "q/b", CopyOptions::default()).await.unwrap();
    put(s, "q/a", "newer").await;
    s.delete("q/b").await.unwrap();
    let report = s
        .prune_prefix(
            "q/",
            PrunePolicy {
                keep: 1,
                keep_tagged: false,
            },
            false,
        )
        .await
        .unwrap();
    assert_eq!(
        report.removed.len(),
        2,
        "one old version of each key, the deleted key included"
    );
    assert_eq!(report.blobs_freed, 1);
    assert_eq!(
        s.versions("q/b").await.unwrap().len(),
        1,
        "the delete marker stays as the latest"
    );
    assert!(s.check_consistency().await.unwrap().is_empty());
}

async fn max_versions_prunes_after_each_put(f: &Fixture) {
    let s = f.store.with_max_versions(Some(3));
    let first = put(&s, "m", "0").await;
    s.tag("m", &first.version_id, tags(&[("release", "1.0")]), &[])
        .await
        .unwrap();
    for i in 1..6 {
        put(&s, "m", &i.to_string()).await;
    }
    let versions = s.versions("m").await.unwrap();
    let contents: Vec<String> =
        futures::future::join_all(versions.iter().map(|v| read(&s, "m", Some(&v.version_id)))).await;
    assert_eq!(contents, ["5", "4", "3", "0"], "the three newest and the tagged one");
    let pruned = s
        .audit(&AuditQuery {
            action: Some("prune".into()),
            limit: 10,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(pruned.len(), 2);
}

async fn every_change_is_audited_and_filterable(f: &Fixture) {
    let s = &f.store;
    let start = Timestamp::now();
    let alice = s.with_actor("alice");
    let bob = s.with_actor("bob");
    let v1 = put(&alice, "docs/a", "1").await;
    put(&alice, "docs/a", "2").await;
    bob.copy("docs/a", "other/b", CopyOptions::default()).await.unwrap();
    bob.rollback("docs/a", &v1.version_id, Some("why")).await.unwrap();
    bob.tag("docs/a", &v1.version_id, tags(&[("k", "v")]), &[])
        .await
        .unwrap();
    alice.comment("docs/a", &v1.version_id, "note").await.unwrap();
    let policy = PrunePolicy {
        keep: 2,
        keep_tagged: false,
    };
    alice.prune("docs/a", policy, false).await.unwrap();
    alice.delete("docs/a").await.unwrap();

    let query = |q: AuditQuery| async move {
        let rows = s.audit(&AuditQuery { limit: 100, ..q }).await.unwrap();
        rows.into_iter().rev().map(|r| r.action).collect::<Vec<_>>()
    };
    assert_eq!(
        query(AuditQuery::default()).await,
        ["put", "put", "copy", "rollback", "tag", "comment", "prune", "delete"]
    );
    let by_bob = query(AuditQuery {
        actor: Some("bob".into()),
        ..AuditQuery::default()
    })
    .await;
    assert_eq!(by_bob, ["copy", "rollback", "tag"]);
    let under_other = query(AuditQuery {
        prefix: Some("other/".into()),
        ..AuditQuery::default()
    })
    .await;
    assert_eq!(under_other, ["copy"]);
    let puts = query(AuditQuery {
        key: Some("docs/a".try_into().unwrap()),
        action: Some("put".into()),
        ..AuditQuery::default()
    })
    .await;
    assert_eq!(puts.len(), 2);
    let before_start = query(AuditQuery {
        until: Some(start),
        ..AuditQuery::default()
    })
    .await;
    assert!(before_start.is_empty());
    let since_start = query(AuditQuery {
        since: Some(start),
        ..AuditQuery::default()
    })
    .await;
    assert_eq!(since_start.len(), 8);
}

/// Replace the object at `path` on the backend.
async fn overwrite(store: &Store, path: &str, bytes: Vec<u8>) {
    let body: coffer::ByteStream = Box::pin(futures::stream::once(async move { Ok(bytes::Bytes::from(bytes)) }));
    store.backend().write(path, body).await.unwrap();
}

fn repair_now() -> VerifyOptions {
    VerifyOptions {
        repair: true,
        min_orphan_age: Duration::ZERO,
        ..VerifyOptions::default()
    }
}

async fn verify_finds_damage_and_orphans_and_repair_cleans_up(f: &Fixture) {
    let s = &f.store;
    let truncated = put(s, "v/truncated", "truncate me please").await;
    let flipped = put(s, "v/flipped", "flip my bytes").await;
    let missing = put(s, "v/missing", "i will vanish").await;
    let sound = put(s, "v/sound", "all good").await;
    s.copy("v/sound", "v/sound-copy", CopyOptions::default()).await.unwrap();
    // Damage on the backend, where the hot store's copies go first.
    s.flush_hot().await.unwrap();
    let check = VerifyOptions {
        min_orphan_age: Duration::ZERO,
        ..VerifyOptions::default()
    };
    let clean = s.verify(&check).await.unwrap();
    assert!(clean.is_clean(), "{:?}", clean.problems);
    assert_eq!((clean.versions, clean.blobs), (5, 4));

    overwrite(s, truncated.blob_path.as_ref().unwrap(), b"truncate".to_vec()).await;
    overwrite(s, flipped.blob_path.as_ref().unwrap(), b"flip mY bytes".to_vec()).await;
    s.backend().delete(missing.blob_path.as_ref().unwrap()).await.unwrap();
    let orphan = format!("blobs/ab/{}.{}", "ab".repeat(32), VersionId::generate());
    overwrite(s, &orphan, b"nobody's".to_vec()).await;

    let report = s.verify(&check).await.unwrap();
    let found: Vec<(&str, Vec<String>)> = {
        let mut found: Vec<_> = report
            .problems
            .iter()
            .map(|p| (p.kind, p.versions.iter().map(|(k, v)| format!("{k}@{v}")).collect()))
            .collect();
        found.sort();
        found
    };
    let at = |v: &ObjectVersion| vec![format!("{}@{}", v.key, v.version_id)];
    assert_eq!(
        found,
        [
            ("corrupt_blob", at(&flipped)),
            ("missing_blob", at(&missing)),
            ("orphan_blob", vec![]),
            ("truncated_blob", at(&truncated)),
        ]
    );
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.path.as_deref() == Some(orphan.as_str()))
    );
    // Young orphans may be uploads in flight: left alone by default.
    let cautious = s.verify(&VerifyOptions::default()).await.unwrap();
    assert_eq!((cautious.problems.len(), cautious.recent_unreferenced), (3, 1));

    let repaired = s.verify(&repair_now()).await.unwrap();
    assert!(repaired.problems.iter().all(|p| p.repaired));
    // Marked damaged, the three versions stay problems until healed or removed.
    let damaged_kinds =
        |report: &coffer::VerifyReport| -> Vec<&'static str> { report.problems.iter().map(|p| p.kind).collect() };
    let after = s.verify(&check).await.unwrap();
    assert_eq!(damaged_kinds(&after), ["damaged_blob"; 3], "{:?}", after.problems);
    assert!(!after.is_clean() && after.problems.iter().all(|p| !p.repaired));
    assert_eq!(
        read(s, "v/sound-copy", None).await,
        "all good",
        "referenced blobs are never removed"
    );
    assert!(
        s.backend()
            .stat(sound.blob_path.as_ref().unwrap())
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(s.backend().stat(&orphan).await.unwrap(), None);
    let err = s.get_bytes("v/flipped", None).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::IntegrityMismatch);
    assert!(err.message().contains("damaged"), "{err}");
    let audit = s
        .audit(&AuditQuery {
            action: Some("repair".into()),
            limit: 10,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(audit.len(), 4, "three marked versions and one removed orphan");

    // Storing the original content again heals every version that shares it.
    put(s, "v/again", "flip my bytes").await;
    assert_eq!(read(s, "v/flipped", Some(&flipped.version_id)).await, "flip my bytes");
    let healed = s.verify(&check).await.unwrap();
    assert_eq!(damaged_kinds(&healed), ["damaged_blob"; 2], "{healed:?}");
    // Removing the damaged versions ends their problems too.
    for (key, version_id) in healed.problems.iter().flat_map(|p| &p.versions) {
        s.delete_version(key, &version_id.parse().unwrap()).await.unwrap();
    }
    assert!(s.verify(&check).await.unwrap().is_clean());

    // A missing manifest is a problem reindex would suffer from; repair rewrites it.
    let manifests: Vec<String> = s
        .backend()
        .list("manifests/")
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    s.backend().delete(&manifests[0]).await.unwrap();
    let report = s.verify(&repair_now()).await.unwrap();
    assert_eq!(report.problems.len(), 1);
    assert_eq!(report.problems[0].kind, "missing_manifest");
    assert!(s.verify(&check).await.unwrap().is_clean());
    assert!(s.check_consistency().await.unwrap().is_empty());
}

async fn reindex_rebuilds_the_catalog_from_manifests(f: &Fixture) {
    let s = &f.store;
    let v1 = s
        .put_bytes(
            "inv/1.pdf",
            "one",
            PutOptions {
                metadata: Metadata::from([("doc_type".to_string(), "invoice".to_string())]),
                tags: tags(&[("batch", "b1")]),
                ..PutOptions::default()
            },
        )
        .await
        .unwrap();
    put(s, "inv/1.pdf", "one, again").await;
    s.rollback("inv/1.pdf", &v1.version_id, Some("back")).await.unwrap();
    s.tag("inv/1.pdf", &v1.version_id, tags(&[("qc", "ok")]), &[])
        .await
        .unwrap();
    s.with_actor("qc")
        .comment("inv/1.pdf", &v1.version_id, "looks right")
        .await
        .unwrap();
    put(s, "inv/2.pdf", "two").await;
    s.delete("inv/2.pdf").await.unwrap();
    s.copy("inv/1.pdf", "copies/1.pdf", CopyOptions::default())
        .await
        .unwrap();
    let gone = put(s, "inv/3.pdf", "three").await;
    s.delete_version("inv/3.pdf", &gone.version_id).await.unwrap();

    let fresh = SqliteCatalog::open(&f.dir.path().join("rebuilt.db")).await.unwrap();
    let report = s.reindex_into(&fresh).await.unwrap();
    assert_eq!((report.versions, report.keys), (6, 3), "{report:?}");
    assert!(report.skipped.is_empty(), "{:?}", report.skipped);

    let rebuilt = Store::from_parts(s.backend().clone(), Arc::new(fresh), "tester");
    for key in ["inv/1.pdf", "inv/2.pdf", "copies/1.pdf"] {
        assert_eq!(
            rebuilt.versions(key).await.unwrap(),
            s.versions(key).await.unwrap(),
            "{key}"
        );
    }
    assert_eq!(rebuilt.info().await.unwrap().stats, s.info().await.unwrap().stats);
    assert!(rebuilt.check_consistency().await.unwrap().is_empty());
    assert_eq!(read(&rebuilt, "inv/1.pdf", None).await, "one");

    let again = SqliteCatalog::open(&f.dir.path().join("rebuilt.db")).await.unwrap();
    let err = s.reindex_into(&again).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict, "reindex needs a fresh catalog");
}

#[tokio::test(flavor = "multi_thread")]
async fn import_and_export_a_tree() {
    let f = fs_store().await;
    let s = &f.store;
    let tree = f.dir.path().join("scans");
    std::fs::create_dir_all(tree.join("jan/week1")).unwrap();
    std::fs::write(tree.join("top.txt"), "top").unwrap();
    std::fs::write(tree.join("jan/a.bin"), vec![7u8; 3 << 20]).unwrap();
    std::fs::write(tree.join("jan/week1/b.txt"), "b").unwrap();
    std::os::unix::fs::symlink(tree.join("top.txt"), tree.join("link.txt")).unwrap();

    let report = s
        .import_dir(
            &tree,
            &ImportOptions {
                prefix: "scans/2024/".into(),
                jobs: 4,
                ..ImportOptions::default()
            },
        )
        .await
        .unwrap();
    assert_eq!((report.files, report.bytes), (3, (3 << 20) + 4));
    assert!(report.failed.is_empty());
    assert_eq!(report.skipped.len(), 1, "symbolic links are left out");
    assert_eq!(read(s, "scans/2024/jan/week1/b.txt", None).await, "b");
    let between = Timestamp::now();
    tokio::time::sleep(Duration::from_millis(5)).await;
    put(s, "scans/2024/top.txt", "top, edited").await;
    put(s, "scans/2024/later.txt", "added later").await;

    let out = f.dir.path().join("restore");
    let latest = s
        .export_dir(
            &out,
            &ExportOptions {
                prefix: "scans/2024/".into(),
                ..ExportOptions::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(latest.files, 4);
    assert_eq!(std::fs::read_to_string(out.join("top.txt")).unwrap(), "top, edited");
    assert_eq!(std::fs::read(out.join("jan/a.bin")).unwrap(), vec![7u8; 3 << 20]);

    let old = f.dir.path().join("as-of");
    let report = s
        .export_dir(
            &old,
            &ExportOptions {
                prefix: "scans/2024/".into(),
                as_of: Some(between),
                ..ExportOptions::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(report.files, 3);
    assert_eq!(std::fs::read_to_string(old.join("top.txt")).unwrap(), "top");
    assert!(!old.join("later.txt").exists(), "a key made after the time is left out");

    let missing = s
        .import_dir(&f.dir.path().join("nope"), &ImportOptions::default())
        .await
        .unwrap_err();
    assert_eq!(missing.kind(), ErrorKind::Io);
    let bad_prefix = ImportOptions {
        prefix: "../escape/".into(),
        ..ImportOptions::default()
    };
    let err = s.import_dir(&tree, &bad_prefix).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidKey);
    assert!(err.message().starts_with("invalid prefix"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn reindex_after_the_catalog_is_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config::embedded(dir.path().join("data"));
    let store = Store::open(&config).await.unwrap();
    let v = put(&store, "k", "content").await;
    store.tag("k", &v.version_id, tags(&[("a", "b")]), &[]).await.unwrap();
    let before = store.versions("k").await.unwrap();
    // What the hot store holds reaches the backend before the catalog is lost.
    store.flush_hot().await.unwrap();
    drop(store);
    let CatalogLocation::Sqlite(catalog) = config.catalog_location().unwrap() else {
        panic!("the embedded default is SQLite")
    };
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", catalog.display()));
    }
    // A store opened on the empty catalog sees nothing until it is rebuilt.
    let store = Store::open(&config).await.unwrap();
    assert_eq!(store.versions("k").await.unwrap_err().kind(), ErrorKind::NotFound);
    let rebuilt = SqliteCatalog::open(&dir.path().join("rebuilt.db")).await.unwrap();
    store.reindex_into(&rebuilt).await.unwrap();
    let store = Store::from_parts(store.backend().clone(), Arc::new(rebuilt), "tester");
    assert_eq!(store.versions("k").await.unwrap(), before);
}
