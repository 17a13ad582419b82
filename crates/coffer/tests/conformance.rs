//! Both port suites against every in-tree implementation.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::sync::Arc;

use coffer::testing::TestDatabase;
use coffer::{Backend, OpendalBackend, PostgresCatalog, SqliteCatalog, conformance};

#[tokio::test(flavor = "multi_thread")]
async fn fs_backend_passes_the_backend_suite() {
    let dir = tempfile::tempdir().unwrap();
    let backend = OpendalBackend::fs(dir.path()).unwrap();
    conformance::backend_suite(&backend).await.unwrap();
    assert!(backend.capabilities().persistent);
}

#[tokio::test(flavor = "multi_thread")]
async fn memory_backend_passes_the_backend_suite() {
    let backend = OpendalBackend::memory().unwrap();
    conformance::backend_suite(&backend).await.unwrap();
    assert!(!backend.capabilities().persistent);
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_catalog_passes_the_catalog_suite() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = Arc::new(SqliteCatalog::open(&dir.path().join("catalog.db")).await.unwrap());
    conformance::catalog_suite(catalog.as_ref()).await.unwrap();
    // A second handle on the same file (as a second process would have) sees the same data and stays sound.
    let again = SqliteCatalog::open(&dir.path().join("catalog.db")).await.unwrap();
    conformance::catalog_suite(&again).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_catalog_passes_the_catalog_suite() {
    let Some(database) = TestDatabase::create().await.unwrap() else {
        return;
    };
    let catalog = PostgresCatalog::connect(database.url()).await.unwrap();
    conformance::catalog_suite(&catalog).await.unwrap();
    // A second pool on the same database (as a second process would have) sees the same data and stays sound.
    let again = PostgresCatalog::connect(database.url()).await.unwrap();
    conformance::catalog_suite(&again).await.unwrap();
}
