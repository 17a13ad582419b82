//! Where a catalog lives: parsing a catalog URL and opening what it names.

use std::fmt::{Debug, Display};
use std::path::PathBuf;
use std::sync::Arc;

#[cfg(feature = "catalog-postgres")]
use super::PostgresCatalog;
use super::{Catalog, SqliteCatalog};
use crate::error::{Error, ErrorKind, Result};

/// Where a catalog lives, as its URL names it.
#[derive(Clone, PartialEq, Eq)]
pub enum CatalogLocation {
    /// An embedded SQLite file: `sqlite://PATH` (or `sqlite:PATH`).
    Sqlite(PathBuf),
    /// A PostgreSQL database: `postgres://` or `postgresql://` URL.
    Postgres(String),
}

impl CatalogLocation {
    /// Parse a catalog URL.
    pub fn parse(url: &str) -> Result<Self> {
        let shown = crate::redact::redact_url(url);
        if let Some(path) = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")) {
            if path.is_empty() {
                return Err(Error::invalid_input("catalog URL sqlite:// names no file"));
            }
            return Ok(CatalogLocation::Sqlite(PathBuf::from(path)));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            if cfg!(feature = "catalog-postgres") {
                return Ok(CatalogLocation::Postgres(url.to_owned()));
            }
            return Err(Error::not_built(
                &format!("catalog {shown}: PostgreSQL"),
                "catalog-postgres",
            ));
        }
        Err(Error::invalid_input(format!(
            "unsupported catalog URL {shown}: expected sqlite://PATH or postgres://USER@HOST/DB"
        )))
    }

    /// Open the catalog only if it exists (a SQLite file, or a PostgreSQL
    /// database that coffer has migrated): creates nothing, and fails with
    /// [`ErrorKind::NoStore`] when there is none.
    pub async fn open_existing(&self) -> Result<Arc<dyn Catalog>> {
        match self {
            CatalogLocation::Sqlite(path) if !path.is_file() => Err(Error::new(
                ErrorKind::NoStore,
                format!("no catalog at {self} (run `coffer init`, or check --catalog)"),
            )),
            #[cfg(feature = "catalog-postgres")]
            CatalogLocation::Postgres(url) => Ok(Arc::new(PostgresCatalog::connect_existing(url).await?)),
            _ => self.open().await,
        }
    }

    /// Open the catalog, creating (and migrating) it if needed.
    pub async fn open(&self) -> Result<Arc<dyn Catalog>> {
        match self {
            CatalogLocation::Sqlite(path) => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir)
                        .map_err(|e| Error::io(&format!("cannot create {}", dir.display()), e))?;
                }
                Ok(Arc::new(SqliteCatalog::open(path).await?))
            }
            #[cfg(feature = "catalog-postgres")]
            CatalogLocation::Postgres(url) => Ok(Arc::new(PostgresCatalog::connect(url).await?)),
            #[cfg(not(feature = "catalog-postgres"))]
            CatalogLocation::Postgres(_) => Err(Error::not_built("PostgreSQL catalogs", "catalog-postgres")),
        }
    }
}

impl Debug for CatalogLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CatalogLocation::Sqlite(path) => write!(f, "sqlite://{}", path.display()),
            CatalogLocation::Postgres(url) => f.write_str(&crate::redact::redact_url(url)),
        }
    }
}

impl Display for CatalogLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        Debug::fmt(self, f)
    }
}
