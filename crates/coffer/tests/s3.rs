//! The store, unchanged, on an S3 bucket (the moto emulator): versions,
//! copies, deletes, multipart uploads of large objects, and verify.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use coffer::{BackendConfig, Config, PutOptions, Store};

#[tokio::test(flavor = "multi_thread")]
async fn a_store_on_s3_keeps_versions_and_large_objects() {
    let Some(mut s3) = coffer::testkit::services::moto_bucket().unwrap() else {
        return;
    };
    s3.part_size_mib = Some(5);
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        backend: BackendConfig::S3(Box::new(s3)),
        ..Config::embedded(dir.path().join("data"))
    };
    let store = Store::open(&config).await.unwrap().with_actor("tester");
    assert!(store.info().await.unwrap().backend.starts_with("s3://coffer-test-"));

    coffer::testkit::store::store_on_backend(&store).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_put_can_choose_its_storage_class() {
    let Some(s3) = coffer::testkit::services::moto_bucket().unwrap() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        backend: BackendConfig::S3(Box::new(s3.clone())),
        ..Config::embedded(dir.path().join("data"))
    };
    let store = Store::open(&config).await.unwrap();
    let class = |class: &str| PutOptions {
        storage_class: Some(class.to_owned()),
        ..PutOptions::default()
    };
    let rare = store
        .put_bytes("logs/2019.txt", "rarely read", class("STANDARD_IA"))
        .await
        .unwrap();
    let path = rare.blob_path.clone().unwrap();
    let shown = coffer::testkit::services::s3_storage_class(&s3, &path).await.unwrap();
    assert_eq!(shown.as_deref(), Some("STANDARD_IA"));
    let (_, bytes) = store.get_bytes("logs/2019.txt", None).await.unwrap();
    assert_eq!(&bytes[..], b"rarely read");
    let usual = store
        .put_bytes("logs/2024.txt", "read often", PutOptions::default())
        .await
        .unwrap();
    // A put without a class may wait in the hot store: the flusher writes it with the bucket's default.
    store.flush_hot().await.unwrap();
    let shown = coffer::testkit::services::s3_storage_class(&s3, usual.blob_path.as_deref().unwrap())
        .await
        .unwrap();
    assert_eq!(shown.as_deref(), Some("STANDARD"));

    let err = store
        .put_bytes("logs/bad.txt", "x", class("glacier"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), coffer::ErrorKind::InvalidInput, "{}", err.message());
    assert!(
        !store.exists("logs/bad.txt").await.unwrap(),
        "a refused class stores nothing"
    );

    let local = Store::open(&Config::embedded(dir.path().join("local"))).await.unwrap();
    let err = local.put_bytes("a.txt", "x", class("GLACIER")).await.unwrap_err();
    assert_eq!(err.kind(), coffer::ErrorKind::Unsupported);
    assert!(!local.exists("a.txt").await.unwrap());
}
