//! Stores for the integration tests: one on local disk, one in memory, each
//! with its SQLite catalog in a temporary directory.

#![allow(dead_code, clippy::unwrap_used)] // each test file uses what it needs

use std::sync::Arc;

use coffer::{Config, OpendalBackend, SqliteCatalog, Store};

/// A store and the directory that holds it (removed when dropped).
pub struct Fixture {
    pub store: Store,
    pub dir: tempfile::TempDir,
}

/// The embedded default: local disk and SQLite, acting as `tester`.
pub async fn fs_store() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&Config::embedded(dir.path().join("data")))
        .await
        .unwrap()
        .with_actor("tester");
    Fixture { store, dir }
}

/// The memory backend with a SQLite catalog, acting as `tester`.
pub async fn memory_store() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let catalog = SqliteCatalog::open(&dir.path().join("catalog.db")).await.unwrap();
    let store = Store::from_parts(Arc::new(OpendalBackend::memory().unwrap()), Arc::new(catalog), "tester");
    Fixture { store, dir }
}
