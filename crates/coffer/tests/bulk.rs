//! Work on many keys at once on `Store`: delete under a prefix, undelete,
//! listings of every version and of deleted keys, the newest N versions, and
//! the audit actions all of these record. On SQLite and on PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::sync::{Arc, Mutex};

use coffer::events::{Event, EventFilter};
use coffer::{AUDIT_ACTIONS, AuditQuery, ErrorKind, ListOptions, PutOptions, Store};

#[macro_use]
mod common;

use common::Fixture;

on_both_catalogs!(
    delete_prefix_hides_every_live_key_under_it_and_a_dry_run_nothing,
    undelete_brings_back_the_newest_content_like_a_rollback,
    listings_show_every_version_or_only_deleted_keys_a_page_at_a_time,
    every_recorded_audit_action_is_one_the_filter_accepts,
);

async fn put(store: &Store, key: &str, content: &str) -> coffer::ObjectVersion {
    store
        .put_bytes(key, content.to_owned(), PutOptions::default())
        .await
        .unwrap()
}

fn keys(versions: &[coffer::ObjectVersion]) -> Vec<&str> {
    versions.iter().map(|v| v.key.as_str()).collect()
}

fn all(prefix: &str, max_keys: usize) -> ListOptions {
    ListOptions {
        prefix: prefix.to_owned(),
        max_keys,
        ..ListOptions::default()
    }
}

async fn delete_prefix_hides_every_live_key_under_it_and_a_dry_run_nothing(f: Fixture) {
    let store = &f.store;
    for key in ["scans/a", "scans/b", "scans/c/d", "scansion", "other/x"] {
        put(store, key, key).await;
    }
    store.delete("scans/b").await.unwrap();
    let before = store.info().await.unwrap().stats;

    let dry = store.delete_prefix("scans/", true).await.unwrap();
    assert!(dry.dry_run);
    assert_eq!(keys(&dry.deleted), ["scans/a", "scans/c/d"], "live keys only");
    assert!(dry.deleted.iter().all(|v| !v.is_delete_marker));
    assert_eq!(store.info().await.unwrap().stats, before, "a dry run changes nothing");

    let done = store.delete_prefix("scans/", false).await.unwrap();
    assert_eq!(keys(&done.deleted), ["scans/a", "scans/c/d"]);
    assert!(done.deleted.iter().all(|v| v.is_delete_marker));
    let live = store.list(&all("", 100)).await.unwrap();
    assert_eq!(keys(&live.objects), ["other/x", "scansion"]);
    assert_eq!(
        store.versions("scans/a").await.unwrap().len(),
        2,
        "versions stay behind the marker"
    );

    let empty = store.delete_prefix("", false).await.unwrap_err();
    assert_eq!(empty.kind(), ErrorKind::InvalidInput);
    assert_eq!(store.list(&all("", 100)).await.unwrap().objects.len(), 2);
    let nothing = store.delete_prefix("nothing/", false).await.unwrap();
    assert!(nothing.deleted.is_empty());
}

async fn undelete_brings_back_the_newest_content_like_a_rollback(f: Fixture) {
    let store = &f.store;
    let seen = Arc::new(Mutex::new(Vec::<Event>::new()));
    let sink = seen.clone();
    store
        .on_event("watch", EventFilter::default(), true, move |event| {
            let sink = sink.clone();
            async move {
                sink.lock().unwrap().push(event);
                Ok(())
            }
        })
        .await
        .unwrap();
    put(store, "doc", "first").await;
    let second = put(store, "doc", "second").await;

    let live = store.undelete("doc", None).await.unwrap_err();
    assert_eq!(live.kind(), ErrorKind::Conflict, "{live}");
    assert!(live.message().contains("not deleted"), "{live}");
    assert_eq!(
        store.undelete("nope", None).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );

    store.delete("doc").await.unwrap();
    store.delete("doc").await.unwrap_err(); // already deleted: nothing to delete
    seen.lock().unwrap().clear();
    let back = store.undelete("doc", Some("deleted by mistake")).await.unwrap();
    assert!(back.is_latest && !back.is_delete_marker);
    assert_eq!((back.sha256.as_ref(), back.size), (second.sha256.as_ref(), second.size));
    assert_eq!(back.comments[0].text, "deleted by mistake");
    assert_eq!(store.get_bytes("doc", None).await.unwrap().1, "second");
    assert_eq!(store.versions("doc").await.unwrap().len(), 4);

    let types: Vec<String> = seen.lock().unwrap().iter().map(|e| e.event_type.clone()).collect();
    assert_eq!(types, ["object.archived", "version.created", "version.rolled_back"]);
    assert_eq!(
        seen.lock().unwrap()[2].data["rolled_back_to"],
        second.version_id.as_str()
    );
    let rows = store
        .audit(&AuditQuery {
            action: Some("undelete".into()),
            limit: 10,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].version_id.as_deref(), Some(back.version_id.as_str()));

    // A key with only delete markers left has nothing to bring back.
    put(store, "gone", "x").await;
    let marker = store.delete("gone").await.unwrap();
    let first = store.versions("gone").await.unwrap()[1].version_id.clone();
    store.delete_version("gone", &first).await.unwrap();
    assert_eq!(store.versions("gone").await.unwrap()[0].version_id, marker.version_id);
    assert_eq!(
        store.undelete("gone", None).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
}

async fn listings_show_every_version_or_only_deleted_keys_a_page_at_a_time(f: Fixture) {
    let store = &f.store;
    for key in ["k/a", "k/b", "k/c", "k/d"] {
        put(store, key, "1").await;
    }
    put(store, "k/a", "2").await;
    store.delete("k/b").await.unwrap();
    store.delete("k/d").await.unwrap();

    let first = store.list_versions(&all("k/", 2)).await.unwrap();
    assert_eq!(keys(&first.objects), ["k/a", "k/a", "k/b", "k/b"]);
    assert!(first.objects[2].is_delete_marker && first.objects[2].is_latest);
    assert!(
        first.objects[0].created_at > first.objects[1].created_at,
        "newest first"
    );
    assert_eq!(first.next_start_after.as_deref(), Some("k/b"));
    let rest = store
        .list_versions(&ListOptions {
            start_after: first.next_start_after.clone(),
            ..all("k/", 2)
        })
        .await
        .unwrap();
    assert_eq!(keys(&rest.objects), ["k/c", "k/d", "k/d"]);
    assert!(!rest.is_truncated);

    let deleted = store.list_deleted(&all("k/", 1)).await.unwrap();
    assert_eq!(keys(&deleted.objects), ["k/b"]);
    assert!(deleted.is_truncated);
    let more = store
        .list_deleted(&ListOptions {
            start_after: deleted.next_start_after.clone(),
            ..all("k/", 1)
        })
        .await
        .unwrap();
    assert_eq!(keys(&more.objects), ["k/d"]);
    assert!(more.objects[0].is_delete_marker && !more.is_truncated);

    let newest = store.latest_versions("k/a", 1).await.unwrap();
    assert_eq!(newest.len(), 1);
    assert_eq!(
        store.get_bytes("k/a", Some(&newest[0].version_id)).await.unwrap().1,
        "2"
    );
    assert_eq!(
        store.latest_versions("k/a", 0).await.unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
    let grouped = ListOptions {
        delimiter: Some("/".into()),
        ..all("", 10)
    };
    assert_eq!(
        store.list_deleted(&grouped).await.unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
}

async fn every_recorded_audit_action_is_one_the_filter_accepts(f: Fixture) {
    let store = &f.store.with_audit_reads(true);
    let v1 = put(store, "a", "1").await;
    put(store, "a", "2").await;
    store.copy("a", "b", Default::default()).await.unwrap();
    store.get_bytes("a", None).await.unwrap();
    store
        .tag("a", &v1.version_id, [("x".into(), "1".into())].into(), &[])
        .await
        .unwrap();
    store.comment("a", &v1.version_id, "note").await.unwrap();
    store.rollback("a", &v1.version_id, None).await.unwrap();
    store.delete_prefix("b", false).await.unwrap();
    store.undelete("b", None).await.unwrap();
    let copied = store.versions("b").await.unwrap();
    store.delete_version("b", &copied[2].version_id).await.unwrap();
    let policy = coffer::PrunePolicy {
        keep: 1,
        keep_tagged: false,
    };
    store.prune("a", policy, false).await.unwrap();
    store
        .on_event("cb", EventFilter::default(), false, |_| async { Ok(()) })
        .await
        .unwrap();
    store.remove_hook("cb").await.unwrap();

    let rows = store
        .audit(&AuditQuery {
            limit: 1000,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    for row in &rows {
        assert!(
            AUDIT_ACTIONS.contains(&row.action.as_str()),
            "{} is not listed",
            row.action
        );
    }
    for action in AUDIT_ACTIONS {
        let query = AuditQuery {
            action: Some((*action).to_owned()),
            limit: 1000,
            ..AuditQuery::default()
        };
        let matching = store.audit(&query).await.unwrap();
        assert_eq!(matching.len(), rows.iter().filter(|r| r.action == *action).count());
    }
    let bogus = AuditQuery {
        action: Some("bogus".into()),
        ..AuditQuery::default()
    };
    let err = store.audit(&bogus).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.message().contains("hook_remove"), "{err}");
}
