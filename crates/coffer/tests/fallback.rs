//! Faults of a remote backend: the S3 server (Garage) goes away in the middle
//! of a run of puts and comes back. A proxy between coffer and the server is
//! stopped and started, so to coffer the server is gone (connections
//! refused) while Garage keeps what it already holds.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::time::Duration;

use coffer::hot::HotConfig;
use coffer::testkit::services::TcpProxy;
use coffer::{BackendConfig, Config, ErrorKind, PutOptions, Store, VerifyOptions};

/// A bucket on Garage reached through a proxy on its own port.
async fn garage_through_proxy() -> Option<(coffer::S3Config, TcpProxy)> {
    let mut s3 = coffer::testkit::services::garage_bucket().unwrap()?;
    let upstream = s3.endpoint.clone().unwrap().trim_start_matches("http://").to_owned();
    let proxy = TcpProxy::start(&upstream).await.unwrap();
    s3.endpoint = Some(proxy.url());
    s3.part_size_mib = Some(5);
    Some((s3, proxy))
}

/// A store in `dir` (its catalog) on the bucket `s3` names, whose puts
/// write to the store at once (the hot store's wait in the catalog, below).
fn on_bucket(s3: &coffer::S3Config, dir: &std::path::Path) -> Config {
    Config {
        backend: BackendConfig::S3(Box::new(s3.clone())),
        hot: HotConfig::off(),
        ..Config::embedded(dir.join("data"))
    }
}

fn content(i: usize) -> String {
    format!("document {i}: {}", "x".repeat(i * 100))
}

#[tokio::test(flavor = "multi_thread")]
async fn with_a_spool_every_acknowledged_put_survives_an_outage() {
    let Some((s3, mut proxy)) = garage_through_proxy().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        spool: Some(dir.path().join("spool")),
        ..on_bucket(&s3, dir.path())
    };
    let store = Store::open(&config).await.unwrap().with_actor("tester");

    let mut acknowledged = Vec::new();
    for i in 0..30 {
        if i == 10 {
            proxy.stop();
        }
        let version = store
            .put_bytes(&format!("run/doc-{i:02}.txt"), content(i), PutOptions::default())
            .await
            .expect("a put is served while the backend is down");
        assert_eq!(store.is_spooled(&version).await, i >= 10, "put {i}");
        acknowledged.push(version);
    }
    // A large put while it is down streams into the spool too.
    let large: Vec<u8> = (0..9u32 << 20).map(|i| (i % 251) as u8).collect();
    let big = store
        .put_bytes("run/big.bin", large.clone(), PutOptions::default())
        .await
        .unwrap();
    assert!(store.is_spooled(&big).await);

    // Spooled versions read back; the info says what waits and that the backend is down.
    for (i, version) in acknowledged.iter().enumerate().skip(10) {
        let (_, bytes) = store.get_bytes(version.key.as_str(), None).await.unwrap();
        assert_eq!(bytes, content(i).as_bytes(), "read of spooled {i}");
    }
    let info = store.info().await.unwrap();
    assert!(!info.backend_ok);
    let waiting = info.spool.unwrap();
    assert_eq!(waiting.files, 21 * 2, "21 blobs and 21 manifests wait: {waiting:?}");
    let err = store.sync().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BackendUnavailable);

    proxy.resume().await.unwrap();
    let report = store.sync().await.unwrap();
    assert_eq!(report.moved, 42, "{report:?}");
    assert!(report.failed.is_empty(), "{report:?}");
    assert_eq!(store.spool_status().await.unwrap().unwrap().files, 0);

    // Every acknowledged put is on the backend itself now, with the same version ids:
    // a store on the bucket without the spool reads them all.
    let plain = Store::open(&on_bucket(&s3, dir.path())).await.unwrap();
    for (i, version) in acknowledged.iter().enumerate() {
        assert!(!store.is_spooled(version).await);
        let (got, bytes) = plain
            .get_bytes(version.key.as_str(), Some(&version.version_id))
            .await
            .unwrap();
        assert_eq!(got.version_id, version.version_id);
        assert_eq!(bytes, content(i).as_bytes(), "doc {i} after sync");
    }
    let (_, bytes) = plain.get_bytes("run/big.bin", None).await.unwrap();
    assert!(bytes[..] == large[..]);
    coffer::testkit::store::verify_clean(&plain).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_spool_puts_fail_cleanly_while_the_backend_is_down() {
    let Some((s3, mut proxy)) = garage_through_proxy().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let config = on_bucket(&s3, dir.path());
    let store = Store::open(&config).await.unwrap();
    store
        .put_bytes("run/before.txt", "before", PutOptions::default())
        .await
        .unwrap();
    proxy.stop();
    for i in 0..3 {
        let err = store
            .put_bytes(&format!("run/during-{i}.txt"), content(i), PutOptions::default())
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::BackendUnavailable, "{}", err.message());
        assert!(!err.message().contains('\n'), "one line: {}", err.message());
        let missing = store.versions(&format!("run/during-{i}.txt")).await.unwrap_err();
        assert_eq!(missing.kind(), ErrorKind::NotFound, "no partial version");
    }
    assert!(!store.health().await.ok);
    proxy.resume().await.unwrap();
    assert!(store.health().await.ok);
    let (_, bytes) = store.get_bytes("run/before.txt", None).await.unwrap();
    assert_eq!(&bytes[..], b"before");
    coffer::testkit::store::verify_clean(&store).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn an_interrupted_multipart_upload_leaves_no_version_and_no_parts() {
    let Some((s3, mut proxy)) = garage_through_proxy().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let config = on_bucket(&s3, dir.path());
    let store = Store::open(&config).await.unwrap();
    // 40 MiB in 5 MiB parts, with the server going away after the first few parts.
    let (sender, receiver) = futures::channel::mpsc::channel::<coffer::Result<bytes::Bytes>>(1);
    let put = tokio::spawn({
        let store = store.clone();
        async move {
            store
                .put_stream(
                    "run/interrupted.bin",
                    futures::StreamExt::boxed(receiver),
                    PutOptions::default(),
                )
                .await
        }
    });
    let mut sender = sender;
    for i in 0..40u8 {
        if i == 12 {
            proxy.stop();
        }
        if futures::SinkExt::send(&mut sender, Ok(bytes::Bytes::from(vec![i; 1 << 20])))
            .await
            .is_err()
        {
            break; // the put gave up and dropped the body
        }
    }
    drop(sender);
    let err = put.await.unwrap().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BackendUnavailable, "{}", err.message());
    proxy.resume().await.unwrap();
    let missing = store.versions("run/interrupted.bin").await.unwrap_err();
    assert_eq!(missing.kind(), ErrorKind::NotFound, "no version");
    // The upload's parts could not be aborted while the server was away:
    // verify reports them and a repair aborts them.
    let repair = VerifyOptions {
        repair: true,
        min_orphan_age: Duration::ZERO,
        ..VerifyOptions::default()
    };
    let report = store.verify(&repair).await.unwrap();
    assert!(
        report
            .problems
            .iter()
            .all(|p| matches!(p.kind, "incomplete_upload" | "orphan_upload") && p.repaired),
        "{report:?}"
    );
    let uploads = coffer::testkit::services::s3_multipart_uploads(&s3).await.unwrap();
    assert_eq!(uploads, 0, "no leaked parts after the repair");
    let report = store.verify(&repair).await.unwrap();
    assert!(report.is_clean(), "{report:?}");
}

/// A protected version put while the store is down waits in the spool with
/// its lock; the drain that moves it to an Object Lock bucket locks it there.
#[tokio::test(flavor = "multi_thread")]
async fn a_spooled_protected_version_is_locked_when_it_reaches_the_store() {
    let Some(mut s3) = coffer::testkit::services::moto_bucket().unwrap() else {
        return;
    };
    s3.object_lock = true;
    let direct = s3.clone();
    let upstream = s3.endpoint.clone().unwrap().trim_start_matches("http://").to_owned();
    let mut proxy = TcpProxy::start(&upstream).await.unwrap();
    s3.endpoint = Some(proxy.url());
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        spool: Some(dir.path().join("spool")),
        ..on_bucket(&s3, dir.path())
    };
    let store = Store::open(&config).await.unwrap().with_actor("tester");
    store
        .put_bytes("warmup.txt", "the bucket answers", PutOptions::default())
        .await
        .unwrap();

    proxy.stop();
    let held = PutOptions {
        legal_hold: true,
        ..PutOptions::default()
    };
    let version = store.put_bytes("evidence/e.txt", "exhibit", held).await.unwrap();
    assert!(store.is_spooled(&version).await);

    proxy.resume().await.unwrap();
    store.sync().await.unwrap();
    assert!(!store.is_spooled(&version).await);
    let blob = version.blob_path.clone().unwrap();
    let (_, hold) = coffer::testkit::services::s3_object_lock(&direct, &blob).await.unwrap();
    assert_eq!(hold.as_deref(), Some("ON"), "the drained blob carries the legal hold");
}

#[tokio::test(flavor = "multi_thread")]
async fn hot_puts_are_acknowledged_while_the_backend_is_down_and_flushed_once_it_is_back() {
    let Some((s3, mut proxy)) = garage_through_proxy().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        hot: HotConfig::default(),
        ..on_bucket(&s3, dir.path())
    };
    let store = Store::open(&config).await.unwrap().with_actor("tester");
    store
        .put_bytes("run/before.txt", "before", PutOptions::default())
        .await
        .unwrap();
    store.flush_hot().await.unwrap();

    proxy.stop();
    for i in 0..10 {
        let key = format!("run/during-{i}.txt");
        store.put_bytes(&key, content(i), PutOptions::default()).await.unwrap();
        assert_eq!(store.get_bytes(&key, None).await.unwrap().1, content(i).as_bytes());
    }
    let err = store.flush_hot().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BackendUnavailable, "{}", err.message());
    let waiting = store.hot_status().await.unwrap().stats;
    assert_eq!((waiting.pending_versions, waiting.unflushed_objects), (10, 10));

    proxy.resume().await.unwrap();
    let flushed = store.flush_hot().await.unwrap();
    assert_eq!((flushed.versions, flushed.blobs), (10, 10));
    coffer::testkit::store::verify_clean(&store).await.unwrap();
    // Read from the bucket once the hot copies are gone.
    let later = coffer::Timestamp::now().plus(Duration::from_secs(91 * 86_400));
    assert_eq!(store.expire_hot(later, false).await.unwrap().copies, 11);
    for i in 0..10 {
        let (_, bytes) = store.get_bytes(&format!("run/during-{i}.txt"), None).await.unwrap();
        assert_eq!(bytes, content(i).as_bytes());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hot_protected_version_is_locked_when_the_flusher_writes_it() {
    let Some(mut s3) = coffer::testkit::services::moto_bucket().unwrap() else {
        return;
    };
    s3.object_lock = true;
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        hot: HotConfig::default(),
        ..on_bucket(&s3, dir.path())
    };
    let store = Store::open(&config).await.unwrap().with_actor("tester");
    let held = PutOptions {
        legal_hold: true,
        ..PutOptions::default()
    };
    let version = store.put_bytes("evidence/e.txt", "exhibit", held).await.unwrap();
    let blob = version.blob_path.clone().unwrap();
    assert!(
        coffer::testkit::services::s3_object_lock(&s3, &blob).await.is_err(),
        "not on the bucket yet"
    );
    store.flush_hot().await.unwrap();
    let (_, hold) = coffer::testkit::services::s3_object_lock(&s3, &blob).await.unwrap();
    assert_eq!(hold.as_deref(), Some("ON"), "the flushed blob carries the legal hold");
}
