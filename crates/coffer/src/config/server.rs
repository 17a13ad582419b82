//! `coffer serve`'s settings (`[server]`, `COFFER_SERVER_*`): where it
//! listens, the URL it is reached at, its key, and which background work it runs.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::error::Result;
use crate::settings::parse_flag;

/// The server's settings (`[server]`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Where the REST API, links and web pages listen (`127.0.0.1:8080`).
    pub listen: String,
    /// Where the S3-compatible endpoint listens (`127.0.0.1:9000`, say);
    /// off unless set.
    pub s3_listen: Option<String>,
    /// The URL clients reach the server at, for the links `coffer url`
    /// makes on backends that cannot presign (default `http://LISTEN`).
    pub public_url: Option<String>,
    /// The server's key file, which signs links and derives S3 secret keys
    /// (default `<data-dir>/server.key`, made on first use).
    pub key_file: Option<PathBuf>,
    /// Background work a server runs, each on unless turned off here.
    pub background: BackgroundWork,
}

/// Which background work `coffer serve` runs (`[server.background]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BackgroundWork {
    /// Deliver events from the outbox to the hooks.
    pub dispatch: bool,
    /// Move what the spool holds to the backend.
    pub spool_sync: bool,
    /// Flush the hot store to the backend, and expire old hot copies.
    pub hot: bool,
    /// Apply the lifecycle rules (daily).
    pub lifecycle: bool,
    /// Poll restores of archived content.
    pub restores: bool,
    /// How long the dispatcher's claim on a delivery lasts (`"120s"`): a
    /// server killed mid-delivery has its claims delivered by another
    /// after this long. Longer than any hook's timeout.
    #[serde(deserialize_with = "span_from_text")]
    pub claim_timeout: Duration,
}

fn span_from_text<'de, D: serde::Deserializer<'de>>(deserializer: D) -> std::result::Result<Duration, D::Error> {
    let text = String::deserialize(deserializer)?;
    parse_claim_timeout("server.background.claim_timeout", &text).map_err(|e| serde::de::Error::custom(e.message()))
}

fn parse_claim_timeout(setting: &str, text: &str) -> Result<Duration> {
    match humantime::parse_duration(text.trim()) {
        Ok(span) if !span.is_zero() => Ok(span),
        _ => Err(crate::error::Error::invalid_input(format!(
            "{setting} {text:?}: expected a span like 120s or 5m"
        ))),
    }
}

impl Default for BackgroundWork {
    fn default() -> Self {
        BackgroundWork {
            dispatch: true,
            spool_sync: true,
            hot: true,
            lifecycle: true,
            restores: true,
            claim_timeout: Duration::from_secs(120),
        }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: "127.0.0.1:8080".to_owned(),
            s3_listen: None,
            public_url: None,
            key_file: None,
            background: BackgroundWork::default(),
        }
    }
}

impl ServerConfig {
    /// Apply `COFFER_SERVER_LISTEN`, `COFFER_SERVER_S3_LISTEN`, `COFFER_SERVER_PUBLIC_URL`,
    /// `COFFER_SERVER_KEY_FILE` and `COFFER_SERVER_DISPATCH` (and `_SPOOL_SYNC`,
    /// `_HOT`, `_LIFECYCLE`, `_RESTORES`: `0` turns that work off) and
    /// `COFFER_SERVER_CLAIM_TIMEOUT`.
    pub(crate) fn apply_env(&mut self, lookup: &impl Fn(&str) -> Option<String>) -> Result<()> {
        if let Some(listen) = lookup("COFFER_SERVER_LISTEN") {
            self.listen = listen;
        }
        if let Some(listen) = lookup("COFFER_SERVER_S3_LISTEN") {
            self.s3_listen = Some(listen);
        }
        if let Some(url) = lookup("COFFER_SERVER_PUBLIC_URL") {
            self.public_url = Some(url);
        }
        if let Some(file) = lookup("COFFER_SERVER_KEY_FILE") {
            self.key_file = Some(PathBuf::from(file));
        }
        if let Some(text) = lookup("COFFER_SERVER_CLAIM_TIMEOUT") {
            self.background.claim_timeout = parse_claim_timeout("COFFER_SERVER_CLAIM_TIMEOUT", &text)?;
        }
        let work = &mut self.background;
        for (name, switch) in [
            ("COFFER_SERVER_DISPATCH", &mut work.dispatch),
            ("COFFER_SERVER_SPOOL_SYNC", &mut work.spool_sync),
            ("COFFER_SERVER_HOT", &mut work.hot),
            ("COFFER_SERVER_LIFECYCLE", &mut work.lifecycle),
            ("COFFER_SERVER_RESTORES", &mut work.restores),
        ] {
            if let Some(value) = lookup(name) {
                *switch = parse_flag(name, &value)?;
            }
        }
        Ok(())
    }

    /// The server key file: `key_file`, else `<data_dir>/server.key`.
    pub fn key_path(&self, data_dir: &Path) -> PathBuf {
        self.key_file.clone().unwrap_or_else(|| data_dir.join("server.key"))
    }

    /// The URL the server is reached at: `public_url`, else `http://LISTEN`.
    pub fn public_url(&self) -> String {
        self.public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", self.listen))
    }
}
