//! The hot store: small puts committed with their bytes in the catalog,
//! written to the backend by the flusher, served hot until expiry; on the
//! embedded default and on a PostgreSQL catalog.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::time::Duration;

use coffer::catalog::SqliteCatalog;
use coffer::hot::{HotConfig, HotEngine};
use coffer::testkit::services::TcpProxy;
use coffer::{ByteRange, GetOptions, PutOptions, Store, Timestamp, VerifyOptions};
use futures::TryStreamExt;

#[macro_use]
mod common;

use common::Fixture;

on_both_catalogs!(
    a_small_put_is_hot_until_flushed,
    expiry_drops_only_flushed_copies_and_reads_go_on,
    identical_content_is_held_once,
    a_version_removed_before_its_flush_leaves_nothing,
    large_puts_and_a_store_without_hot_write_at_once,
);

/// Every path the store's backend holds under `prefix`.
async fn backend_paths(store: &Store, prefix: &str) -> Vec<String> {
    store.backend().list(prefix).await.unwrap().try_collect().await.unwrap()
}

fn clean(options: VerifyOptions) -> VerifyOptions {
    VerifyOptions {
        min_orphan_age: Duration::ZERO,
        ..options
    }
}

async fn a_small_put_is_hot_until_flushed(f: Fixture) {
    let store = &f.store;
    let put = store
        .put_bytes("notes/a.json", &b"{\"page\": 1}"[..], PutOptions::default())
        .await
        .unwrap();
    // Acknowledged with nothing on the backend: the catalog holds it.
    assert!(backend_paths(store, "blobs/").await.is_empty());
    assert!(backend_paths(store, "manifests/").await.is_empty());
    assert_eq!(
        &store.get_bytes("notes/a.json", None).await.unwrap().1[..],
        b"{\"page\": 1}"
    );
    let ranged = GetOptions {
        range: Some(ByteRange::Inclusive { first: 2, last: 5 }),
        ..GetOptions::default()
    };
    let body: Vec<_> = store
        .get("notes/a.json", ranged)
        .await
        .unwrap()
        .body
        .try_collect()
        .await
        .unwrap();
    assert_eq!(body.concat(), b"page");
    let status = store.hot_status().await.unwrap();
    let engine = if f.database.is_some() { "postgres" } else { "sqlite" };
    assert_eq!(status.engine, engine, "the catalog serves hot copies");
    assert_eq!((status.stats.objects, status.stats.unflushed_objects), (1, 1));
    assert_eq!(status.stats.pending_versions, 1);
    assert!(status.stats.oldest_pending.is_some());

    // Not a problem for verify: the hot copy is checked instead.
    let report = store.verify(&clean(VerifyOptions::default())).await.unwrap();
    assert!(report.is_clean(), "{:?}", report.problems);
    assert_eq!((report.unflushed_versions, report.unflushed_blobs), (1, 1));

    let flushed = store.flush_hot().await.unwrap();
    assert_eq!((flushed.versions, flushed.blobs, flushed.bytes), (1, 1, 11));
    assert_eq!(
        backend_paths(store, "blobs/").await,
        vec![put.blob_path.clone().unwrap()]
    );
    assert_eq!(backend_paths(store, "manifests/").await.len(), 1);
    let status = store.hot_status().await.unwrap();
    assert_eq!((status.stats.objects, status.stats.unflushed_objects), (1, 0));
    assert_eq!((status.stats.pending_versions, status.stats.oldest_pending), (0, None));
    assert_eq!(store.flush_hot().await.unwrap().versions, 0, "nothing is written twice");
    let report = store.verify(&clean(VerifyOptions::default())).await.unwrap();
    assert!(report.is_clean(), "{:?}", report.problems);
    assert_eq!((report.unflushed_versions, report.unflushed_blobs), (0, 0));

    // What was flushed rebuilds a catalog.
    let fresh = SqliteCatalog::open(&f.dir.path().join("rebuilt.db")).await.unwrap();
    let rebuilt = store.reindex_into(&fresh).await.unwrap();
    assert_eq!((rebuilt.versions, rebuilt.skipped.len()), (1, 0));
}

async fn expiry_drops_only_flushed_copies_and_reads_go_on(f: Fixture) {
    let store = &f.store;
    store
        .put_bytes("old.txt", &b"kept on the backend"[..], PutOptions::default())
        .await
        .unwrap();
    store.flush_hot().await.unwrap();
    store
        .put_bytes("new.txt", &b"not flushed yet"[..], PutOptions::default())
        .await
        .unwrap();
    let later = Timestamp::now().plus(Duration::from_secs(91 * 86_400));

    // Within 90 days nothing goes; past them only what is on the backend.
    assert_eq!(store.expire_hot(Timestamp::now(), false).await.unwrap().copies, 0);
    assert_eq!(store.expire_hot(later, true).await.unwrap().copies, 1);
    assert_eq!(
        store.hot_status().await.unwrap().stats.objects,
        2,
        "a dry run drops nothing"
    );
    assert_eq!(store.expire_hot(later, false).await.unwrap().copies, 1);
    let status = store.hot_status().await.unwrap();
    assert_eq!((status.stats.objects, status.stats.expired), (1, 1));
    assert_eq!(
        &store.get_bytes("old.txt", None).await.unwrap().1[..],
        b"kept on the backend"
    );
    assert_eq!(
        &store.get_bytes("new.txt", None).await.unwrap().1[..],
        b"not flushed yet"
    );

    // Once flushed, it may go too.
    store.flush_hot().await.unwrap();
    assert_eq!(store.expire_hot(later, false).await.unwrap().copies, 1);
    assert_eq!(store.hot_status().await.unwrap().stats.expired, 2);
    assert_eq!(
        &store.get_bytes("new.txt", None).await.unwrap().1[..],
        b"not flushed yet"
    );
    let report = store.verify(&clean(VerifyOptions::default())).await.unwrap();
    assert!(report.is_clean(), "{:?}", report.problems);
}

async fn identical_content_is_held_once(f: Fixture) {
    let store = &f.store;
    let a = store
        .put_bytes("a", &b"same bytes"[..], PutOptions::default())
        .await
        .unwrap();
    let b = store
        .put_bytes("b", &b"same bytes"[..], PutOptions::default())
        .await
        .unwrap();
    assert_eq!(a.blob_path, b.blob_path);
    let status = store.hot_status().await.unwrap();
    assert_eq!((status.stats.objects, status.stats.pending_versions), (1, 2));
    let flushed = store.flush_hot().await.unwrap();
    assert_eq!((flushed.versions, flushed.blobs), (2, 1));
    assert_eq!(backend_paths(store, "blobs/").await.len(), 1);
    assert_eq!(store.catalog().stats().await.unwrap().blobs, 1);
}

async fn a_version_removed_before_its_flush_leaves_nothing(f: Fixture) {
    let store = &f.store;
    let put = store
        .put_bytes("gone", &b"short-lived"[..], PutOptions::default())
        .await
        .unwrap();
    store.delete_version("gone", &put.version_id).await.unwrap();
    let status = store.hot_status().await.unwrap();
    assert_eq!((status.stats.objects, status.stats.pending_versions), (0, 0));
    assert_eq!(store.flush_hot().await.unwrap().versions, 0);
    assert!(backend_paths(store, "blobs/").await.is_empty());
    assert!(backend_paths(store, "manifests/").await.is_empty());
}

async fn large_puts_and_a_store_without_hot_write_at_once(f: Fixture) {
    let store = &f.store;
    let big = vec![7u8; (64 << 10) + 1];
    store
        .put_bytes("big", big.clone(), PutOptions::default())
        .await
        .unwrap();
    assert_eq!(backend_paths(store, "blobs/").await.len(), 1);
    let cold = store.with_hot(HotConfig::off());
    cold.put_bytes("small", &b"tiny"[..], PutOptions::default())
        .await
        .unwrap();
    assert_eq!(backend_paths(store, "blobs/").await.len(), 2);
    assert_eq!(backend_paths(store, "manifests/").await.len(), 2);
    assert_eq!(store.hot_status().await.unwrap().stats.objects, 0);
}

/// A store on the embedded default whose hot copies ClickHouse serves too,
/// through `proxy` (so the test can take ClickHouse away).
async fn on_clickhouse(dir: &std::path::Path, proxy: &TcpProxy, database: &str) -> Store {
    let config = coffer::Config {
        hot: HotConfig {
            engine: HotEngine::Clickhouse,
            clickhouse_url: Some(format!("{}/?database={database}", proxy.url())),
            ..HotConfig::default()
        },
        ..coffer::Config::embedded(dir.join("data"))
    };
    Store::open(&config).await.unwrap()
}

/// Deliver what is due now (the feed into ClickHouse among it).
async fn deliver(store: &Store) -> coffer::events::DispatchReport {
    let mut dispatcher = store.dispatcher(coffer::events::DispatcherOptions::default());
    let report = dispatcher.drain().await.unwrap();
    dispatcher.release().await.unwrap();
    report
}

#[tokio::test(flavor = "multi_thread")]
async fn clickhouse_serves_hot_copies_fed_from_the_outbox_and_drops_old_days() {
    let Some((addr, database)) = coffer::testkit::services::clickhouse_server().unwrap() else {
        return;
    };
    let mut proxy = TcpProxy::start(&addr).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = on_clickhouse(dir.path(), &proxy, &database).await;
    assert_eq!(store.hot_status().await.unwrap().engine, "clickhouse");
    let a = store
        .put_bytes("feed/a.json", &b"{\"a\": 1}"[..], PutOptions::default())
        .await
        .unwrap();
    store
        .put_bytes("feed/b.json", &b"{\"b\": 2}"[..], PutOptions::default())
        .await
        .unwrap();
    deliver(&store).await;
    let listed = store.hot_query("feed/", Timestamp::from_micros(0), 10).await.unwrap();
    let keys: Vec<&str> = listed.iter().map(|o| o.key.as_str()).collect();
    assert_eq!(keys.len(), 2, "{listed:?}");
    assert!(keys.contains(&"feed/a.json") && keys.contains(&"feed/b.json"));

    // A read served from ClickHouse: the catalog's copy expired (flushed,
    // the clock moved on) and the backend's copy gone.
    store.flush_hot().await.unwrap();
    let later = Timestamp::now().plus(Duration::from_secs(91 * 86_400));
    store.catalog().hot_expire(later, 1000).await.unwrap();
    assert_eq!(store.hot_status().await.unwrap().stats.objects, 0);
    store.backend().delete(a.blob_path.as_deref().unwrap()).await.unwrap();
    assert_eq!(
        &store.get_bytes("feed/a.json", None).await.unwrap().1[..],
        b"{\"a\": 1}"
    );

    // ClickHouse away: the feed waits in the outbox, and catches up once it is back.
    proxy.stop();
    store
        .put_bytes("feed/c.json", &b"{\"c\": 3}"[..], PutOptions::default())
        .await
        .unwrap();
    let failed = deliver(&store).await;
    assert!(failed.retrying > 0, "{failed:?}");
    assert_eq!(
        &store.get_bytes("feed/c.json", None).await.unwrap().1[..],
        b"{\"c\": 3}",
        "read from the catalog"
    );
    proxy.resume().await.unwrap();
    // The retry is due after the backoff's first delay (at most a second).
    tokio::time::sleep(Duration::from_millis(1100)).await;
    deliver(&store).await;
    let listed = store.hot_query("feed/c", Timestamp::from_micros(0), 10).await.unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    // Delivered twice, stored once: duplicates collapse by version id.
    deliver(&store).await;

    // Expiry drops whole day partitions; a dry run names them and drops nothing.
    let planned = store.expire_hot(later, true).await.unwrap();
    assert_eq!(planned.clickhouse_days.len(), 1, "{planned:?}");
    assert_eq!(planned.clickhouse_days[0].len(), "2026-12-07".len(), "{planned:?}");
    let listed = store.hot_query("", Timestamp::from_micros(0), 10).await.unwrap();
    assert!(!listed.is_empty(), "the dry run dropped nothing");
    let expired = store.expire_hot(later, false).await.unwrap();
    assert_eq!(expired.clickhouse_days, planned.clickhouse_days);
    assert!(
        store
            .hot_query("", Timestamp::from_micros(0), 10)
            .await
            .unwrap()
            .is_empty()
    );
    // Its only copy went with the partition: a process that read it keeps
    // the verified bytes in memory, a new one finds no copy.
    assert_eq!(
        &store.get_bytes("feed/a.json", None).await.unwrap().1[..],
        b"{\"a\": 1}"
    );
    let fresh = on_clickhouse(dir.path(), &proxy, &database).await;
    let err = fresh.get_bytes("feed/a.json", None).await.unwrap_err();
    assert_eq!(err.kind(), coffer::ErrorKind::IntegrityMismatch, "{err}");
    drop_database(&addr, &database).await;
}

async fn drop_database(addr: &str, database: &str) {
    reqwest::Client::new()
        .post(format!("http://{addr}/"))
        .body(format!("DROP DATABASE IF EXISTS {database}"))
        .send()
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn an_encrypted_stores_hot_copies_are_sealed() {
    let dir = tempfile::tempdir().unwrap();
    let store = common::encrypted_store(dir.path()).await;
    let marker = b"plaintext-marker-5f1e";
    let put = store
        .put_bytes("secret.txt", &marker[..], PutOptions::default())
        .await
        .unwrap();
    let copy = store
        .catalog()
        .hot_copy(put.sha256.as_deref().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert!(
        !copy.content.windows(marker.len()).any(|w| w == marker),
        "the catalog holds it sealed"
    );
    assert_eq!(&store.get_bytes("secret.txt", None).await.unwrap().1[..], marker);
    let report = store.verify(&clean(VerifyOptions::default())).await.unwrap();
    assert!(report.is_clean(), "{:?}", report.problems);
    store.flush_hot().await.unwrap();
    let blob = std::fs::read(dir.path().join("data/store").join(put.blob_path.unwrap())).unwrap();
    assert_eq!(
        blob,
        copy.content.to_vec(),
        "the flusher writes the sealed copy as it is"
    );
    let later = Timestamp::now().plus(Duration::from_secs(91 * 86_400));
    store.expire_hot(later, false).await.unwrap();
    assert_eq!(&store.get_bytes("secret.txt", None).await.unwrap().1[..], marker);
}
