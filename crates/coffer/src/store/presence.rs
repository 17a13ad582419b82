//! Whether a store is there, for reads: they must find one, and create none.

use crate::catalog::CatalogLocation;
use crate::config::Config;
use crate::error::{Error, ErrorKind, Result};
use crate::settings::BackendConfig;

/// For a read: the embedded default's catalog file must exist (a catalog
/// given by URL is checked as it opens). Fails with [`ErrorKind::NoStore`].
pub(super) fn check_embedded_catalog(config: &Config) -> Result<()> {
    let missing = matches!(config.catalog_location()?, CatalogLocation::Sqlite(path) if !path.is_file());
    match config.catalog_url.is_none() && missing {
        true => Err(no_store_in_data_dir(config)),
        false => Ok(()),
    }
}

/// For a read: the directory of a local backend must exist.
pub(super) fn check_local_root(config: &Config) -> Result<()> {
    match &config.backend {
        BackendConfig::Fs { root: None } if !config.data_dir.join("store").is_dir() => {
            Err(no_store_in_data_dir(config))
        }
        BackendConfig::Fs { root: Some(root) } if !root.is_dir() => Err(Error::new(
            ErrorKind::NoStore,
            format!(
                "no store at {} (run `coffer init`, or check the backend's path)",
                shown_path(root)
            ),
        )),
        _ => Ok(()),
    }
}

fn no_store_in_data_dir(config: &Config) -> Error {
    Error::new(
        ErrorKind::NoStore,
        format!(
            "no store at {} (run `coffer init`, or pass --data-dir)",
            shown_path(&config.data_dir)
        ),
    )
}

/// A path as a user would type it: relative ones start with `./`.
fn shown_path(path: &std::path::Path) -> String {
    match path.is_relative() && !path.starts_with(".") {
        true => format!("./{}", path.display()),
        false => path.display().to_string(),
    }
}
