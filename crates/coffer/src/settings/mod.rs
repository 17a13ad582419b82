//! Backend settings, owned by the library: the kinds of backend and their
//! names, which setting belongs to which kind, what a kind requires, and how
//! `COFFER_*` variables and command-line flags override single settings of
//! the configured backend while keeping the rest, and which kinds this build
//! has (a kind whose cargo feature is off is refused, naming the feature).
//! The config file, the environment and the CLI all go through here, so each
//! rule is written once.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use serde::Deserialize;

use crate::error::{Error, ErrorKind, Result};

mod overrides;
pub use self::overrides::BackendOverrides;

/// Where a store keeps its bytes: one table of settings per kind of backend.
///
/// In a config file the kind is `kind = "..."`, by its name or an alias
/// (see [`BackendKind`]).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum BackendConfig {
    /// A local directory (or a mounted NAS share).
    #[serde(alias = "local")]
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
    #[serde(alias = "azblob")]
    Azure(Box<crate::backend::AzureConfig>),
}

impl Default for BackendConfig {
    fn default() -> Self {
        BackendConfig::Fs { root: None }
    }
}

/// The kinds of backend. Each has one name, accepted everywhere (the
/// config's `kind`, `COFFER_BACKEND`, the CLI's `--backend`), and maybe
/// aliases accepted as well: `local` for `fs`, `azblob` for `azure`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BackendKind {
    /// A local directory.
    Fs,
    /// Process memory.
    Memory,
    /// An S3 bucket.
    S3,
    /// An Azure Blob container.
    Azure,
}

impl BackendKind {
    /// Every kind, in the order messages list them.
    pub const ALL: [BackendKind; 4] = [
        BackendKind::Fs,
        BackendKind::Memory,
        BackendKind::S3,
        BackendKind::Azure,
    ];

    /// The kind's name: `fs`, `memory`, `s3` or `azure`.
    pub fn name(self) -> &'static str {
        match self {
            BackendKind::Fs => "fs",
            BackendKind::Memory => "memory",
            BackendKind::S3 => "s3",
            BackendKind::Azure => "azure",
        }
    }

    /// Other names accepted for the kind.
    pub fn aliases(self) -> &'static [&'static str] {
        match self {
            BackendKind::Fs => &["local"],
            BackendKind::Azure => &["azblob"],
            BackendKind::Memory | BackendKind::S3 => &[],
        }
    }

    /// A short description, for help texts.
    pub fn about(self) -> &'static str {
        match self {
            BackendKind::Fs => "a local directory (or NAS mount)",
            BackendKind::Memory => "process memory, gone when the process ends",
            BackendKind::S3 => "an S3 bucket (AWS or an S3-compatible store)",
            BackendKind::Azure => "an Azure Blob container",
        }
    }

    /// Every name with its aliases: `fs (or local), memory, s3, azure (or azblob)`.
    pub fn all_names() -> String {
        let names: Vec<String> = Self::ALL
            .iter()
            .map(|kind| match kind.aliases() {
                [] => kind.name().to_owned(),
                aliases => format!("{} (or {})", kind.name(), aliases.join(", ")),
            })
            .collect();
        names.join(", ")
    }

    /// The cargo feature that brings the kind.
    pub fn cargo_feature(self) -> &'static str {
        match self {
            BackendKind::Fs => "backend-fs",
            BackendKind::Memory => "backend-memory",
            BackendKind::S3 => "backend-s3",
            BackendKind::Azure => "backend-azblob",
        }
    }

    /// Whether this build has the kind (was built with its cargo feature).
    pub fn is_built(self) -> bool {
        match self {
            BackendKind::Fs => cfg!(feature = "backend-fs"),
            BackendKind::Memory => cfg!(feature = "backend-memory"),
            BackendKind::S3 => cfg!(feature = "backend-s3"),
            BackendKind::Azure => cfg!(feature = "backend-azblob"),
        }
    }

    /// Refuse the kind if this build leaves it out. Every place a kind is
    /// named (the config file's `kind`, `COFFER_BACKEND`, `--backend`) comes
    /// through here, `given` saying which (`--backend azure`).
    pub(crate) fn ensure_built(self, given: &str) -> Result<()> {
        match self.is_built() {
            true => Ok(()),
            false => Err(self.not_built(given)),
        }
    }

    /// The one-line error for this kind in a build without it, naming the
    /// cargo feature that brings it (exit 11).
    pub(crate) fn not_built(self, given: &str) -> Error {
        Error::not_built(&format!("the {self} backend ({given})"), self.cargo_feature())
    }

    /// A fresh table of this kind, with every setting at its default.
    fn fresh(self, given: &str) -> Result<BackendConfig> {
        self.ensure_built(given)?;
        Ok(match self {
            BackendKind::Fs => BackendConfig::Fs { root: None },
            BackendKind::Memory => BackendConfig::Memory,
            #[cfg(feature = "backend-s3")]
            BackendKind::S3 => BackendConfig::S3(Box::default()),
            #[cfg(feature = "backend-azblob")]
            BackendKind::Azure => BackendConfig::Azure(Box::default()),
            // A kind without its variant is not built: refused above.
            #[allow(unreachable_patterns)]
            other => return Err(other.not_built(given)),
        })
    }
}

/// Refuse config text whose `[backend]` or `[stores.NAME]` table is of a
/// kind this build leaves out, with the same one line as `COFFER_BACKEND`
/// and `--backend` get, before the text is read into a [`Config`](crate::Config)
/// (where such a kind would only be an unknown variant). Text that is not
/// TOML, and kinds that are not kinds at all, are left to that reading.
pub(crate) fn refuse_unbuilt_kinds(text: &str) -> Result<()> {
    let Ok(table) = text.parse::<toml::Table>() else {
        return Ok(());
    };
    let stores = table.get("stores").and_then(toml::Value::as_table);
    let tables = table
        .get("backend")
        .map(|backend| ("[backend]".to_owned(), backend))
        .into_iter()
        .chain(
            stores
                .into_iter()
                .flatten()
                .map(|(name, store)| (format!("[stores.{name}]"), store)),
        );
    for (place, backend) in tables {
        let Some(name) = backend.get("kind").and_then(toml::Value::as_str) else {
            continue;
        };
        if let Ok(kind) = name.parse::<BackendKind>() {
            kind.ensure_built(&format!("{place} kind = {name:?}"))?;
        }
    }
    Ok(())
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for BackendKind {
    type Err = Error;

    fn from_str(text: &str) -> Result<BackendKind> {
        let wanted = text.trim().to_ascii_lowercase();
        BackendKind::ALL
            .into_iter()
            .find(|kind| kind.name() == wanted || kind.aliases().contains(&wanted.as_str()))
            .ok_or_else(|| {
                Error::invalid_input(format!(
                    "unknown backend kind {text:?}: expected {}",
                    BackendKind::all_names()
                ))
            })
    }
}

/// One setting a variable or a flag can override: the kind it belongs to,
/// its name in the config file, its variable and its flag (without `--`).
struct Setting {
    kind: BackendKind,
    name: &'static str,
    env: Option<&'static str>,
    flag: Option<&'static str>,
}

const fn setting(
    kind: BackendKind,
    name: &'static str,
    env: Option<&'static str>,
    flag: Option<&'static str>,
) -> Setting {
    Setting { kind, name, env, flag }
}

/// The settings that can be overridden, by kind. Settings left out
/// (encryption, part sizes, session tokens) are set in the config file only.
const SETTINGS: &[Setting] = {
    use BackendKind::{Azure, Fs, S3};
    &[
        setting(Fs, "root", Some("COFFER_BACKEND_ROOT"), Some("path")),
        setting(S3, "bucket", Some("COFFER_S3_BUCKET"), Some("bucket")),
        setting(S3, "region", Some("COFFER_S3_REGION"), Some("region")),
        setting(S3, "endpoint", Some("COFFER_S3_ENDPOINT"), Some("endpoint")),
        setting(S3, "prefix", Some("COFFER_S3_PREFIX"), None),
        setting(S3, "access_key_id", None, Some("access-key")),
        setting(S3, "secret_access_key", None, Some("secret-key")),
        setting(S3, "profile", None, Some("profile")),
        setting(
            S3,
            "storage_class",
            Some("COFFER_S3_STORAGE_CLASS"),
            Some("storage-class"),
        ),
        setting(S3, "virtual_host_style", None, Some("virtual-host-style")),
        setting(
            S3,
            "create_bucket",
            Some("COFFER_S3_CREATE_BUCKET"),
            Some("create-bucket"),
        ),
        setting(S3, "object_lock", None, Some("object-lock")),
        setting(Azure, "container", Some("COFFER_AZURE_CONTAINER"), Some("container")),
        setting(Azure, "account_name", None, Some("account-name")),
        setting(Azure, "account_key", None, Some("account-key")),
        setting(Azure, "sas_token", None, Some("sas-token")),
        setting(Azure, "connection_string", None, Some("connection-string")),
        setting(Azure, "endpoint", Some("COFFER_AZURE_ENDPOINT"), Some("endpoint")),
        setting(Azure, "prefix", Some("COFFER_AZURE_PREFIX"), None),
        setting(
            Azure,
            "access_tier",
            Some("COFFER_AZURE_ACCESS_TIER"),
            Some("access-tier"),
        ),
        setting(
            Azure,
            "create_container",
            Some("COFFER_AZURE_CREATE_CONTAINER"),
            Some("create-bucket"),
        ),
    ]
};

/// The error of a backend of `kind` without its required setting `name`,
/// saying where it can be given.
#[cfg(any(feature = "backend-s3", feature = "backend-azblob"))] // only they require one
pub(crate) fn missing_setting(kind: BackendKind, name: &str) -> Error {
    let mut places = vec![format!("{name} in the config")];
    if let Some(setting) = SETTINGS.iter().find(|s| s.kind == kind && s.name == name) {
        places.extend(setting.env.map(str::to_owned));
        places.extend(setting.flag.map(|flag| format!("--{flag}")));
    }
    Error::invalid_input(format!(
        "the {kind} backend needs a {} ({})",
        name.replace('_', " "),
        places.join(", ")
    ))
}

/// Parse a true/false setting as `label` gave it.
pub(crate) fn parse_flag(label: &str, text: &str) -> Result<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(Error::invalid_input(format!(
            "{label}={text:?}: expected true, false, 1 or 0"
        ))),
    }
}

impl BackendConfig {
    /// The kind of this backend.
    pub fn kind(&self) -> BackendKind {
        match self {
            BackendConfig::Fs { .. } => BackendKind::Fs,
            BackendConfig::Memory => BackendKind::Memory,
            #[cfg(feature = "backend-s3")]
            BackendConfig::S3(_) => BackendKind::S3,
            #[cfg(feature = "backend-azblob")]
            BackendConfig::Azure(_) => BackendKind::Azure,
        }
    }

    /// Check the settings: what the kind requires (S3 a bucket, Azure a
    /// container) and that each value is well-formed.
    pub fn check(&self) -> Result<()> {
        match self {
            BackendConfig::Fs { .. } | BackendConfig::Memory => Ok(()),
            #[cfg(feature = "backend-s3")]
            BackendConfig::S3(s3) => s3.validate(),
            #[cfg(feature = "backend-azblob")]
            BackendConfig::Azure(azure) => azure.validate(),
        }
    }

    /// Set the setting `name` (as the config file names it) from text that
    /// `label` gave; the setting belongs to this kind (see [`SETTINGS`]).
    fn set(&mut self, name: &str, value: &str, label: &str) -> Result<()> {
        #[cfg(any(feature = "backend-s3", feature = "backend-azblob"))]
        let text = || Some(value.to_owned());
        match (self, name) {
            (BackendConfig::Fs { root }, "root") => *root = Some(PathBuf::from(value)),
            #[cfg(feature = "backend-s3")]
            (BackendConfig::S3(s3), name) => match name {
                "bucket" => s3.bucket = value.to_owned(),
                "region" => s3.region = text(),
                "endpoint" => s3.endpoint = text(),
                "prefix" => s3.prefix = text(),
                "access_key_id" => s3.access_key_id = text(),
                "secret_access_key" => s3.secret_access_key = text(),
                "profile" => s3.profile = text(),
                "storage_class" => s3.storage_class = text(),
                "virtual_host_style" => s3.virtual_host_style = parse_flag(label, value)?,
                "create_bucket" => s3.create_bucket = parse_flag(label, value)?,
                "object_lock" => s3.object_lock = parse_flag(label, value)?,
                _ => return Err(not_settable(label)),
            },
            #[cfg(feature = "backend-azblob")]
            (BackendConfig::Azure(azure), name) => match name {
                "container" => azure.container = value.to_owned(),
                "account_name" => azure.account_name = text(),
                "account_key" => azure.account_key = text(),
                "sas_token" => azure.sas_token = text(),
                "connection_string" => azure.connection_string = text(),
                "endpoint" => azure.endpoint = text(),
                "prefix" => azure.prefix = text(),
                "access_tier" => azure.access_tier = text(),
                "create_container" => azure.create_container = parse_flag(label, value)?,
                _ => return Err(not_settable(label)),
            },
            _ => return Err(not_settable(label)),
        }
        Ok(())
    }
}

/// A setting in [`SETTINGS`] that [`BackendConfig::set`] does not know: a
/// mistake in this file, reported rather than ignored.
fn not_settable(label: &str) -> Error {
    Error::new(ErrorKind::Unsupported, format!("{label} cannot be set in this build"))
}

#[cfg(all(test, feature = "backend-s3", feature = "backend-azblob"))]
mod tests {
    use super::*;

    fn env(vars: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| vars.iter().find(|(n, _)| *n == name).map(|(_, v)| v.to_string())
    }

    fn applied(backend: &mut BackendConfig, overrides: BackendOverrides) -> Result<()> {
        overrides.apply_to(backend)
    }

    #[test]
    fn names_and_aliases_parse_everywhere() {
        for kind in BackendKind::ALL {
            for name in std::iter::once(kind.name()).chain(kind.aliases().iter().copied()) {
                assert_eq!(name.parse::<BackendKind>().expect(name), kind);
                assert_eq!(name.to_uppercase().parse::<BackendKind>().expect(name), kind);
                // The config file's `kind` takes the same names (serde aliases).
                let required = match kind {
                    BackendKind::S3 => "bucket = \"b-1\"",
                    BackendKind::Azure => "container = \"c-1\"",
                    _ => "",
                };
                let parsed: toml::Value = toml::from_str(&format!("kind = \"{name}\"\n{required}")).expect("toml");
                let backend: BackendConfig = parsed.try_into().expect(name);
                assert_eq!(backend.kind(), kind, "{name}");
            }
        }
        let err = "nas".parse::<BackendKind>().expect_err("unknown");
        assert!(
            err.message().contains("fs (or local), memory, s3, azure (or azblob)"),
            "{}",
            err.message()
        );
    }

    #[test]
    fn every_overridable_setting_is_settable_on_its_kind() {
        for setting in SETTINGS {
            let mut backend = setting.kind.fresh("a test").expect("built in");
            let switch = matches!(setting.name, "virtual_host_style" | "object_lock");
            let value = if setting.name.starts_with("create") || switch {
                "true"
            } else {
                "x"
            };
            backend.set(setting.name, value, setting.name).expect(setting.name);
        }
    }

    #[test]
    fn the_same_kind_keeps_the_table_and_another_replaces_it() {
        let mut backend = BackendConfig::Fs {
            root: Some("/srv/blobs".into()),
        };
        applied(
            &mut backend,
            BackendOverrides::from_env(env(&[("COFFER_BACKEND", "local")])).unwrap(),
        )
        .unwrap();
        assert_eq!(
            backend,
            BackendConfig::Fs {
                root: Some("/srv/blobs".into())
            }
        );
        let mut s3 = crate::backend::S3Config {
            bucket: "archive".into(),
            region: Some("eu-west-1".into()),
            ..Default::default()
        };
        let mut backend = BackendConfig::S3(Box::new(s3.clone()));
        let overrides = BackendOverrides::from_env(env(&[("COFFER_BACKEND", "s3"), ("COFFER_S3_PREFIX", "p")]));
        applied(&mut backend, overrides.unwrap()).unwrap();
        s3.prefix = Some("p".into());
        assert_eq!(backend, BackendConfig::S3(Box::new(s3)));

        let mut backend = BackendConfig::Fs { root: None };
        let overrides = BackendOverrides::from_env(env(&[("COFFER_BACKEND", "s3"), ("COFFER_S3_BUCKET", "b-1")]));
        applied(&mut backend, overrides.unwrap()).unwrap();
        assert_eq!(backend.kind(), BackendKind::S3);
    }

    #[test]
    fn flags_win_over_the_environment() {
        let from_env = BackendOverrides::from_env(env(&[("COFFER_BACKEND", "fs"), ("COFFER_BACKEND_ROOT", "/env")]));
        let mut flags = BackendOverrides::default();
        flags.kind(BackendKind::S3);
        flags.flag("bucket", "from-flag").unwrap();
        let mut backend = BackendConfig::default();
        // The environment's root belongs to fs, and the flags chose s3.
        let err = applied(&mut backend, from_env.unwrap().then(flags.clone())).expect_err("root on s3");
        assert!(
            err.message()
                .starts_with("COFFER_BACKEND_ROOT is a setting of the fs backend, and this store's backend is s3"),
            "{}",
            err.message()
        );
        let from_env = BackendOverrides::from_env(env(&[("COFFER_S3_BUCKET", "from-env")])).unwrap();
        let mut backend = BackendConfig::default();
        applied(&mut backend, from_env.then(flags)).unwrap();
        match backend {
            BackendConfig::S3(s3) => assert_eq!(s3.bucket, "from-flag"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_setting_of_another_kind_or_a_missing_requirement_is_one_line() {
        let mut flags = BackendOverrides::default();
        flags.flag("bucket", "b-1").unwrap();
        let err = applied(&mut BackendConfig::default(), flags).expect_err("bucket on fs");
        assert_eq!(
            err.message(),
            "--bucket is a setting of the s3 backend, and this store's backend is fs (use --backend)"
        );
        let mut flags = BackendOverrides::default();
        flags.flag("endpoint", "http://x").unwrap();
        let err = applied(&mut BackendConfig::default(), flags).expect_err("endpoint on fs");
        assert!(
            err.message()
                .starts_with("--endpoint is a setting of the s3 or azure backend"),
            "{}",
            err.message()
        );

        let mut flags = BackendOverrides::default();
        flags.kind(BackendKind::S3);
        let err = applied(&mut BackendConfig::default(), flags).expect_err("no bucket");
        assert_eq!(
            err.message(),
            "the s3 backend needs a bucket (bucket in the config, COFFER_S3_BUCKET, --bucket)"
        );
        let err = applied(
            &mut BackendConfig::default(),
            BackendOverrides::from_env(env(&[("COFFER_BACKEND", "azblob")])).unwrap(),
        )
        .expect_err("no container");
        assert_eq!(
            err.message(),
            "the azure backend needs a container (container in the config, COFFER_AZURE_CONTAINER, --container)"
        );
        let err = BackendOverrides::from_env(env(&[("COFFER_BACKEND", "nas")]))
            .err()
            .expect("unknown kind");
        assert!(
            err.message()
                .starts_with("COFFER_BACKEND: unknown backend kind \"nas\""),
            "{}",
            err.message()
        );
        let err = BackendOverrides::from_env(env(&[("COFFER_S3_CREATE_BUCKET", "yes"), ("COFFER_BACKEND", "s3")]))
            .and_then(|o| applied(&mut BackendConfig::default(), o))
            .expect_err("not a bool");
        assert!(
            err.message().starts_with("COFFER_S3_CREATE_BUCKET=\"yes\""),
            "{}",
            err.message()
        );
    }
}
