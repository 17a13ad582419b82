//! Stores for the integration tests: one on local disk, one in memory, each
//! with its SQLite catalog in a temporary directory, and one on local disk
//! with a PostgreSQL catalog in a database of its own.

#![allow(dead_code, unused_macros, clippy::unwrap_used)] // each test file uses what it needs

use std::sync::Arc;

use coffer::backend::OpendalBackend;
use coffer::catalog::SqliteCatalog;
use coffer::testkit::TestDatabase;
use coffer::{Config, Store};

/// A store and the directory (and database) that hold it, removed when dropped.
pub struct Fixture {
    pub store: Store,
    pub dir: tempfile::TempDir,
    pub database: Option<TestDatabase>,
}

/// The embedded default: local disk and SQLite, acting as `tester`.
pub async fn fs_store() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&Config::embedded(dir.path().join("data")))
        .await
        .unwrap()
        .with_actor("tester");
    Fixture {
        store,
        dir,
        database: None,
    }
}

/// The memory backend with a SQLite catalog, acting as `tester`.
pub async fn memory_store() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let catalog = SqliteCatalog::open(&dir.path().join("catalog.db")).await.unwrap();
    let store = Store::from_parts(Arc::new(OpendalBackend::memory().unwrap()), Arc::new(catalog), "tester");
    Fixture {
        store,
        dir,
        database: None,
    }
}

/// Local disk with a PostgreSQL catalog in a fresh database, acting as
/// `tester`; `None` when no server answers (see `coffer::testkit::services`).
pub async fn pg_store() -> Option<Fixture> {
    let database = TestDatabase::create().await.unwrap()?;
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        catalog_url: Some(database.url().to_owned()),
        ..Config::embedded(dir.path().join("data"))
    };
    let store = Store::open(&config).await.unwrap().with_actor("tester");
    Some(Fixture {
        store,
        dir,
        database: Some(database),
    })
}

/// The embedded default in `dir`, encrypting with a key file of its own.
pub async fn encrypted_store(dir: &std::path::Path) -> Store {
    let key_file = dir.join("k.key");
    std::fs::write(&key_file, "11".repeat(32)).unwrap();
    let config = Config {
        encryption: coffer::crypto::EncryptionConfig {
            key_file: Some(key_file),
            ..coffer::crypto::EncryptionConfig::default()
        },
        ..Config::embedded(dir.join("data"))
    };
    Store::open(&config).await.unwrap()
}

/// Run each scenario on the embedded default and on a PostgreSQL catalog.
macro_rules! on_both_catalogs {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread")]
            async fn $name() { super::$name($crate::common::fs_store().await).await }
            )*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread")]
            async fn $name() { let Some(f) = $crate::common::pg_store().await else { return }; super::$name(f).await }
            )*
        }
    };
}
