//! The `[bundles]` table and its `COFFER_BUNDLE_*` variables.

use serde::Deserialize;

use super::unzip::UnzipLimits;
use crate::error::{Error, Result};
use crate::settings::BackendKind;

/// How a bundle's resources are laid out on the backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum Layout {
    /// Each resource a coffer object under the bundle's prefix.
    Directory,
    /// One zip object per bundle, streamed while resources arrive.
    Zip,
}

impl Layout {
    /// Its name: `directory` or `zip`.
    pub fn as_str(self) -> &'static str {
        match self {
            Layout::Directory => "directory",
            Layout::Zip => "zip",
        }
    }

    /// Read a layout's name (`dir` for short).
    pub fn parse(text: &str) -> Result<Layout> {
        match text.trim() {
            "directory" | "dir" => Ok(Layout::Directory),
            "zip" => Ok(Layout::Zip),
            other => Err(Error::invalid_input(format!(
                "unknown bundle layout {other:?}: expected dir or zip"
            ))),
        }
    }

    /// The layout a backend of `kind` gets unless told: a directory on
    /// local disk and in memory, one zip on object stores.
    pub fn default_for(kind: BackendKind) -> Layout {
        match kind {
            BackendKind::Fs | BackendKind::Memory => Layout::Directory,
            _ => Layout::Zip,
        }
    }
}

/// Bundles' settings (`[bundles]`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BundleConfig {
    /// The layout of new bundles (`None`: by backend, see [`Layout::default_for`]).
    pub layout: Option<Layout>,
    /// Expand gzip and zip resources of new bundles.
    pub unzip: bool,
    /// Prepended to `bundles/<id>/` (like `captures/2024/`).
    pub prefix: String,
    /// Completion is refused while no SQS hook takes `bundle.completed`
    /// (as the users' S3 pipeline requires).
    pub require_sqs: bool,
    /// Zip layout: deflate level of resources not compressed already
    /// (0 stores them as they are; 1 is fastest, 9 smallest). 1 by default.
    pub compression_level: u32,
    /// Total bytes one compressed resource may expand to. 1 GiB by default.
    pub max_expanded_bytes: u64,
    /// Expanded bytes per compressed byte one resource may reach. 100 by default.
    pub max_ratio: u64,
    /// Entries one zip resource may hold. 10,000 by default.
    pub max_entries: usize,
}

impl Default for BundleConfig {
    fn default() -> Self {
        let limits = UnzipLimits::default();
        BundleConfig {
            layout: None,
            unzip: false,
            prefix: String::new(),
            require_sqs: false,
            compression_level: 1,
            max_expanded_bytes: limits.max_expanded_bytes,
            max_ratio: limits.max_ratio,
            max_entries: limits.max_entries,
        }
    }
}

impl BundleConfig {
    /// The limits of the unzip decorator.
    pub fn limits(&self) -> UnzipLimits {
        UnzipLimits {
            max_expanded_bytes: self.max_expanded_bytes,
            max_ratio: self.max_ratio,
            max_entries: self.max_entries,
        }
    }

    /// Refuse settings out of range, in one line.
    pub fn validate(&self) -> Result<()> {
        if self.compression_level > 9 {
            return Err(Error::invalid_input(format!(
                "bundles.compression_level = {} is out of range: use 0 (store) to 9",
                self.compression_level
            )));
        }
        if self.max_expanded_bytes == 0 || self.max_ratio == 0 || self.max_entries == 0 {
            return Err(Error::invalid_input(
                "bundles.max_expanded_bytes, max_ratio and max_entries must be at least 1",
            ));
        }
        if !self.prefix.is_empty() {
            crate::key::ObjectKey::new(format!("{}bundles/x", self.prefix))
                .map_err(|e| Error::invalid_input(format!("bundles.prefix = {:?}: {}", self.prefix, e.message())))?;
        }
        Ok(())
    }

    /// Apply `COFFER_BUNDLE_LAYOUT` (`dir` or `zip`), `COFFER_BUNDLE_UNZIP`,
    /// `COFFER_BUNDLE_PREFIX` and `COFFER_BUNDLE_REQUIRE_SQS` as `lookup`
    /// reports them.
    pub(crate) fn apply_env(&mut self, lookup: impl Fn(&str) -> Option<String>) -> Result<()> {
        let set = |var: &str| lookup(var).filter(|v| !v.trim().is_empty());
        if let Some(layout) = set("COFFER_BUNDLE_LAYOUT") {
            self.layout = Some(
                Layout::parse(&layout)
                    .map_err(|e| Error::invalid_input(format!("COFFER_BUNDLE_LAYOUT={layout:?}: {}", e.message())))?,
            );
        }
        if let Some(unzip) = set("COFFER_BUNDLE_UNZIP") {
            self.unzip = crate::settings::parse_flag("COFFER_BUNDLE_UNZIP", &unzip)?;
        }
        if let Some(prefix) = lookup("COFFER_BUNDLE_PREFIX") {
            self.prefix = prefix;
        }
        if let Some(require) = set("COFFER_BUNDLE_REQUIRE_SQS") {
            self.require_sqs = crate::settings::parse_flag("COFFER_BUNDLE_REQUIRE_SQS", &require)?;
        }
        self.validate()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_environment_sets_what_the_users_set() {
        let mut config = BundleConfig::default();
        config
            .apply_env(|var| match var {
                "COFFER_BUNDLE_LAYOUT" => Some("zip".to_owned()),
                "COFFER_BUNDLE_UNZIP" => Some("true".to_owned()),
                "COFFER_BUNDLE_PREFIX" => Some("captures/2024/".to_owned()),
                "COFFER_BUNDLE_REQUIRE_SQS" => Some("1".to_owned()),
                _ => None,
            })
            .unwrap();
        assert_eq!(config.layout, Some(Layout::Zip));
        assert!(config.unzip && config.require_sqs);
        assert_eq!(config.prefix, "captures/2024/");
        let err = BundleConfig::default()
            .apply_env(|var| (var == "COFFER_BUNDLE_LAYOUT").then(|| "tar".to_owned()))
            .unwrap_err();
        assert_eq!(
            err.message(),
            "COFFER_BUNDLE_LAYOUT=\"tar\": unknown bundle layout \"tar\": expected dir or zip"
        );
        let err = BundleConfig::default()
            .apply_env(|var| (var == "COFFER_BUNDLE_PREFIX").then(|| "../x/".to_owned()))
            .unwrap_err();
        assert!(err.message().starts_with("bundles.prefix = \"../x/\""), "{err}");
    }
}
