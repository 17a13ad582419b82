//! Both port suites against every in-tree implementation.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::sync::Arc;

use coffer::backend::{Backend, OpendalBackend};
use coffer::catalog::{Catalog, PostgresCatalog, SqliteCatalog};
use coffer::testkit::TestDatabase;

#[tokio::test(flavor = "multi_thread")]
async fn fs_backend_passes_the_backend_suite() {
    let dir = tempfile::tempdir().unwrap();
    let backend = OpendalBackend::fs(dir.path()).unwrap();
    coffer::testkit::backend::backend_suite(&backend).await.unwrap();
    assert!(backend.capabilities().persistent);
}

#[tokio::test(flavor = "multi_thread")]
async fn memory_backend_passes_the_backend_suite() {
    let backend = OpendalBackend::memory().unwrap();
    coffer::testkit::backend::backend_suite(&backend).await.unwrap();
    assert!(!backend.capabilities().persistent);
}

#[tokio::test(flavor = "multi_thread")]
async fn s3_backend_on_the_emulator_passes_the_backend_suite() {
    let Some(mut config) = coffer::testkit::services::moto_bucket().unwrap() else {
        return;
    };
    config.secret_access_key = Some("s3cr3t-value".into());
    let backend = OpendalBackend::s3(&config).await.unwrap();
    coffer::testkit::backend::backend_suite(&backend).await.unwrap();
    for shown in [backend.to_string(), format!("{backend:?}"), format!("{config:?}")] {
        assert!(!shown.contains("s3cr3t"), "no secret in {shown}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn s3_backend_on_garage_passes_the_backend_suite() {
    let Some(config) = coffer::testkit::services::garage_bucket().unwrap() else {
        return;
    };
    let backend = OpendalBackend::s3(&config).await.unwrap();
    coffer::testkit::backend::backend_suite(&backend).await.unwrap();
    assert!(backend.capabilities().presign && backend.capabilities().persistent);
    backend.health().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn azure_backend_on_azurite_passes_the_backend_suite() {
    let Some(config) = coffer::testkit::services::azurite_container().unwrap() else {
        return;
    };
    let backend = OpendalBackend::azure(&config).await.unwrap();
    coffer::testkit::backend::backend_suite(&backend).await.unwrap();
    assert!(backend.capabilities().presign, "an account key signs SAS URLs");
    assert!(backend.capabilities().persistent);
    backend.health().await.unwrap();
    for shown in [backend.to_string(), format!("{backend:?}"), format!("{config:?}")] {
        assert!(!shown.contains("Eby8vdM02"), "no account key in {shown}");
    }
    // A second open of the same container (it exists now) works too.
    OpendalBackend::azure(&config).await.unwrap().health().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_catalog_passes_the_catalog_suite() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = Arc::new(SqliteCatalog::open(&dir.path().join("catalog.db")).await.unwrap());
    coffer::testkit::catalog::catalog_suite(catalog.as_ref()).await.unwrap();
    // A second handle on the same file (as a second process would have) sees the same data and stays sound.
    let again = SqliteCatalog::open(&dir.path().join("catalog.db")).await.unwrap();
    coffer::testkit::catalog::catalog_suite(&again).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_catalog_passes_the_catalog_suite() {
    let Some(database) = TestDatabase::create().await.unwrap() else {
        return;
    };
    let catalog = PostgresCatalog::connect(database.url()).await.unwrap();
    coffer::testkit::catalog::catalog_suite(&catalog).await.unwrap();
    // A second pool on the same database (as a second process would have) sees the same data and stays sound.
    let again = PostgresCatalog::connect(database.url()).await.unwrap();
    coffer::testkit::catalog::catalog_suite(&again).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_audit_rows_change_only_by_a_purge() {
    use sqlx::Connection;
    let Some(database) = TestDatabase::create().await.unwrap() else {
        return;
    };
    let catalog = PostgresCatalog::connect(database.url()).await.unwrap();
    let key = coffer::ObjectKey::new("k").unwrap();
    catalog
        .record_read(&key, &coffer::VersionId::generate(), "reader", serde_json::Value::Null)
        .await
        .unwrap();
    // A stray client, even one that sets a cutoff older than the rows, can neither change nor remove them.
    let mut raw = sqlx::PgConnection::connect(database.url()).await.unwrap();
    for sql in [
        "DELETE FROM audit",
        "UPDATE audit SET actor = 'someone else'",
        "BEGIN; SET LOCAL coffer.audit_purge_before = '1'; DELETE FROM audit; COMMIT",
    ] {
        let err = sqlx::raw_sql(sql).execute(&mut raw).await.expect_err(sql);
        assert!(err.to_string().contains("append-only"), "{sql}: {err}");
        let _ = sqlx::raw_sql("ROLLBACK").execute(&mut raw).await;
    }
    let far_future = coffer::Timestamp::from_micros(i64::MAX);
    let removed = catalog
        .purge_audit(far_future, "purger", serde_json::Value::Null, false)
        .await
        .unwrap();
    assert_eq!(removed, 1);
    let rows = catalog
        .audit(&coffer::AuditQuery {
            limit: 10,
            ..coffer::AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(rows.len(), 1, "the purge keeps the row that records it");
    assert_eq!(rows[0].action, "audit_purge");
    assert!(sqlx::raw_sql("DELETE FROM audit").execute(&mut raw).await.is_err());
}
