//! Configuration: defaults, then a TOML file, then `COFFER_*` environment
//! variables; callers (the CLI's flags) override the result last.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer};

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
    /// An S3 bucket (AWS or an S3-compatible store).
    #[cfg(feature = "backend-s3")]
    S3(Box<crate::backend::S3Config>),
    /// An Azure Blob container.
    #[cfg(feature = "backend-azblob")]
    Azure(Box<crate::backend::AzureConfig>),
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
    /// Other backends by name (`[stores.archive]`): `--store NAME` uses one
    /// instead of `backend`, and `migrate --to NAME` copies into one.
    pub stores: BTreeMap<String, BackendConfig>,
    /// Use the named store (`[stores.NAME]`) as the backend instead of
    /// `[backend]` (what `migrate --switch` sets).
    pub store: Option<String>,
    /// The named store (`[stores.NAME]`) that is the cold tier: `tier move`
    /// moves content there and back; reads find it in either.
    pub cold_store: Option<String>,
    /// A local directory to spool writes in while the backend does not
    /// answer; `coffer sync` (or a long-running process) moves them on.
    pub spool: Option<PathBuf>,
    /// The actor recorded for changes; the OS user when absent.
    pub user: Option<String>,
    /// Keep at most this many versions of a key: every put prunes older
    /// untagged versions beyond it. Unlimited when absent.
    pub max_versions: Option<usize>,
    /// How long audit rows are kept at least (`"7y"`, `"90days"`): older rows
    /// may be removed by an audit purge. Without it the audit log is never purged.
    #[serde(deserialize_with = "retention_from_text")]
    pub audit_retention: Option<Duration>,
    /// Record every read of content (`get`) in the audit log.
    pub audit_reads: bool,
    /// Fire an `object.retrieved` event on every read of content (`get`).
    pub read_events: bool,
}

fn retention_from_text<'de, D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Option<Duration>, D::Error> {
    struct Span;
    impl serde::de::Visitor<'_> for Span {
        type Value = Duration;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("audit_retention as a span in quotes, like \"7y\"")
        }
        fn visit_str<E: serde::de::Error>(self, text: &str) -> std::result::Result<Duration, E> {
            parse_retention("audit_retention", text).map_err(|e| E::custom(e.message()))
        }
    }
    deserializer.deserialize_str(Span).map(Some)
}

/// Parse a true/false environment setting.
fn parse_flag(setting: &str, text: &str) -> Result<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(Error::invalid_input(format!(
            "{setting}={text:?}: expected true, false, 1 or 0"
        ))),
    }
}

/// Parse the audit retention `setting` holds (`7y`, `7years`, `400d`); zero is refused.
fn parse_retention(setting: &str, text: &str) -> Result<Duration> {
    let retention = humantime::parse_duration(text.trim()).map_err(|e| {
        Error::invalid_input(format!(
            "{setting} {text:?}: {e}; expected a span like 7y, 7years or 400d"
        ))
    })?;
    if retention.is_zero() {
        return Err(Error::invalid_input(format!(
            "{setting} {text:?} would let a purge remove every audit row: use a span like 7y"
        )));
    }
    Ok(retention)
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from(DEFAULT_DATA_DIR),
            catalog_url: None,
            backend: BackendConfig::default(),
            stores: BTreeMap::new(),
            store: None,
            spool: None,
            cold_store: None,
            user: None,
            max_versions: None,
            audit_retention: None,
            audit_reads: false,
            read_events: false,
        }
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("data_dir", &self.data_dir)
            .field("catalog_url", &self.catalog_url.as_deref().map(redact_url))
            .field("backend", &self.backend)
            .field("stores", &self.stores)
            .field("store", &self.store)
            .field("spool", &self.spool)
            .field("cold_store", &self.cold_store)
            .field("user", &self.user)
            .field("max_versions", &self.max_versions)
            .field("audit_retention", &self.audit_retention)
            .field("audit_reads", &self.audit_reads)
            .field("read_events", &self.read_events)
            .finish()
    }
}

/// Make the named store the backend of the config file at `path`: set its
/// top-level `store = "NAME"`, keeping everything else as written.
pub fn set_active_store(path: &Path, name: &str) -> Result<()> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::invalid_input(format!("cannot read config file {}: {e}", path.display())))?;
    let config = Config::from_toml(&text)?;
    config.store(name)?;
    let line = format!("store = {}", toml::Value::String(name.to_owned()));
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    // Top-level keys come before the first table header.
    let top_end = lines
        .iter()
        .position(|l| l.trim_start().starts_with('['))
        .unwrap_or(lines.len());
    let existing = lines[..top_end]
        .iter()
        .position(|l| l.split_once('=').is_some_and(|(name, _)| name.trim() == "store"));
    match existing {
        Some(i) => lines[i] = line,
        None => lines.insert(0, line),
    }
    let mut updated = lines.join("\n");
    updated.push('\n');
    Config::from_toml(&updated)?;
    // Written beside and renamed over, so the file is never half written.
    let staged = path.with_extension("toml.new");
    std::fs::write(&staged, &updated)
        .and_then(|()| std::fs::rename(&staged, path))
        .map_err(|e| Error::io(&format!("cannot write config file {}", path.display()), e))
}

/// The URL with any password (in the user part, or a `password=` query
/// parameter) replaced by `***`, for logs and messages; control characters
/// are escaped (`\n`), so a message showing a mistyped URL stays one line.
pub fn redact_url(url: &str) -> String {
    let mut shown = String::with_capacity(url.len());
    for c in hide_password(url).chars() {
        if c.is_control() {
            shown.extend(c.escape_default());
        } else {
            shown.push(c);
        }
    }
    shown
}

fn hide_password(url: &str) -> String {
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
    /// `COFFER_MAX_VERSIONS`, `COFFER_AUDIT_RETENTION`, `COFFER_AUDIT_READS`.
    pub fn load(file: Option<&Path>) -> Result<Self> {
        let mut config = match file {
            Some(path) => Self::from_file(path)?,
            None if Path::new(DEFAULT_CONFIG_FILE).is_file() => Self::from_file(Path::new(DEFAULT_CONFIG_FILE))?,
            None => Config::default(),
        };
        config.apply_env(|name| std::env::var(name).ok())?;
        if let Some(name) = config.store.clone() {
            config.select_store(&name)?;
        }
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
                #[cfg(feature = "backend-s3")]
                "s3" => BackendConfig::S3(Box::default()),
                #[cfg(feature = "backend-azblob")]
                "azure" | "azblob" => BackendConfig::Azure(Box::default()),
                #[cfg(not(feature = "backend-s3"))]
                "s3" => return Err(Error::not_built("COFFER_BACKEND=s3", "backend-s3")),
                #[cfg(not(feature = "backend-azblob"))]
                "azure" | "azblob" => return Err(Error::not_built("COFFER_BACKEND=azure", "backend-azblob")),
                other => {
                    return Err(Error::invalid_input(format!(
                        "COFFER_BACKEND={other:?}: expected fs, memory, s3 or azure"
                    )));
                }
            };
        }
        #[cfg(feature = "backend-azblob")]
        if let BackendConfig::Azure(azure) = &mut self.backend {
            if let Some(container) = lookup("COFFER_AZURE_CONTAINER") {
                azure.container = container;
            }
            for (name, setting) in [
                ("COFFER_AZURE_ENDPOINT", &mut azure.endpoint),
                ("COFFER_AZURE_PREFIX", &mut azure.prefix),
                ("COFFER_AZURE_ACCESS_TIER", &mut azure.access_tier),
            ] {
                if let Some(value) = lookup(name) {
                    *setting = Some(value);
                }
            }
            if let Some(create) = lookup("COFFER_AZURE_CREATE_CONTAINER") {
                azure.create_container = parse_flag("COFFER_AZURE_CREATE_CONTAINER", &create)?;
            }
        }
        #[cfg(feature = "backend-s3")]
        if let BackendConfig::S3(s3) = &mut self.backend {
            if let Some(bucket) = lookup("COFFER_S3_BUCKET") {
                s3.bucket = bucket;
            }
            for (name, setting) in [
                ("COFFER_S3_REGION", &mut s3.region),
                ("COFFER_S3_ENDPOINT", &mut s3.endpoint),
                ("COFFER_S3_PREFIX", &mut s3.prefix),
                ("COFFER_S3_STORAGE_CLASS", &mut s3.storage_class),
            ] {
                if let Some(value) = lookup(name) {
                    *setting = Some(value);
                }
            }
            if let Some(create) = lookup("COFFER_S3_CREATE_BUCKET") {
                s3.create_bucket = parse_flag("COFFER_S3_CREATE_BUCKET", &create)?;
            }
        }
        if let Some(root) = lookup("COFFER_BACKEND_ROOT") {
            match &mut self.backend {
                BackendConfig::Fs { root: r } => *r = Some(PathBuf::from(root)),
                _ => {
                    return Err(Error::invalid_input(
                        "COFFER_BACKEND_ROOT is set but the backend is not local",
                    ));
                }
            }
        }
        if let Some(user) = lookup("COFFER_USER") {
            self.user = Some(user);
        }
        if let Some(store) = lookup("COFFER_STORE") {
            self.store = Some(store);
        }
        if let Some(cold) = lookup("COFFER_COLD_STORE") {
            self.cold_store = Some(cold);
        }
        if let Some(spool) = lookup("COFFER_SPOOL") {
            self.spool = Some(PathBuf::from(spool));
        }
        if let Some(max) = lookup("COFFER_MAX_VERSIONS") {
            self.max_versions = Some(max.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
                Error::invalid_input(format!(
                    "COFFER_MAX_VERSIONS={max:?}: expected a whole number of at least 1"
                ))
            })?);
        }
        if let Some(retention) = lookup("COFFER_AUDIT_RETENTION") {
            self.audit_retention = Some(parse_retention("COFFER_AUDIT_RETENTION", &retention)?);
        }
        if let Some(reads) = lookup("COFFER_AUDIT_READS") {
            self.audit_reads = parse_flag("COFFER_AUDIT_READS", &reads)?;
        }
        if let Some(reads) = lookup("COFFER_READ_EVENTS") {
            self.read_events = parse_flag("COFFER_READ_EVENTS", &reads)?;
        }
        if self.max_versions == Some(0) {
            return Err(Error::invalid_input(
                "max_versions = 0 would remove every version: use at least 1",
            ));
        }
        Ok(())
    }

    /// Use the named store of `[stores.NAME]` as the backend.
    pub fn select_store(&mut self, name: &str) -> Result<()> {
        self.backend = self.store(name)?.clone();
        Ok(())
    }

    /// The backend settings of the named store.
    pub fn store(&self, name: &str) -> Result<&BackendConfig> {
        self.stores.get(name).ok_or_else(|| {
            Error::invalid_input(format!(
                "no store named {name:?} in the config ({})",
                self.store_names()
            ))
        })
    }

    /// The named stores, for messages: `stores: a, b` or `no [stores.NAME] sections`.
    fn store_names(&self) -> String {
        if self.stores.is_empty() {
            "it has no [stores.NAME] sections".to_owned()
        } else {
            format!("stores: {}", self.stores.keys().cloned().collect::<Vec<_>>().join(", "))
        }
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
    fn shown_urls_stay_on_one_line() {
        // Found by the config fuzz target: a catalog URL with a newline made a two-line error.
        assert_eq!(redact_url("x\ny://u:pw@h"), "x\\ny://u:***@h");
        let err = CatalogLocation::parse("_dt\ncaBtaldt\nc").unwrap_err();
        assert!(!err.message().contains('\n'), "{}", err.message());
    }

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
    fn audit_settings_from_file_and_env() {
        let config = Config::from_toml("audit_retention = \"7y\"\naudit_reads = true\n").expect("valid toml");
        assert_eq!(config.audit_retention, Some(Duration::from_secs(7 * 31_557_600)));
        assert!(config.audit_reads);
        let long = Config::from_toml("audit_retention = \"7years\"").expect("valid toml");
        assert_eq!(long.audit_retention, config.audit_retention);
        assert_eq!(Config::default().audit_retention, None);
        assert!(!Config::default().audit_reads);

        let mut config = Config::default();
        config
            .apply_env(|name| match name {
                "COFFER_AUDIT_RETENTION" => Some("90days".into()),
                "COFFER_AUDIT_READS" => Some("1".into()),
                _ => None,
            })
            .expect("valid env");
        assert_eq!(config.audit_retention, Some(Duration::from_secs(90 * 86_400)));
        assert!(config.audit_reads);
    }

    #[test]
    fn bad_audit_settings_are_one_line_errors() {
        for text in [
            "audit_retention = \"seven years\"",
            "audit_retention = \"0s\"",
            "audit_retention = 7",
        ] {
            let err = Config::from_toml(text).expect_err(text);
            assert!(err.message().contains("audit_retention"), "{}", err.message());
            assert!(!err.message().contains('\n'), "{}", err.message());
        }
        let env = |name: &'static str, value: &'static str| move |n: &str| (n == name).then(|| value.to_owned());
        let err = Config::default()
            .apply_env(env("COFFER_AUDIT_RETENTION", "0d"))
            .expect_err("zero");
        assert!(err.message().starts_with("COFFER_AUDIT_RETENTION"), "{}", err.message());
        let err = Config::default()
            .apply_env(env("COFFER_AUDIT_READS", "yes"))
            .expect_err("not a bool");
        assert!(err.message().contains("COFFER_AUDIT_READS"), "{}", err.message());
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
