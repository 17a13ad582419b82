//! Overrides of single backend settings by `COFFER_*` variables and
//! command-line flags, applied on top of the configured backend.

use super::{BackendConfig, BackendKind, SETTINGS, Setting};
use crate::error::{Error, Result};

/// Where an override came from.
#[derive(Clone, Copy)]
enum Via {
    Env,
    Flag,
}

/// One setting given by a variable or a flag.
#[derive(Clone)]
struct Override {
    via: Via,
    /// The variable, or the flag without `--`.
    name: &'static str,
    value: String,
}

impl Override {
    /// How the user wrote it: `COFFER_S3_BUCKET` or `--bucket`.
    fn label(&self) -> String {
        match self.via {
            Via::Env => self.name.to_owned(),
            Via::Flag => format!("--{}", self.name),
        }
    }

    fn given_by(&self, setting: &Setting) -> bool {
        match self.via {
            Via::Env => setting.env == Some(self.name),
            Via::Flag => setting.flag == Some(self.name),
        }
    }

    /// The setting this override sets on a backend of `kind`, or why it cannot.
    fn setting_for(&self, kind: BackendKind) -> Result<&'static Setting> {
        if let Some(setting) = SETTINGS.iter().find(|s| s.kind == kind && self.given_by(s)) {
            return Ok(setting);
        }
        let kinds: Vec<&str> = SETTINGS
            .iter()
            .filter(|s| self.given_by(s))
            .map(|s| s.kind.name())
            .collect();
        let hint = match self.via {
            Via::Env => "set COFFER_BACKEND",
            Via::Flag => "use --backend",
        };
        Err(Error::invalid_input(format!(
            "{} is a setting of the {} backend, and this store's backend is {kind} ({hint})",
            self.label(),
            kinds.join(" or ")
        )))
    }
}

/// Changes to the active backend's settings, weakest first: what the
/// environment says ([`from_env`](Self::from_env)), then what a caller adds
/// (the CLI's flags). [`Config::apply_backend`](crate::Config::apply_backend)
/// applies them to the configured table, keeping every setting they do not
/// name. No `Debug`: values may be secrets.
#[derive(Clone, Default)]
pub struct BackendOverrides {
    store: Option<String>,
    /// The kind, with how it was given (`COFFER_BACKEND=azure`, `--backend azure`).
    kind: Option<(BackendKind, String)>,
    settings: Vec<Override>,
}

impl BackendOverrides {
    /// What `COFFER_BACKEND` and the backend variables (`COFFER_BACKEND_ROOT`,
    /// `COFFER_S3_*`, `COFFER_AZURE_*`) say, as `lookup` reports them; empty
    /// values count as unset.
    pub fn from_env(lookup: impl Fn(&str) -> Option<String>) -> Result<BackendOverrides> {
        let lookup = |name: &str| lookup(name).filter(|value| !value.trim().is_empty());
        let mut overrides = BackendOverrides::default();
        if let Some(kind) = lookup("COFFER_BACKEND") {
            let parsed = kind
                .parse()
                .map_err(|e: Error| Error::invalid_input(format!("COFFER_BACKEND: {}", e.message())))?;
            overrides.kind = Some((parsed, format!("COFFER_BACKEND={}", kind.trim())));
        }
        let mut seen = Vec::new();
        for name in SETTINGS.iter().filter_map(|s| s.env) {
            if seen.contains(&name) {
                continue;
            }
            seen.push(name);
            if let Some(value) = lookup(name) {
                overrides.settings.push(Override {
                    via: Via::Env,
                    name,
                    value,
                });
            }
        }
        Ok(overrides)
    }

    /// Use the named store (`[stores.NAME]`) instead of the configured backend.
    pub fn store(&mut self, name: impl Into<String>) {
        self.store = Some(name.into());
    }

    /// Use a backend of `kind`: the configured table if it is of that kind, else a fresh one.
    pub fn kind(&mut self, kind: BackendKind) {
        self.kind = Some((kind, format!("--backend {kind}")));
    }

    /// Set the setting of command-line flag `--NAME` (`bucket`, `path`,
    /// `create-bucket` ...) to `value` (`true` for a switch).
    pub fn flag(&mut self, name: &str, value: impl Into<String>) -> Result<()> {
        let name = SETTINGS
            .iter()
            .filter_map(|s| s.flag)
            .find(|flag| *flag == name)
            .ok_or_else(|| Error::invalid_input(format!("--{name} is not a backend setting")))?;
        self.settings.push(Override {
            via: Via::Flag,
            name,
            value: value.into(),
        });
        Ok(())
    }

    /// These overrides, then `stronger` ones on top.
    pub fn then(mut self, stronger: BackendOverrides) -> BackendOverrides {
        self.store = stronger.store.or(self.store);
        self.kind = stronger.kind.or(self.kind);
        self.settings.extend(stronger.settings);
        self
    }

    /// The named store to use, if these overrides pick one.
    pub(crate) fn chosen_store(&self) -> Option<&str> {
        self.store.as_deref()
    }

    /// Apply the kind, then each setting in order, to `backend`, and check
    /// that the result has what its kind requires. A kind this build leaves
    /// out is refused first, naming its cargo feature.
    pub(crate) fn apply_to(&self, backend: &mut BackendConfig) -> Result<()> {
        if let Some((kind, given)) = &self.kind {
            kind.ensure_built(given)?;
            if backend.kind() != *kind {
                *backend = kind.fresh(given)?;
            }
        }
        for given in &self.settings {
            let setting = given.setting_for(backend.kind())?;
            backend.set(setting.name, &given.value, &given.label())?;
        }
        backend.check()
    }
}
