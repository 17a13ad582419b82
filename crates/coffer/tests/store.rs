//! `Store` behaviour on both in-tree backends: what an application sees.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use bytes::Bytes;
use coffer::{AuditQuery, ByteRange, CopyOptions, ErrorKind, GetOptions, ListOptions, Metadata, PutOptions, Store};
use futures::{StreamExt, TryStreamExt};

mod common;

use common::{fs_store, memory_store, pg_store};

/// Run a scenario against a store on each backend, and on local disk with
/// a PostgreSQL catalog; on local disk with the hot store on (the default)
/// and off (as the memory backend's store has it).
macro_rules! on_every_backend {
    ($($name:ident),* $(,)?) => {
        mod fs {
            $(#[tokio::test(flavor = "multi_thread")]
            async fn $name() { super::$name(super::fs_store().await.store).await }
            )*
        }
        mod fs_without_hot {
            $(#[tokio::test(flavor = "multi_thread")]
            async fn $name() {
                let fixture = super::fs_store().await;
                super::$name(fixture.store.with_hot(coffer::hot::HotConfig::off())).await
            }
            )*
        }
        mod memory {
            $(#[tokio::test(flavor = "multi_thread")]
            async fn $name() { super::$name(super::memory_store().await.store).await }
            )*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread")]
            async fn $name() { let Some(f) = super::pg_store().await else { return }; super::$name(f.store.clone()).await }
            )*
        }
    };
}

on_every_backend!(
    versions_read_back_and_latest_moves,
    delete_marker_hides_key_but_keeps_versions,
    delete_version_removes_it_for_good,
    identical_content_is_stored_once,
    copy_references_the_same_blob,
    ranged_reads,
    conditional_writes,
    bad_input_changes_nothing,
    list_pages_and_groups,
    list_stream_walks_every_key,
    audit_rows_follow_changes,
    concurrent_puts_to_one_key_all_land,
    large_object_streams,
);

/// Every path the store's backend holds under `prefix`.
async fn backend_paths(store: &Store, prefix: &str) -> Vec<String> {
    store.backend().list(prefix).await.unwrap().try_collect().await.unwrap()
}

fn opts() -> PutOptions {
    PutOptions::default()
}

async fn read(store: &Store, key: &str, version: Option<&coffer::VersionId>) -> Bytes {
    store.get_bytes(key, version).await.unwrap().1
}

async fn versions_read_back_and_latest_moves(store: Store) {
    let meta: Metadata = [("department".to_string(), "finance".to_string())].into();
    let v1 = store
        .put_bytes(
            "invoices/inv.pdf",
            "first",
            PutOptions {
                metadata: meta.clone(),
                ..opts()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        v1.content_type.as_deref(),
        Some("application/pdf"),
        "guessed from the key"
    );
    assert_eq!(v1.created_by, "tester");
    let v2 = store.put_bytes("invoices/inv.pdf", "second", opts()).await.unwrap();
    assert!(v2.version_id > v1.version_id);
    assert_eq!(&read(&store, "invoices/inv.pdf", None).await[..], b"second");
    assert_eq!(
        &read(&store, "invoices/inv.pdf", Some(&v1.version_id)).await[..],
        b"first"
    );
    let head = store.head("invoices/inv.pdf", Some(&v1.version_id)).await.unwrap();
    assert_eq!(head.metadata, meta);
    assert!(!head.is_latest);
    assert_eq!(
        head.etag.as_deref(),
        Some("8b04d5e3775d298e78455efc5ca404d5"),
        "md5 of 'first'"
    );
    let versions = store.versions("invoices/inv.pdf").await.unwrap();
    assert_eq!(
        versions.iter().map(|v| &v.version_id).collect::<Vec<_>>(),
        [&v2.version_id, &v1.version_id]
    );
    assert!(versions[0].is_latest && !versions[1].is_latest);
}

async fn delete_marker_hides_key_but_keeps_versions(store: Store) {
    let v1 = store.put_bytes("a/doc.txt", "content", opts()).await.unwrap();
    let marker = store.delete("a/doc.txt").await.unwrap();
    assert!(marker.is_delete_marker);
    assert!(!store.exists("a/doc.txt").await.unwrap());
    assert_eq!(
        store
            .get("a/doc.txt", GetOptions::default())
            .await
            .err()
            .map(|e| e.kind()),
        Some(ErrorKind::NotFound)
    );
    assert!(store.list(&ListOptions::default()).await.unwrap().objects.is_empty());
    assert_eq!(&read(&store, "a/doc.txt", Some(&v1.version_id)).await[..], b"content");
    let versions = store.versions("a/doc.txt").await.unwrap();
    assert!(versions[0].is_delete_marker && versions[0].is_latest);
    // Deleting an already deleted key is an error and adds nothing.
    assert_eq!(
        store.delete("a/doc.txt").await.err().map(|e| e.kind()),
        Some(ErrorKind::NotFound)
    );
    assert_eq!(store.versions("a/doc.txt").await.unwrap().len(), 2);
    // Reading a delete marker by id is NotFound too.
    let err = store
        .get(
            "a/doc.txt",
            GetOptions {
                version_id: Some(marker.version_id),
                ..Default::default()
            },
        )
        .await;
    assert_eq!(err.err().map(|e| e.kind()), Some(ErrorKind::NotFound));
}

async fn delete_version_removes_it_for_good(store: Store) {
    let v1 = store.put_bytes("k", "one", opts()).await.unwrap();
    let v2 = store.put_bytes("k", "two", opts()).await.unwrap();
    store.delete_version("k", &v2.version_id).await.unwrap();
    assert_eq!(&read(&store, "k", None).await[..], b"one", "latest moved back to v1");
    let err = store
        .get(
            "k",
            GetOptions {
                version_id: Some(v2.version_id.clone()),
                ..Default::default()
            },
        )
        .await;
    assert_eq!(err.err().map(|e| e.kind()), Some(ErrorKind::NotFound));
    let blob = v2.blob_path.unwrap();
    assert_eq!(
        store.backend().stat(&blob).await.unwrap(),
        None,
        "unreferenced blob removed"
    );
    store.delete_version("k", &v1.version_id).await.unwrap();
    assert_eq!(
        store.versions("k").await.err().map(|e| e.kind()),
        Some(ErrorKind::NotFound)
    );
    assert!(store.check_consistency().await.unwrap().is_empty());
}

async fn identical_content_is_stored_once(store: Store) {
    let a = store.put_bytes("x/a", "same bytes", opts()).await.unwrap();
    let b = store.put_bytes("y/b", "same bytes", opts()).await.unwrap();
    assert_eq!(a.blob_path, b.blob_path);
    let info = store.info().await.unwrap();
    assert_eq!((info.stats.objects, info.stats.blobs), (2, 1));
    assert_eq!(info.stats.blob_bytes, 10);
    store.flush_hot().await.unwrap();
    let staged = backend_paths(&store, "staging/").await;
    assert!(staged.is_empty(), "uploads left in staging: {staged:?}");
    let blobs = backend_paths(&store, "blobs/").await;
    assert_eq!(blobs.len(), 1, "one blob on the backend: {blobs:?}");
    // Removing one reference keeps the bytes for the other.
    store.delete_version("x/a", &a.version_id).await.unwrap();
    assert_eq!(&read(&store, "y/b", None).await[..], b"same bytes");
}

async fn copy_references_the_same_blob(store: Store) {
    let src = store.put_bytes("src.bin", vec![1u8; 5000], opts()).await.unwrap();
    let copy = store
        .copy("src.bin", "dst/copy.bin", CopyOptions::default())
        .await
        .unwrap();
    assert_eq!(copy.blob_path, src.blob_path);
    assert_eq!(copy.sha256, src.sha256);
    assert_eq!(store.info().await.unwrap().stats.blobs, 1);
    assert_eq!(read(&store, "dst/copy.bin", None).await.len(), 5000);
    let missing = store.copy("nope", "dst/x", CopyOptions::default()).await;
    assert_eq!(missing.err().map(|e| e.kind()), Some(ErrorKind::NotFound));
}

async fn ranged_reads(store: Store) {
    let data: Vec<u8> = (0..3000u32).map(|i| (i % 256) as u8).collect();
    store.put_bytes("r", data.clone(), opts()).await.unwrap();
    for (range, expected) in [
        ("0-1023", &data[0..1024]),
        ("2990-", &data[2990..]),
        ("-10", &data[2990..]),
        ("100-99999", &data[100..]),
    ] {
        let range: ByteRange = range.parse().unwrap();
        let got = store
            .get(
                "r",
                GetOptions {
                    range: Some(range),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        let bytes: Vec<Bytes> = got.body.try_collect().await.unwrap();
        assert_eq!(bytes.concat(), expected, "{range:?}");
    }
    let beyond = store
        .get(
            "r",
            GetOptions {
                range: Some("3000-".parse().unwrap()),
                ..Default::default()
            },
        )
        .await;
    assert_eq!(beyond.err().map(|e| e.kind()), Some(ErrorKind::InvalidInput));
    assert!("5-1".parse::<ByteRange>().is_err());
}

async fn conditional_writes(store: Store) {
    let create = PutOptions {
        if_none_match: true,
        ..opts()
    };
    let v1 = store.put_bytes("c", "v1", create.clone()).await.unwrap();
    let again = store.put_bytes("c", "other", create).await;
    assert_eq!(again.err().map(|e| e.kind()), Some(ErrorKind::Conflict));
    let stale = PutOptions {
        if_match: Some("0123".into()),
        ..opts()
    };
    assert_eq!(
        store.put_bytes("c", "v2", stale).await.err().map(|e| e.kind()),
        Some(ErrorKind::Conflict)
    );
    let fresh = PutOptions {
        if_match: v1.etag.clone(),
        ..opts()
    };
    store.put_bytes("c", "v2", fresh).await.unwrap();
    assert_eq!(store.versions("c").await.unwrap().len(), 2);
    store.flush_hot().await.unwrap();
    let blobs = backend_paths(&store, "blobs/").await;
    assert_eq!(blobs.len(), 2, "rejected writes stored nothing: {blobs:?}");
}

async fn bad_input_changes_nothing(store: Store) {
    for key in ["../etc/passwd", "/abs", "a//b", "nul\0", ""] {
        let err = store.put_bytes(key, "x", opts()).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidKey, "{key:?}");
    }
    let huge: Metadata = [("v".to_string(), "x".repeat(3000))].into();
    let err = store
        .put_bytes(
            "ok",
            "x",
            PutOptions {
                metadata: huge,
                ..opts()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    let err = store
        .put_bytes(
            "ok",
            "x",
            PutOptions {
                content_type: Some("nonsense".into()),
                ..opts()
            },
        )
        .await;
    assert_eq!(err.unwrap_err().kind(), ErrorKind::InvalidInput);
    // A body that breaks off mid-way stores nothing.
    let truncated: coffer::ByteStream = Box::pin(futures::stream::iter(vec![
        Ok(Bytes::from_static(b"partial")),
        Err(coffer::Error::new(ErrorKind::Io, "connection reset")),
    ]));
    assert_eq!(
        store.put_stream("ok", truncated, opts()).await.unwrap_err().kind(),
        ErrorKind::Io
    );
    let info = store.info().await.unwrap();
    assert_eq!((info.stats.versions, info.stats.blobs), (0, 0));
    assert!(
        store
            .audit(&AuditQuery {
                limit: 10,
                ..AuditQuery::default()
            })
            .await
            .unwrap()
            .is_empty()
    );
    for prefix in ["staging/", "blobs/", "manifests/"] {
        let left = backend_paths(&store, prefix).await;
        assert!(left.is_empty(), "{prefix} holds {left:?}");
    }
}

async fn list_pages_and_groups(store: Store) {
    for key in [
        "inv/2024/a",
        "inv/2024/b",
        "inv/2024/sub/c",
        "inv/2025/d",
        "other/e",
        "inv/2024x",
    ] {
        store.put_bytes(key, key.to_owned(), opts()).await.unwrap();
    }
    store.delete("inv/2024/b").await.unwrap();
    let names = |page: &coffer::ListPage| page.objects.iter().map(|v| v.key.to_string()).collect::<Vec<_>>();
    let page = store
        .list(&ListOptions {
            prefix: "inv/2024/".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(names(&page), ["inv/2024/a", "inv/2024/sub/c"]);
    let grouped = ListOptions {
        prefix: "inv/".into(),
        delimiter: Some("/".into()),
        ..Default::default()
    };
    let page = store.list(&grouped).await.unwrap();
    assert_eq!(page.common_prefixes, ["inv/2024/", "inv/2025/"]);
    assert_eq!(names(&page), ["inv/2024x"]);
    // One entry per page, following next_start_after, visits each group once.
    let mut seen = Vec::new();
    let mut start_after = None;
    loop {
        let page = store
            .list(&ListOptions {
                max_keys: 1,
                start_after,
                ..grouped.clone()
            })
            .await
            .unwrap();
        seen.extend(page.common_prefixes.iter().cloned());
        seen.extend(names(&page));
        if !page.is_truncated {
            break;
        }
        start_after = page.next_start_after;
    }
    assert_eq!(
        seen,
        ["inv/2024/", "inv/2024x", "inv/2025/"],
        "key order, each group once"
    );
    let bad = store
        .list(&ListOptions {
            max_keys: 0,
            ..Default::default()
        })
        .await;
    assert_eq!(bad.err().map(|e| e.kind()), Some(ErrorKind::InvalidInput));
}

async fn list_stream_walks_every_key(store: Store) {
    // More than one internal page of 1000, written 32 at a time.
    futures::stream::iter(0..2100)
        .map(|i| {
            let store = store.clone();
            async move {
                store
                    .put_bytes(&format!("many/{i:05}"), format!("{i}"), PutOptions::default())
                    .await
            }
        })
        .buffer_unordered(32)
        .try_collect::<Vec<_>>()
        .await
        .unwrap();
    let keys: Vec<String> = store
        .list_stream("many/")
        .map_ok(|v| v.key.to_string())
        .try_collect()
        .await
        .unwrap();
    assert_eq!(keys.len(), 2100);
    assert!(keys.windows(2).all(|w| w[0] < w[1]));
}

async fn audit_rows_follow_changes(store: Store) {
    let v = store.put_bytes("au", "1", opts()).await.unwrap();
    store.copy("au", "au2", CopyOptions::default()).await.unwrap();
    store.with_actor("operator").delete("au").await.unwrap();
    store.delete_version("au", &v.version_id).await.unwrap();
    let rows = store
        .audit(&AuditQuery {
            key: Some("au".try_into().unwrap()),
            limit: 10,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    let actions: Vec<(&str, &str)> = rows.iter().map(|r| (r.action.as_str(), r.actor.as_str())).collect();
    assert_eq!(
        actions,
        [("delete_version", "tester"), ("delete", "operator"), ("put", "tester")]
    );
    let all = store
        .audit(&AuditQuery {
            limit: 10,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(all.len(), 4);
}

async fn concurrent_puts_to_one_key_all_land(store: Store) {
    let tasks: Vec<_> = (0..40)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .put_bytes("hot", format!("writer {i}"), PutOptions::default())
                    .await
            })
        })
        .collect();
    let mut acked = Vec::new();
    for task in tasks {
        acked.push(task.await.unwrap().unwrap());
    }
    let versions = store.versions("hot").await.unwrap();
    assert_eq!(versions.len(), 40);
    let newest = acked.iter().map(|v| &v.version_id).max().unwrap();
    assert_eq!(&versions[0].version_id, newest);
    for v in &acked {
        let (_, bytes) = store.get_bytes("hot", Some(&v.version_id)).await.unwrap();
        assert_eq!(bytes.len() as u64, v.size);
    }
    assert!(store.check_consistency().await.unwrap().is_empty());
}

async fn large_object_streams(store: Store) {
    // 24 MiB in 1 MiB chunks from an AsyncRead; read back as a stream and verified.
    let chunk: Vec<u8> = (0..1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 24) as u8)
        .collect();
    let data: Vec<u8> = chunk.repeat(24);
    let v = store
        .put("big.bin", std::io::Cursor::new(data.clone()), opts())
        .await
        .unwrap();
    assert_eq!(v.size, data.len() as u64);
    let got = store.get("big.bin", GetOptions::default()).await.unwrap();
    let mut total = 0usize;
    let mut body = got.body;
    while let Some(piece) = body.try_next().await.unwrap() {
        assert_eq!(&piece[..], &data[total..total + piece.len()]);
        total += piece.len();
    }
    assert_eq!(total, data.len());
}

#[tokio::test(flavor = "multi_thread")]
async fn corrupted_blob_fails_the_read_loudly() {
    let fixture = fs_store().await;
    // Damage on the backend: a put that writes there at once.
    let store = fixture.store.with_hot(coffer::hot::HotConfig::off());
    let v = store.put_bytes("doc", vec![42u8; 10_000], opts()).await.unwrap();
    let path = fixture.dir.path().join("data/store").join(v.blob_path.unwrap());
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[5000] ^= 0xff;
    std::fs::write(&path, &bytes).unwrap();
    let got = store.get("doc", GetOptions::default()).await.unwrap();
    let err = got.body.try_collect::<Vec<Bytes>>().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::IntegrityMismatch);
    std::fs::write(&path, &bytes[..100]).unwrap();
    let got = store.get("doc", GetOptions::default()).await.unwrap();
    assert_eq!(
        got.body.try_collect::<Vec<Bytes>>().await.unwrap_err().kind(),
        ErrorKind::IntegrityMismatch
    );
    std::fs::remove_file(&path).unwrap();
    let err = store.get("doc", GetOptions::default()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::IntegrityMismatch);
    assert!(
        !store.check_consistency().await.unwrap().is_empty(),
        "a missing blob is reported"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn manifests_describe_every_version() {
    let fixture = fs_store().await;
    let store = fixture.store;
    let meta: Metadata = [("year".to_string(), "2024".to_string())].into();
    let v = store
        .put_bytes(
            "m/doc.txt",
            "hello",
            PutOptions {
                metadata: meta.clone(),
                ..opts()
            },
        )
        .await
        .unwrap();
    let marker = store.delete("m/doc.txt").await.unwrap();
    store.flush_hot().await.unwrap();
    let paths = backend_paths(&store, "manifests/").await;
    assert_eq!(paths.len(), 2);
    let mut manifests = Vec::new();
    for path in paths {
        let chunks: Vec<Bytes> = store
            .backend()
            .read(&path, None)
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        manifests.push(serde_json::from_slice::<coffer::layout::Manifest>(&chunks.concat()).unwrap());
    }
    manifests.sort_by(|a, b| a.version_id.cmp(&b.version_id));
    let (put, deleted) = (&manifests[0], &manifests[1]);
    assert_eq!(
        (&put.key, &put.version_id, &put.sha256, put.size),
        (&v.key, &v.version_id, &v.sha256, 5)
    );
    assert_eq!(
        (&put.metadata, put.created_by.as_str(), put.created_at),
        (&meta, "tester", v.created_at)
    );
    assert!(deleted.delete_marker && deleted.version_id == marker.version_id);
}
