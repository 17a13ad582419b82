//! The store, unchanged, on real object-store servers that the project's
//! scripts start: Garage (S3) and Azurite (Azure Blob). Versions, copies,
//! deletes, large objects, verify, and presigned URLs used by a plain HTTP
//! client: downloads, uploads committed as versions, expiry and tampering.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::time::Duration;

use coffer::{BackendConfig, Config, ErrorKind, PutOptions, Store};

async fn open(backend: BackendConfig, dir: &tempfile::TempDir) -> Store {
    let config = Config {
        backend,
        ..Config::embedded(dir.path().join("data"))
    };
    Store::open(&config).await.unwrap().with_actor("tester")
}

/// A presigned GET serves the version's bytes to a client without
/// credentials; a presigned PUT takes bytes that `commit_upload` makes the
/// next version.
async fn presigned_urls_serve_and_take_bytes(store: &Store) -> String {
    let http = reqwest::Client::new();
    let v1 = store
        .put_bytes("shared/report.csv", "region,total\nnorth,10\n", PutOptions::default())
        .await
        .unwrap();
    store
        .put_bytes("shared/report.csv", "region,total\nnorth,12\n", PutOptions::default())
        .await
        .unwrap();

    let url = store
        .presign_get("shared/report.csv", Some(&v1.version_id), Duration::from_secs(300))
        .await
        .unwrap();
    let response = http.get(&url.url).send().await.unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    assert_eq!(&response.bytes().await.unwrap()[..], b"region,total\nnorth,10\n");

    let upload = store
        .presign_put("shared/report.csv", Duration::from_secs(300))
        .await
        .unwrap();
    let mut request = http.put(&upload.url.url).body("region,total\nnorth,15\n");
    for (name, value) in &upload.url.headers {
        request = request.header(name, value);
    }
    let response = request.send().await.unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    assert!(
        store.versions("shared/report.csv").await.unwrap().len() == 2,
        "an upload is no version yet"
    );
    let committed = store
        .commit_upload("shared/report.csv", &upload.upload_id, PutOptions::default())
        .await
        .unwrap();
    let (latest, bytes) = store.get_bytes("shared/report.csv", None).await.unwrap();
    assert_eq!(latest.version_id, committed.version_id);
    assert_eq!(&bytes[..], b"region,total\nnorth,15\n");
    let again = store
        .commit_upload("shared/report.csv", &upload.upload_id, PutOptions::default())
        .await
        .unwrap_err();
    assert_eq!(again.kind(), ErrorKind::NotFound, "an upload commits once");
    url.url
}

/// The URL with one character of its signature changed.
fn tampered(url: &str, signature_param: &str) -> String {
    let start = url.find(&format!("{signature_param}=")).unwrap() + signature_param.len() + 1;
    let mut bytes = url.as_bytes().to_vec();
    // Change one letter or digit of the signature, never a %XX escape: a
    // broken escape is a malformed URL, which a server may answer otherwise.
    let mut at = start;
    while !bytes[at].is_ascii_alphanumeric() || bytes[at - 1] == b'%' || bytes[at - 2] == b'%' {
        at += 1;
    }
    bytes[at] = if bytes[at] == b'a' { b'b' } else { b'a' };
    String::from_utf8(bytes).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_store_on_garage_keeps_versions_and_serves_presigned_urls() {
    let Some(mut s3) = coffer::testkit::services::garage_bucket().unwrap() else {
        return;
    };
    s3.part_size_mib = Some(5);
    let dir = tempfile::tempdir().unwrap();
    let store = open(BackendConfig::S3(Box::new(s3)), &dir).await;
    assert!(store.info().await.unwrap().backend.starts_with("s3://coffer-test-"));
    coffer::testkit::store::store_on_backend(&store).await.unwrap();
    let url = presigned_urls_serve_and_take_bytes(&store).await;

    // Garage checks signatures and expiry (moto does not).
    let http = reqwest::Client::new();
    let status = http
        .get(tampered(&url, "X-Amz-Signature"))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status.as_u16(), 403, "a changed signature is refused");
    // The signing time is truncated to the second, so a URL valid for 2 s
    // stays valid for at least one more, even on a loaded machine.
    let short = store
        .presign_get("shared/report.csv", None, Duration::from_secs(2))
        .await
        .unwrap();
    assert!(http.get(&short.url).send().await.unwrap().status().is_success());
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let status = http.get(&short.url).send().await.unwrap().status();
    // Garage answers 400 (AccessDenied: expired), AWS 403.
    assert!(
        matches!(status.as_u16(), 400 | 403),
        "an expired URL is refused, not {status}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_store_on_azure_keeps_versions_and_serves_sas_urls() {
    let Some(azure) = coffer::testkit::services::azurite_container().unwrap() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let store = open(BackendConfig::Azure(Box::new(azure)), &dir).await;
    assert!(store.info().await.unwrap().backend.starts_with("azblob://coffer-test-"));
    coffer::testkit::store::store_on_backend(&store).await.unwrap();
    let url = presigned_urls_serve_and_take_bytes(&store).await;
    let status = reqwest::get(tampered(&url, "sig")).await.unwrap().status();
    assert_eq!(status.as_u16(), 403, "a changed signature is refused");
}

#[tokio::test(flavor = "multi_thread")]
async fn blobs_get_their_access_tier_on_azure() {
    let Some(mut azure) = coffer::testkit::services::azurite_container().unwrap() else {
        return;
    };
    azure.access_tier = Some("cool".into());
    let dir = tempfile::tempdir().unwrap();
    let store = open(BackendConfig::Azure(Box::new(azure)), &dir).await;
    let version = store
        .put_bytes("cold/a.txt", "cool bytes", PutOptions::default())
        .await
        .unwrap();
    let (_, bytes) = store.get_bytes("cold/a.txt", None).await.unwrap();
    assert_eq!(&bytes[..], b"cool bytes");
    // The blob's properties (a HEAD with a read SAS) show its tier.
    let url = store
        .presign_get("cold/a.txt", Some(&version.version_id), Duration::from_secs(60))
        .await
        .unwrap();
    let response = reqwest::Client::new().head(&url.url).send().await.unwrap();
    assert_eq!(
        response.headers().get("x-ms-access-tier").and_then(|v| v.to_str().ok()),
        Some("Cool")
    );
    // One put can choose another tier.
    let hot = PutOptions {
        storage_class: Some("hot".into()),
        ..PutOptions::default()
    };
    let other = store.put_bytes("cold/b.txt", "hot bytes", hot).await.unwrap();
    let url = store
        .presign_get("cold/b.txt", Some(&other.version_id), Duration::from_secs(60))
        .await
        .unwrap();
    let response = reqwest::Client::new().head(&url.url).send().await.unwrap();
    assert_eq!(
        response.headers().get("x-ms-access-tier").and_then(|v| v.to_str().ok()),
        Some("Hot")
    );
    // Archived content cannot be read until restored: one line of its own kind.
    let archive = PutOptions {
        storage_class: Some("Archive".into()),
        ..PutOptions::default()
    };
    let archived = store.put_bytes("cold/c.txt", "archived bytes", archive).await.unwrap();
    let err = store.get_bytes("cold/c.txt", None).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Archived, "{}", err.message());
    assert!(
        err.message().starts_with(&format!(
            "cold/c.txt version {} is archived: restore it first (it is in an archive storage class on azure http://",
            archived.version_id
        )),
        "{}",
        err.message()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn local_disk_cannot_presign_and_says_what_can() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&Config::embedded(dir.path())).await.unwrap();
    store.put_bytes("a.txt", "x", PutOptions::default()).await.unwrap();
    let err = store
        .presign_get("a.txt", None, Duration::from_secs(60))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported);
    assert!(err.message().contains("S3 and Azure"), "{}", err.message());
    let err = store.presign_put("a.txt", Duration::from_secs(60)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported);
    let err = store
        .presign_get("a.txt", None, Duration::from_secs(8 * 24 * 3600))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{}", err.message());
}

#[tokio::test(flavor = "multi_thread")]
async fn versions_move_between_local_disk_and_a_cold_bucket_without_changing() {
    let Some(mut cold) = coffer::testkit::services::garage_bucket().unwrap() else {
        return;
    };
    cold.storage_class = Some("GLACIER".into());
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::embedded(dir.path().join("data"));
    config
        .stores
        .insert("glacier".into(), BackendConfig::S3(Box::new(cold.clone())));
    config.cold_store = Some("glacier".into());
    let store = Store::open(&config).await.unwrap().with_actor("archivist");
    let v1 = store
        .put_bytes("records/2019.csv", "old,rows\n", PutOptions::default())
        .await
        .unwrap();
    let v2 = store
        .put_bytes("records/2019.csv", "new,rows\n", PutOptions::default())
        .await
        .unwrap();
    assert_eq!(
        store.tier_of("records/2019.csv", Some(&v1.version_id)).await.unwrap(),
        coffer::Tier::Hot
    );
    // Still in the hot store, bound for the hot tier: showing that writes nothing.
    let hot = coffer::backend::OpendalBackend::fs(&dir.path().join("data/store")).unwrap();
    let path = v1.blob_path.clone().unwrap();
    assert_eq!(coffer::backend::Backend::stat(&hot, &path).await.unwrap(), None);

    let moved = store
        .move_to_tier("records/2019.csv", &v1.version_id, coffer::Tier::Cold)
        .await
        .unwrap();
    assert!(moved.moved);
    assert_eq!(moved.version_id, v1.version_id, "the id stays");
    assert_eq!(
        store.tier_of("records/2019.csv", Some(&v1.version_id)).await.unwrap(),
        coffer::Tier::Cold
    );
    // The hot tier no longer has it; the bucket does, at the same path.
    assert_eq!(coffer::backend::Backend::stat(&hot, &path).await.unwrap(), None);
    let bucket = coffer::backend::OpendalBackend::s3(&cold).await.unwrap();
    assert_eq!(coffer::backend::Backend::stat(&bucket, &path).await.unwrap(), Some(9));
    // Reads find it there; the version list is the same.
    let (_, bytes) = store.get_bytes("records/2019.csv", Some(&v1.version_id)).await.unwrap();
    assert_eq!(&bytes[..], b"old,rows\n");
    let ids: Vec<_> = store
        .versions("records/2019.csv")
        .await
        .unwrap()
        .into_iter()
        .map(|v| v.version_id)
        .collect();
    assert_eq!(ids, vec![v2.version_id.clone(), v1.version_id.clone()]);
    let again = store
        .move_to_tier("records/2019.csv", &v1.version_id, coffer::Tier::Cold)
        .await
        .unwrap();
    assert!(!again.moved, "already there");
    let audit = store
        .audit(&coffer::AuditQuery {
            action: Some("tier".into()),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].actor, "archivist");
    coffer::testkit::store::verify_clean(&store).await.unwrap();

    store
        .move_to_tier("records/2019.csv", &v1.version_id, coffer::Tier::Hot)
        .await
        .unwrap();
    assert_eq!(coffer::backend::Backend::stat(&bucket, &path).await.unwrap(), None);
    let (_, bytes) = store.get_bytes("records/2019.csv", Some(&v1.version_id)).await.unwrap();
    assert_eq!(&bytes[..], b"old,rows\n");

    // Without a cold tier, the call says what is missing.
    let plain = Store::open(&Config::embedded(dir.path().join("data"))).await.unwrap();
    let err = plain
        .move_to_tier("records/2019.csv", &v1.version_id, coffer::Tier::Cold)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.message().contains("cold_store"), "{}", err.message());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_store_migrates_from_local_disk_to_a_bucket_and_resumes() {
    let Some(target) = coffer::testkit::services::garage_bucket().unwrap() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let config = Config::embedded(dir.path().join("data"));
    let store = Store::open(&config).await.unwrap().with_actor("operator");
    let first = store.put_bytes("a/one.txt", "1", PutOptions::default()).await.unwrap();
    store
        .tag(
            "a/one.txt",
            &first.version_id,
            [("qc".to_owned(), "ok".to_owned())].into_iter().collect(),
            &[],
        )
        .await
        .unwrap();
    store.comment("a/one.txt", &first.version_id, "checked").await.unwrap();
    store.put_bytes("a/one.txt", "11", PutOptions::default()).await.unwrap();
    store
        .put_bytes("b/two.bin", vec![7u8; 3 << 20], PutOptions::default())
        .await
        .unwrap();
    store.delete("b/two.bin").await.unwrap();
    store.copy("a/one.txt", "c/copy.txt", Default::default()).await.unwrap();

    let bucket = coffer::backend::OpendalBackend::s3(&target).await.unwrap();
    let report = store
        .migrate_to(&bucket, &coffer::MigrateOptions::default())
        .await
        .unwrap();
    assert!(report.is_complete(), "{report:?}");
    assert_eq!((report.blobs_copied, report.blobs_present), (3, 0));
    assert_eq!(
        report.manifests_copied, 5,
        "every version's manifest, the delete marker's too"
    );

    // An interrupted run is completed by the next one: remove part of what arrived.
    let (_, blob) = store
        .get_bytes(
            "b/two.bin",
            Some(&store.versions("b/two.bin").await.unwrap()[1].version_id),
        )
        .await
        .unwrap();
    assert_eq!(blob.len(), 3 << 20);
    let two = store.versions("b/two.bin").await.unwrap()[1].blob_path.clone().unwrap();
    coffer::backend::Backend::delete(&bucket, &two).await.unwrap();
    let again = store
        .migrate_to(&bucket, &coffer::MigrateOptions::default())
        .await
        .unwrap();
    assert_eq!((again.blobs_copied, again.blobs_present), (1, 2), "{again:?}");
    assert_eq!((again.manifests_copied, again.manifests_present), (0, 5));

    // The same catalog on the bucket: every version, tag and comment, verified clean.
    let switched = Store::open(&Config {
        backend: BackendConfig::S3(Box::new(target)),
        ..config
    })
    .await
    .unwrap();
    let (v1, bytes) = switched.get_bytes("a/one.txt", Some(&first.version_id)).await.unwrap();
    assert_eq!(&bytes[..], b"1");
    assert_eq!(v1.tags.get("qc").map(String::as_str), Some("ok"));
    assert_eq!(v1.comments[0].text, "checked");
    coffer::testkit::store::verify_clean(&switched).await.unwrap();
    // A fresh catalog rebuilt from the bucket alone has the versions too.
    let rebuilt = coffer::catalog::SqliteCatalog::open(&dir.path().join("rebuilt.db"))
        .await
        .unwrap();
    let reindex = switched.reindex_into(&rebuilt).await.unwrap();
    assert_eq!(reindex.versions, 5, "{reindex:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_directory_imports_into_a_bucket_one_put_per_file() {
    let Some(s3) = coffer::testkit::services::garage_bucket().unwrap() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    for i in 0..20 {
        let path = tree.join(format!("d{}/f{i}.txt", i % 3));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, format!("file {i}")).unwrap();
    }
    let store = open(BackendConfig::S3(Box::new(s3)), &dir).await;
    assert!(
        !store.backend().capabilities().batch_sync,
        "every write to a bucket is durable on its own"
    );
    let options = coffer::ImportOptions {
        prefix: "in/".into(),
        jobs: 4,
        ..coffer::ImportOptions::default()
    };
    let report = store.import_dir(&tree, &options).await.unwrap();
    assert_eq!((report.files, report.failed.len()), (20, 0), "{report:?}");
    let (_, bytes) = store.get_bytes("in/d1/f7.txt", None).await.unwrap();
    assert_eq!(&bytes[..], b"file 7");
    coffer::testkit::store::store_on_backend(&store).await.unwrap();
}
