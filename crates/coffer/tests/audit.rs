//! The audit log at scale on `Store`: export as JSON Lines, retention and
//! purge, and read auditing.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::time::Duration;

use coffer::catalog::{NewVersion, Precondition};
use coffer::{
    AuditEntry, AuditQuery, ByteRange, ErrorKind, GetOptions, Metadata, ObjectKey, PutOptions, Store, Tags, Timestamp,
    VersionContent, VersionId,
};
use serde_json::Value;

#[macro_use]
mod common;

use common::Fixture;

on_both_catalogs!(
    export_writes_the_matching_rows_oldest_first_as_json_lines,
    export_streams_thousands_of_rows_in_pages,
    export_replaces_a_file_only_once_complete,
    purge_is_refused_without_a_retention_or_past_it,
    purge_removes_rows_older_than_the_retention_and_is_audited,
    reads_are_audited_only_when_asked,
);

const SEVEN_YEARS: Duration = Duration::from_secs(7 * 31_557_600);

async fn put(store: &Store, key: &str, content: &str) -> coffer::ObjectVersion {
    store
        .put_bytes(key, content.to_owned(), PutOptions::default())
        .await
        .unwrap()
}

/// Every audit row, oldest first.
async fn all_rows(store: &Store) -> Vec<AuditEntry> {
    store
        .audit(&AuditQuery {
            oldest_first: true,
            limit: 100_000,
            ..AuditQuery::default()
        })
        .await
        .unwrap()
}

/// A delete marker of `key` made at `at`, recorded straight in the catalog:
/// the way to get audit rows older than the retention.
async fn old_change(store: &Store, key: &str, at: &str) {
    let version = NewVersion {
        key: ObjectKey::new(key).unwrap(),
        version_id: VersionId::generate(),
        content: VersionContent::DeleteMarker,
        content_type: None,
        metadata: Metadata::new(),
        created_at: Timestamp::parse(at).unwrap(),
        created_by: "archivist".into(),
        precondition: Precondition::None,
        action: "delete",
        audit_detail: Value::Null,
        tags: Tags::new(),
        comments: Vec::new(),
        retention: None,
        legal_hold: false,
    };
    store.catalog().commit_version(version).await.unwrap();
}

/// The lines of a JSON Lines file, parsed.
fn lines(path: &std::path::Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(
        text.is_empty() || text.ends_with('\n'),
        "every line ends with a newline"
    );
    text.lines().map(|line| serde_json::from_str(line).unwrap()).collect()
}

fn as_json(rows: &[AuditEntry]) -> Vec<Value> {
    rows.iter().map(|row| serde_json::to_value(row).unwrap()).collect()
}

async fn export_writes_the_matching_rows_oldest_first_as_json_lines(f: Fixture) {
    let (alice, bob) = (f.store.with_actor("alice"), f.store.with_actor("bob"));
    put(&alice, "docs/a", "1").await;
    put(&bob, "docs/b", "2").await;
    put(&alice, "other/c", "3").await;
    alice.delete("docs/a").await.unwrap();
    let file = f.dir.path().join("audit.jsonl");

    let written = f.store.export_audit(&AuditQuery::default(), &file).await.unwrap();
    assert_eq!(written, 4);
    let exported = lines(&file);
    assert_eq!(exported, as_json(&all_rows(&f.store).await), "every row, oldest first");
    let first = exported[0].as_object().unwrap();
    let mut fields: Vec<&str> = first.keys().map(String::as_str).collect();
    fields.sort_unstable();
    assert_eq!(fields, ["action", "actor", "at", "detail", "id", "key", "version_id"]);
    assert!(
        Timestamp::parse(first["at"].as_str().unwrap()).is_ok(),
        "at is RFC 3339"
    );

    // Filters apply, and a limit keeps the rows `audit` shows: the newest.
    let by_alice = AuditQuery {
        actor: Some("alice".into()),
        ..AuditQuery::default()
    };
    assert_eq!(f.store.export_audit(&by_alice, &file).await.unwrap(), 3);
    let actions: Vec<String> = lines(&file)
        .iter()
        .map(|r| r["action"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(actions, ["put", "put", "delete"]);
    let docs = AuditQuery {
        prefix: Some("docs/".into()),
        limit: 2,
        ..AuditQuery::default()
    };
    assert_eq!(f.store.export_audit(&docs, &file).await.unwrap(), 2);
    let keys: Vec<Value> = lines(&file).iter().map(|r| r["key"].clone()).collect();
    assert_eq!(keys, ["docs/b", "docs/a"]);

    // Nothing matches: an empty file.
    let nobody = AuditQuery {
        actor: Some("nobody".into()),
        ..AuditQuery::default()
    };
    assert_eq!(f.store.export_audit(&nobody, &file).await.unwrap(), 0);
    assert_eq!(std::fs::read(&file).unwrap(), b"");
}

async fn export_streams_thousands_of_rows_in_pages(f: Fixture) {
    let v = put(&f.store, "k", "content").await;
    let reads = (0..2500).map(|i| {
        f.store
            .catalog()
            .record_read(&v.key, &v.version_id, "reader", serde_json::json!({ "n": i }))
    });
    for read in futures::future::join_all(reads).await {
        read.unwrap();
    }
    let file = f.dir.path().join("all.jsonl");
    assert_eq!(f.store.export_audit(&AuditQuery::default(), &file).await.unwrap(), 2501);
    let ids: Vec<i64> = lines(&file).iter().map(|r| r["id"].as_i64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ascending ids, none twice");
    assert_eq!(ids.len(), 2501);

    let newest = AuditQuery {
        action: Some("get".into()),
        limit: 1500,
        ..AuditQuery::default()
    };
    assert_eq!(f.store.export_audit(&newest, &file).await.unwrap(), 1500);
    let exported = lines(&file);
    let mut shown = as_json(&f.store.audit(&newest).await.unwrap());
    shown.reverse();
    assert_eq!(exported, shown, "the rows `audit` shows with that limit, oldest first");
}

async fn export_replaces_a_file_only_once_complete(f: Fixture) {
    put(&f.store, "k", "content").await;
    let file = f.dir.path().join("audit.jsonl");
    std::fs::write(&file, "earlier export\n").unwrap();
    assert_eq!(f.store.export_audit(&AuditQuery::default(), &file).await.unwrap(), 1);
    assert_eq!(lines(&file).len(), 1);
    let names: Vec<String> = std::fs::read_dir(f.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.contains("audit"))
        .collect();
    assert_eq!(names, ["audit.jsonl"], "no temporary file is left beside it");

    let nowhere = f.dir.path().join("missing-dir/audit.jsonl");
    let err = f
        .store
        .export_audit(&AuditQuery::default(), &nowhere)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Io, "{err}");
    assert!(!f.dir.path().join("missing-dir").exists());
}

async fn purge_is_refused_without_a_retention_or_past_it(f: Fixture) {
    old_change(&f.store, "old", "2001-01-01T00:00:00Z").await;
    let err = f.store.purge_audit(None, false).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.message().contains("audit_retention"), "{err}");

    let store = f.store.with_audit_retention(Some(SEVEN_YEARS));
    let too_late = Timestamp::parse_human("365d").unwrap();
    let err = store.purge_audit(Some(too_late), false).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.message().contains("retention of 7y "), "{err}");
    assert_eq!(all_rows(&store).await.len(), 1, "refused purges change nothing");
}

async fn purge_removes_rows_older_than_the_retention_and_is_audited(f: Fixture) {
    let store = f
        .store
        .with_audit_retention(Some(SEVEN_YEARS))
        .with_actor("records-officer");
    old_change(&store, "ancient", "2001-01-01T00:00:00Z").await;
    old_change(&store, "old", "2010-01-01T00:00:00Z").await;
    put(&store, "recent", "kept").await;

    let dry = store.purge_audit(None, true).await.unwrap();
    assert_eq!((dry.removed, dry.dry_run, dry.retention.as_str()), (2, true, "7y"));
    assert_eq!(all_rows(&store).await.len(), 3, "a dry run removes nothing");

    // An earlier cutoff removes less.
    let cutoff = Timestamp::parse("2005-01-01T00:00:00Z").unwrap();
    let report = store.purge_audit(Some(cutoff), false).await.unwrap();
    assert_eq!((report.removed, report.before), (1, cutoff));
    let keys = |rows: &[AuditEntry]| {
        rows.iter()
            .map(|r| r.key.clone().unwrap_or_default())
            .collect::<Vec<_>>()
    };
    assert_eq!(keys(&all_rows(&store).await), ["old", "recent", ""]);

    let report = store.purge_audit(None, false).await.unwrap();
    assert_eq!(report.removed, 1);
    let left = all_rows(&store).await;
    assert_eq!(keys(&left), ["recent", "", ""]);
    let purges: Vec<&AuditEntry> = left.iter().filter(|r| r.action == "audit_purge").collect();
    assert_eq!(purges.len(), 2);
    let last = purges[1];
    assert_eq!(last.actor, "records-officer");
    assert_eq!(last.detail["removed"], 1);
    assert_eq!(last.detail["retention"], "7y");
    assert_eq!(last.detail["before"], report.before.to_string());
    let expected_cutoff = Timestamp::now().as_micros() - SEVEN_YEARS.as_micros() as i64;
    assert!(
        (report.before.as_micros() - expected_cutoff).abs() < 60_000_000,
        "now minus the retention"
    );
}

async fn reads_are_audited_only_when_asked(f: Fixture) {
    let v1 = put(&f.store, "doc.txt", "first version").await;
    put(&f.store, "doc.txt", "second version").await;
    f.store.get_bytes("doc.txt", None).await.unwrap();
    assert!(
        all_rows(&f.store).await.iter().all(|r| r.action == "put"),
        "off by default"
    );
    assert!(!f.store.info().await.unwrap().audit_reads);

    let store = f.store.with_audit_reads(true).with_actor("reader");
    assert!(store.info().await.unwrap().audit_reads);
    store.get_bytes("doc.txt", None).await.unwrap();
    store.get_bytes("doc.txt", Some(&v1.version_id)).await.unwrap();
    let ranged = GetOptions {
        range: Some(ByteRange::Inclusive { first: 0, last: 4 }),
        ..GetOptions::default()
    };
    store.get("doc.txt", ranged).await.unwrap();
    assert_eq!(
        store.get_bytes("missing.txt", None).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );

    let reads = store
        .audit(&AuditQuery {
            action: Some("get".into()),
            oldest_first: true,
            limit: 10,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    let seen: Vec<(&str, Option<&str>, Value)> = reads
        .iter()
        .map(|r| (r.actor.as_str(), r.key.as_deref(), r.detail.clone()))
        .collect();
    assert_eq!(
        seen,
        [
            ("reader", Some("doc.txt"), serde_json::json!({ "size": 14 })),
            ("reader", Some("doc.txt"), serde_json::json!({ "size": 13 })),
            (
                "reader",
                Some("doc.txt"),
                serde_json::json!({ "size": 14, "range": "0-4" })
            ),
        ]
    );
    assert_eq!(reads[1].version_id.as_deref(), Some(v1.version_id.as_str()));
}
