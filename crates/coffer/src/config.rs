//! Configuration: defaults, then a TOML file, then `COFFER_*` environment
//! variables; callers (the CLI's flags) override the result last.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::catalog::CatalogLocation;
use crate::error::{Error, Result};

/// Name of the config file looked for in the working directory.
pub const DEFAULT_CONFIG_FILE: &str = "coffer.toml";
/// The embedded default's data directory.
pub const DEFAULT_DATA_DIR: &str = "coffer-data";

/// Where a store keeps its bytes.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum BackendConfig {
    /// A local directory (or a mounted NAS share).
    Fs {
        /// The directory; `<data_dir>/store` when absent.
        root: Option<PathBuf>,
    },
    /// Process memory: gone when the process ends.
    Memory,
}

impl Default for BackendConfig {
    fn default() -> Self {
        BackendConfig::Fs { root: None }
    }
}

/// Everything needed to open a [`Store`](crate::Store).
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The embedded default's home: holds `catalog.db` and `store/`.
    pub data_dir: PathBuf,
    /// The catalog: `sqlite://PATH` or `postgres://...` (default `sqlite://<data_dir>/catalog.db`).
    pub catalog_url: Option<String>,
    /// The backend.
    pub backend: BackendConfig,
    /// The actor recorded for changes; the OS user when absent.
    pub user: Option<String>,
    /// Keep at most this many versions of a key: every put prunes older
    /// untagged versions beyond it. Unlimited when absent.
    pub max_versions: Option<usize>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from(DEFAULT_DATA_DIR),
            catalog_url: None,
            backend: BackendConfig::default(),
            user: None,
            max_versions: None,
        }
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("data_dir", &self.data_dir)
            .field("catalog_url", &self.catalog_url.as_deref().map(redact_url))
            .field("backend", &self.backend)
            .field("user", &self.user)
            .field("max_versions", &self.max_versions)
            .finish()
    }
}

/// The URL with any password (in the user part, or a `password=` query
/// parameter) replaced by `***`, for logs and messages.
pub fn redact_url(url: &str) -> String {
    let url = match url.split_once('?') {
        Some((base, query)) => {
            let params: Vec<String> = query
                .split('&')
                .map(|param| match param.split_once('=') {
                    Some((name, _)) if name.eq_ignore_ascii_case("password") => format!("{name}=***"),
                    _ => param.to_owned(),
                })
                .collect();
            format!("{base}?{}", params.join("&"))
        }
        None => url.to_owned(),
    };
    let Some((scheme, rest)) = url.split_once("://") else {
        return url;
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(user, _)| user);
            let hidden = if userinfo.contains(':') { ":***" } else { "" };
            format!("{scheme}://{user}{hidden}@{host}{path}")
        }
        None => url,
    }
}

impl Config {
    /// The embedded default rooted at `data_dir`: local disk and SQLite.
    pub fn embedded(data_dir: impl Into<PathBuf>) -> Self {
        Config {
            data_dir: data_dir.into(),
            ..Config::default()
        }
    }

    /// Defaults, then the TOML file (`file`, else `./coffer.toml` if present),
    /// then the environment: `COFFER_DATA_DIR`, `COFFER_CATALOG_URL` (else
    /// `DATABASE_URL`, when neither it nor the file names a catalog),
    /// `COFFER_BACKEND` (`fs` or `memory`), `COFFER_BACKEND_ROOT`, `COFFER_USER`,
    /// `COFFER_MAX_VERSIONS`.
    pub fn load(file: Option<&Path>) -> Result<Self> {
        let mut config = match file {
            Some(path) => Self::from_file(path)?,
            None if Path::new(DEFAULT_CONFIG_FILE).is_file() => Self::from_file(Path::new(DEFAULT_CONFIG_FILE))?,
            None => Config::default(),
        };
        config.apply_env(|name| std::env::var(name).ok())?;
        Ok(config)
    }

    /// Read a TOML config file.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::invalid_input(format!("cannot read config file {}: {e}", path.display())))?;
        Self::from_toml(&text)
            .map_err(|e| Error::invalid_input(format!("config file {}: {}", path.display(), e.message())))
    }

    /// Parse TOML config text.
    pub fn from_toml(text: &str) -> Result<Self> {
        toml::from_str(text).map_err(|e| Error::invalid_input(e.message().replace('\n', " ")))
    }

    /// Apply `COFFER_*` variables as `lookup` reports them.
    pub fn apply_env(&mut self, lookup: impl Fn(&str) -> Option<String>) -> Result<()> {
        if let Some(dir) = lookup("COFFER_DATA_DIR") {
            self.data_dir = PathBuf::from(dir);
        }
        if let Some(url) = lookup("COFFER_CATALOG_URL") {
            self.catalog_url = Some(url);
        }
        // The ecosystem's variable, weaker than coffer's own setting in the file or the environment.
        if self.catalog_url.is_none() {
            self.catalog_url = lookup("DATABASE_URL").filter(|url| !url.is_empty());
        }
        if let Some(kind) = lookup("COFFER_BACKEND") {
            self.backend = match kind.as_str() {
                "fs" | "local" => BackendConfig::Fs { root: None },
                "memory" => BackendConfig::Memory,
                other => {
                    return Err(Error::invalid_input(format!(
                        "COFFER_BACKEND={other:?}: expected fs or memory"
                    )));
                }
            };
        }
        if let Some(root) = lookup("COFFER_BACKEND_ROOT") {
            match &mut self.backend {
                BackendConfig::Fs { root: r } => *r = Some(PathBuf::from(root)),
                BackendConfig::Memory => {
                    return Err(Error::invalid_input(
                        "COFFER_BACKEND_ROOT is set but the backend is memory",
                    ));
                }
            }
        }
        if let Some(user) = lookup("COFFER_USER") {
            self.user = Some(user);
        }
        if let Some(max) = lookup("COFFER_MAX_VERSIONS") {
            self.max_versions = Some(max.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
                Error::invalid_input(format!(
                    "COFFER_MAX_VERSIONS={max:?}: expected a whole number of at least 1"
                ))
            })?);
        }
        if self.max_versions == Some(0) {
            return Err(Error::invalid_input(
                "max_versions = 0 would remove every version: use at least 1",
            ));
        }
        Ok(())
    }

    /// Where the catalog lives: the configured URL, else the data directory's `catalog.db`.
    pub fn catalog_location(&self) -> Result<CatalogLocation> {
        match &self.catalog_url {
            None => Ok(CatalogLocation::Sqlite(self.data_dir.join("catalog.db"))),
            Some(url) => CatalogLocation::parse(url),
        }
    }

    /// The actor: the configured user, else the OS user.
    pub fn actor(&self) -> String {
        self.user.clone().filter(|u| !u.is_empty()).unwrap_or_else(os_user)
    }
}

fn os_user() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(whoami::username)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_overrides_file() {
        let mut config = Config::from_toml(
            "data_dir = \"/srv/a\"\nuser = \"file-user\"\n[backend]\nkind = \"fs\"\nroot = \"/srv/blobs\"\n",
        )
        .expect("valid toml");
        config
            .apply_env(|name| match name {
                "COFFER_USER" => Some("env-user".into()),
                _ => None,
            })
            .expect("valid env");
        assert_eq!(config.data_dir, PathBuf::from("/srv/a"));
        assert_eq!(
            config.backend,
            BackendConfig::Fs {
                root: Some("/srv/blobs".into())
            }
        );
        assert_eq!(config.actor(), "env-user");
    }

    #[test]
    fn unknown_fields_are_errors() {
        let err = Config::from_toml("data_dri = \"x\"").expect_err("typo must fail");
        assert!(err.message().contains("data_dri"), "{}", err.message());
    }

    #[test]
    fn debug_hides_passwords() {
        let config = Config {
            catalog_url: Some("postgres://app:s3cret@db:5432/coffer".into()),
            ..Config::default()
        };
        let shown = format!("{config:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("postgres://app:***@db:5432/coffer"), "{shown}");
        assert_eq!(
            redact_url("postgres://db/coffer?user=app&password=s3cret&sslmode=require"),
            "postgres://db/coffer?user=app&password=***&sslmode=require"
        );
    }

    #[test]
    fn database_url_is_the_weakest_catalog_setting() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |name: &str| vars.iter().find(|(n, _)| *n == name).map(|(_, v)| v.to_string())
        };
        let mut config = Config::default();
        config
            .apply_env(env(&[("DATABASE_URL", "postgres://db/a")]))
            .expect("valid env");
        assert_eq!(config.catalog_url.as_deref(), Some("postgres://db/a"));
        let mut config = Config::default();
        config
            .apply_env(env(&[
                ("DATABASE_URL", "postgres://db/a"),
                ("COFFER_CATALOG_URL", "sqlite://x.db"),
            ]))
            .expect("valid env");
        assert_eq!(config.catalog_url.as_deref(), Some("sqlite://x.db"));
        let mut config = Config::from_toml("catalog_url = \"postgres://db/file\"").expect("valid toml");
        config
            .apply_env(env(&[("DATABASE_URL", "postgres://db/a")]))
            .expect("valid env");
        assert_eq!(config.catalog_url.as_deref(), Some("postgres://db/file"));
    }
}
