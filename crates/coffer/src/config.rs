//! Configuration: defaults, then a TOML file, then `COFFER_*` environment
//! variables; callers (the CLI's flags) override the result last.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use crate::catalog::CatalogLocation;
use crate::crypto::EncryptionConfig;
use crate::error::{Error, Result};
use crate::hot::HotConfig;
use crate::lifecycle::LifecycleConfig;
use crate::redact::redact_url;
use crate::retention::RetentionConfig;
use crate::settings::{BackendConfig, BackendOverrides, parse_flag};

mod server;
pub use self::server::{BackgroundWork, ServerConfig};

/// Name of the config file looked for in the working directory.
pub const DEFAULT_CONFIG_FILE: &str = "coffer.toml";
/// The embedded default's data directory.
pub const DEFAULT_DATA_DIR: &str = "coffer-data";

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
    /// How long calls to an object store retry one that does not answer
    /// before giving up (`"3s"`, the default; `"0s"` tries once).
    #[serde(deserialize_with = "wait_from_text")]
    pub backend_wait: Option<Duration>,
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
    /// Retention for new versions (`[retention]`: a store default and
    /// `[[retention.rules]]` by prefix); none when absent.
    pub retention: RetentionConfig,
    /// Lifecycle rules (`[[lifecycle.rules]]`); none when absent.
    pub lifecycle: LifecycleConfig,
    /// Encryption at rest (`[encryption]`); off when it names no key.
    pub encryption: EncryptionConfig,
    /// The hot store (`[hot]`): small puts committed with their bytes in
    /// the catalog. On by default.
    pub hot: HotConfig,
    /// Bundles (`[bundles]`): layout, unzip, prefix, limits.
    pub bundles: crate::bundle::BundleConfig,
    /// `coffer serve` (`[server]`): where it listens, its public URL and key.
    pub server: ServerConfig,
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

fn wait_from_text<'de, D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Option<Duration>, D::Error> {
    let text = String::deserialize(deserializer)?;
    crate::backend::parse_wait("backend_wait", &text)
        .map(Some)
        .map_err(|e| serde::de::Error::custom(e.message()))
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
            backend_wait: None,
            cold_store: None,
            user: None,
            max_versions: None,
            audit_retention: None,
            audit_reads: false,
            read_events: false,
            retention: RetentionConfig::default(),
            lifecycle: LifecycleConfig::default(),
            encryption: EncryptionConfig::default(),
            hot: HotConfig::default(),
            bundles: crate::bundle::BundleConfig::default(),
            server: ServerConfig::default(),
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
            .field("backend_wait", &self.backend_wait)
            .field("cold_store", &self.cold_store)
            .field("user", &self.user)
            .field("max_versions", &self.max_versions)
            .field("audit_retention", &self.audit_retention)
            .field("audit_reads", &self.audit_reads)
            .field("read_events", &self.read_events)
            .field("retention", &self.retention)
            .field("lifecycle", &self.lifecycle)
            .field("encryption", &self.encryption)
            .field("hot", &self.hot)
            .field("bundles", &self.bundles)
            .field("server", &self.server)
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

/// Add an `[encryption]` table naming `encryption`'s key source (never a
/// key) to the config file at `path`, creating the file if there is none.
/// A file that names the same key already is left as it is; one that names
/// another is refused.
pub fn add_encryption_table(path: &Path, encryption: &EncryptionConfig) -> Result<()> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => {
            return Err(Error::invalid_input(format!(
                "cannot read config file {}: {e}",
                path.display()
            )));
        }
    };
    let existing = Config::from_toml(&text)?.encryption;
    if existing == *encryption {
        return Ok(());
    }
    if existing != EncryptionConfig::default() {
        return Err(Error::invalid_input(format!(
            "config file {} has an [encryption] table already",
            path.display()
        )));
    }
    let mut table = toml::Table::new();
    let mut set = |name: &str, value: Option<String>| {
        if let Some(value) = value {
            table.insert(name.to_owned(), toml::Value::String(value));
        }
    };
    set(
        "key_file",
        encryption.key_file.as_ref().map(|p| p.display().to_string()),
    );
    set("key_env", encryption.key_env.clone());
    set("passphrase_env", encryption.passphrase_env.clone());
    set("kms_key_id", encryption.kms_key_id.clone());
    set("kms_endpoint", encryption.kms_endpoint.clone());
    set("kms_region", encryption.kms_region.clone());
    let body = toml::to_string(&table).map_err(|e| Error::invalid_input(format!("cannot write [encryption]: {e}")))?;
    let mut updated = text;
    if !updated.is_empty() && !updated.ends_with('\n') {
        updated.push('\n');
    }
    updated.push_str(&format!("\n[encryption]\n{body}"));
    Config::from_toml(&updated)?;
    // Written beside and renamed over, so the file is never half written.
    let staged = path.with_extension("toml.new");
    std::fs::write(&staged, &updated)
        .and_then(|()| std::fs::rename(&staged, path))
        .map_err(|e| Error::io(&format!("cannot write config file {}", path.display()), e))
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
    /// `COFFER_USER`, `COFFER_MAX_VERSIONS`, `COFFER_AUDIT_RETENTION`,
    /// `COFFER_AUDIT_READS` ..., and the backend's variables (`COFFER_BACKEND`,
    /// `COFFER_BACKEND_ROOT`, `COFFER_S3_*`, `COFFER_AZURE_*`), which override
    /// single settings of the configured backend.
    pub fn load(file: Option<&Path>) -> Result<Self> {
        Self::load_with(file, BackendOverrides::default())
    }

    /// [`load`](Self::load), with `overrides` (the CLI's flags) applied to
    /// the backend on top of the environment's.
    pub fn load_with(file: Option<&Path>, overrides: BackendOverrides) -> Result<Self> {
        let mut config = match file {
            Some(path) => Self::from_file(path)?,
            None if Path::new(DEFAULT_CONFIG_FILE).is_file() => Self::from_file(Path::new(DEFAULT_CONFIG_FILE))?,
            None => Config::default(),
        };
        let lookup = |name: &str| std::env::var(name).ok();
        config.apply_env(lookup)?;
        config.apply_backend(BackendOverrides::from_env(lookup)?.then(overrides))?;
        Ok(config)
    }

    /// Make the chosen store (the overrides', else `store`) the backend, then
    /// apply the overrides to its settings, keeping the others, and check it.
    pub fn apply_backend(&mut self, overrides: BackendOverrides) -> Result<()> {
        if let Some(name) = overrides.chosen_store().or(self.store.as_deref()).map(str::to_owned) {
            self.select_store(&name)?;
        }
        overrides.apply_to(&mut self.backend)
    }

    /// Read a TOML config file.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::invalid_input(format!("cannot read config file {}: {e}", path.display())))?;
        Self::from_toml(&text)
            .map_err(|e| Error::new(e.kind(), format!("config file {}: {}", path.display(), e.message())))
    }

    /// Parse TOML config text. A backend of a kind this build leaves out is
    /// refused naming its cargo feature (exit 11), as from the environment.
    pub fn from_toml(text: &str) -> Result<Self> {
        crate::settings::refuse_unbuilt_kinds(text)?;
        let config: Config = toml::from_str(text).map_err(|e| Error::invalid_input(e.message().replace('\n', " ")))?;
        config.retention.validate()?;
        config.lifecycle.validate()?;
        config.hot.validate()?;
        config.bundles.validate()?;
        Ok(config)
    }

    /// Apply the `COFFER_*` variables other than the backend's (see
    /// [`BackendOverrides::from_env`]) as `lookup` reports them.
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
        if let Some(wait) = lookup("COFFER_BACKEND_WAIT") {
            self.backend_wait = Some(crate::backend::parse_wait("COFFER_BACKEND_WAIT", &wait)?);
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
        self.encryption.apply_env(&lookup);
        self.hot.apply_env(&lookup)?;
        self.bundles.apply_env(&lookup)?;
        self.server.apply_env(&lookup)?;
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
            None => Ok(self.embedded_catalog()),
            Some(url) => CatalogLocation::parse(url),
        }
    }

    /// How long calls to an object store retry one that does not answer.
    pub fn backend_wait(&self) -> Duration {
        self.backend_wait.unwrap_or(crate::backend::DEFAULT_BACKEND_WAIT)
    }

    /// The store's embedded SQLite catalog, `<data_dir>/catalog.db`, whatever `catalog_url` says.
    pub fn embedded_catalog(&self) -> CatalogLocation {
        CatalogLocation::Sqlite(self.data_dir.join("catalog.db"))
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
    #[cfg(feature = "backend-s3")]
    fn the_environment_overrides_the_chosen_store_and_keeps_the_rest() {
        let mut config = Config::from_toml(
            "store = \"archive\"\n[stores.archive]\nkind = \"s3\"\nbucket = \"archive\"\nregion = \"eu-west-1\"\n",
        )
        .expect("valid toml");
        let env = |name: &str| (name == "COFFER_S3_PREFIX").then(|| "cold".to_owned());
        config
            .apply_backend(BackendOverrides::from_env(env).expect("valid env"))
            .expect("applies");
        let BackendConfig::S3(s3) = &config.backend else {
            panic!("{:?}", config.backend);
        };
        assert_eq!(
            (s3.bucket.as_str(), s3.region.as_deref(), s3.prefix.as_deref()),
            ("archive", Some("eu-west-1"), Some("cold"))
        );
        assert!(
            config.stores["archive"] != config.backend,
            "the file's table stays as written"
        );
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
