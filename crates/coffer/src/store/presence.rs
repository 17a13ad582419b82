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
        // No data directory: the usual mistake is the working directory or --data-dir.
        BackendConfig::Fs { root: None } if !config.data_dir.is_dir() => Err(no_store_in_data_dir(config)),
        // A data directory without the local backend's folder (its catalog
        // may be there, for a store on another backend): name what is missing.
        BackendConfig::Fs { root: None } if !config.data_dir.join("store").is_dir() => Err(Error::new(
            ErrorKind::NoStore,
            format!(
                "no store at {} (the local backend's folder is missing: run `coffer init`, or check the backend's kind)",
                shown_path(&config.data_dir.join("store"))
            ),
        )),
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

impl super::Store {
    /// The one test of a backend location that is not the store's: the
    /// catalog records blobs, yet the location (bucket and prefix, root,
    /// container) lists nothing under `blobs/` nor under `manifests/` — a
    /// mistyped prefix or root rather than lost content (a store that lost
    /// its blobs still holds their manifests). Reads then say "no store at
    /// ..." instead of "its blob is missing", and `verify` refuses (its
    /// repairs would write manifests into the wrong place). Costs one catalog
    /// count and the first entry of at most two listings.
    pub(super) async fn wrong_location(&self) -> Result<Option<Error>> {
        // Content the hot store has not flushed yet is not on the backend.
        let blobs = self.catalog.stats().await?.blobs;
        if blobs <= self.catalog.hot_stats().await?.unflushed_objects {
            return Ok(None);
        }
        for dir in [crate::layout::BLOBS_DIR, crate::layout::MANIFESTS_DIR] {
            let mut listing = self.backend.list(dir).await?;
            if futures::StreamExt::next(&mut listing).await.transpose()?.is_some() {
                return Ok(None);
            }
        }
        Ok(Some(Error::new(
            ErrorKind::NoStore,
            format!(
                "no store at {}: it holds no blobs or manifests, though the catalog has versions stored there (check the backend's bucket, prefix or root)",
                self.backend
            ),
        )))
    }

    /// A failed read of a version's blob, said of the version `what`: a
    /// location that holds none of the store's content is no store there;
    /// otherwise a missing blob is damage, and archived content is named.
    pub(super) async fn unreadable_blob(&self, err: Error, what: &str) -> Error {
        if err.kind() == ErrorKind::NotFound
            && let Ok(Some(wrong)) = self.wrong_location().await
        {
            return wrong;
        }
        missing_blob(err, what)
    }
}

/// A failed read of a version's blob, said of the version: a missing blob
/// is damage; archived content is named.
fn missing_blob(err: Error, what: &str) -> Error {
    match err.kind() {
        ErrorKind::NotFound => Error::new(
            ErrorKind::IntegrityMismatch,
            format!("{what}: its blob is missing from the backend"),
        ),
        _ => archived_version(err, what),
    }
}

/// A failure to read or move archived content, said of the version `what`
/// (`KEY version ID`) whose content it is: the one place that message is
/// built, for `get` and `tier move` alike. Other errors pass unchanged.
pub(crate) fn archived_version(err: Error, what: &str) -> Error {
    match err.kind() {
        // The backend's message reads "archived: restore it first (...)".
        ErrorKind::Archived => Error::new(ErrorKind::Archived, format!("{what} is {}", err.message())).with_source(err),
        _ => err,
    }
}
