//! The `[hot]` table and its `COFFER_HOT_*` variables: which puts the hot
//! store takes (their bytes committed in the catalog, written to the
//! backend later by the flusher), how long their hot copies are kept, and
//! the engine that serves them (the catalog's, or ClickHouse).

mod cache;
mod clickhouse;

pub(crate) use self::cache::ContentCache;
pub use self::clickhouse::HotObject;
pub(crate) use self::clickhouse::{ClickHouse, HotRow};

use std::time::Duration;

use serde::Deserialize;

use crate::error::{Error, Result};

/// The largest `max_object_size` allowed: hot content is held in memory
/// from the put to its commit.
pub const MAX_HOT_OBJECT_SIZE: u64 = 1 << 20;

/// How often a long-running process flushes the hot store.
pub const FLUSH_INTERVAL: Duration = Duration::from_secs(1);

/// What serves hot copies.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HotEngine {
    /// The catalog's own tables (SQLite or PostgreSQL).
    #[default]
    Catalog,
    /// ClickHouse holds a copy of recent objects, fed from the outbox; the
    /// catalog stays the truth for versions and keeps its hot copies.
    Clickhouse,
}

/// The hot store's settings (`[hot]`).
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HotConfig {
    /// Puts of at most this many bytes are committed with their bytes in
    /// the catalog (0 turns the hot store off). 64 KiB by default.
    pub max_object_size: u64,
    /// Hot copies are dropped this many days after their put (only once
    /// flushed); reads then come from the backend. 90 by default.
    pub days: u64,
    /// What serves hot copies: `catalog` (the default) or `clickhouse`.
    pub engine: HotEngine,
    /// ClickHouse's HTTP interface, with `?database=NAME` (for `clickhouse`).
    pub clickhouse_url: Option<String>,
}

impl Default for HotConfig {
    fn default() -> Self {
        HotConfig {
            max_object_size: 64 << 10,
            days: 90,
            engine: HotEngine::Catalog,
            clickhouse_url: None,
        }
    }
}

impl std::fmt::Debug for HotConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HotConfig")
            .field("max_object_size", &self.max_object_size)
            .field("days", &self.days)
            .field("engine", &self.engine)
            .field(
                "clickhouse_url",
                &self.clickhouse_url.as_deref().map(crate::redact::redact_url),
            )
            .finish()
    }
}

impl HotConfig {
    /// No hot store: every put writes its bytes and manifest before its commit.
    pub fn off() -> Self {
        HotConfig {
            max_object_size: 0,
            ..HotConfig::default()
        }
    }

    /// Whether a put of `size` bytes goes to the hot store.
    pub fn takes(&self, size: u64) -> bool {
        size <= self.max_object_size
    }

    /// How long a hot copy is kept.
    pub fn max_age(&self) -> Duration {
        Duration::from_secs(self.days.saturating_mul(86_400))
    }

    /// Refuse settings out of range, in one line.
    pub fn validate(&self) -> Result<()> {
        if self.max_object_size > MAX_HOT_OBJECT_SIZE {
            return Err(Error::invalid_input(format!(
                "hot.max_object_size = {} is more than the {MAX_HOT_OBJECT_SIZE} bytes allowed",
                self.max_object_size
            )));
        }
        if self.days == 0 {
            return Err(Error::invalid_input(
                "hot.days = 0 would drop hot copies as soon as they are flushed: use at least 1",
            ));
        }
        match (self.engine, &self.clickhouse_url) {
            (HotEngine::Clickhouse, None) => Err(Error::invalid_input(
                "hot.engine = \"clickhouse\" needs hot.clickhouse_url (COFFER_HOT_CLICKHOUSE_URL)",
            )),
            (HotEngine::Clickhouse, Some(url)) => ClickHouse::new(url).map(|_| ()),
            (HotEngine::Catalog, _) => Ok(()),
        }
    }

    /// The ClickHouse server that serves hot copies, with `hot.engine = "clickhouse"`.
    pub(crate) fn clickhouse(&self) -> Result<Option<ClickHouse>> {
        match (self.engine, &self.clickhouse_url) {
            (HotEngine::Clickhouse, Some(url)) => ClickHouse::new(url).map(Some),
            _ => Ok(None),
        }
    }

    /// Apply `COFFER_HOT_MAX_OBJECT_SIZE`, `COFFER_HOT_DAYS`, `COFFER_HOT_ENGINE`
    /// and `COFFER_HOT_CLICKHOUSE_URL` as `lookup` reports them.
    pub(crate) fn apply_env(&mut self, lookup: impl Fn(&str) -> Option<String>) -> Result<()> {
        let number = |var: &str| -> Result<Option<u64>> {
            lookup(var)
                .map(|text| {
                    text.trim()
                        .parse()
                        .map_err(|_| Error::invalid_input(format!("{var}={text:?}: expected a whole number")))
                })
                .transpose()
        };
        if let Some(size) = number("COFFER_HOT_MAX_OBJECT_SIZE")? {
            self.max_object_size = size;
        }
        if let Some(days) = number("COFFER_HOT_DAYS")? {
            self.days = days;
        }
        if let Some(engine) = lookup("COFFER_HOT_ENGINE").filter(|e| !e.is_empty()) {
            self.engine = match engine.trim() {
                "catalog" => HotEngine::Catalog,
                "clickhouse" => HotEngine::Clickhouse,
                other => {
                    return Err(Error::invalid_input(format!(
                        "COFFER_HOT_ENGINE={other:?}: expected catalog or clickhouse"
                    )));
                }
            };
        }
        if let Some(url) = lookup("COFFER_HOT_CLICKHOUSE_URL").filter(|u| !u.is_empty()) {
            self.clickhouse_url = Some(url);
        }
        self.validate()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_take_small_puts_for_ninety_days() {
        let hot = HotConfig::default();
        assert!(hot.takes(64 << 10));
        assert!(!hot.takes((64 << 10) + 1));
        assert_eq!(hot.max_age(), Duration::from_secs(90 * 86_400));
        assert!(!HotConfig::off().takes(1));
        assert!(HotConfig::off().takes(0), "an empty put is as cheap hot as not");
    }

    #[test]
    fn a_clickhouse_password_never_shows() {
        let mut hot = HotConfig::default();
        let set = |var: &str| match var {
            "COFFER_HOT_ENGINE" => Some("clickhouse".to_owned()),
            "COFFER_HOT_CLICKHOUSE_URL" => Some("http://u:s3cr3t@127.0.0.1:8123/?database=d".to_owned()),
            _ => None,
        };
        hot.apply_env(set).unwrap();
        assert_eq!(hot.engine, HotEngine::Clickhouse);
        assert!(!format!("{hot:?}").contains("s3cr3t"), "{hot:?}");
        let clickhouse = hot.clickhouse().unwrap().unwrap();
        assert!(!format!("{clickhouse:?}").contains("s3cr3t"), "{clickhouse:?}");
        let mut bare = HotConfig::default();
        let err = bare
            .apply_env(|var| (var == "COFFER_HOT_ENGINE").then(|| "clickhouse".to_owned()))
            .unwrap_err();
        assert!(err.message().contains("needs hot.clickhouse_url"), "{err}");
        let err = HotConfig::default()
            .apply_env(|var| (var == "COFFER_HOT_ENGINE").then(|| "redis".to_owned()))
            .unwrap_err();
        assert_eq!(
            err.message(),
            "COFFER_HOT_ENGINE=\"redis\": expected catalog or clickhouse"
        );
    }

    #[test]
    fn out_of_range_settings_are_refused_in_one_line() {
        let mut hot = HotConfig::default();
        let err = hot
            .apply_env(|var| (var == "COFFER_HOT_MAX_OBJECT_SIZE").then(|| "2000000".to_owned()))
            .unwrap_err();
        assert!(err.message().contains("more than the 1048576 bytes allowed"), "{err}");
        let err = HotConfig::default()
            .apply_env(|var| (var == "COFFER_HOT_DAYS").then(|| "soon".to_owned()))
            .unwrap_err();
        assert_eq!(err.message(), "COFFER_HOT_DAYS=\"soon\": expected a whole number");
        let mut hot = HotConfig::default();
        hot.apply_env(|var| (var == "COFFER_HOT_DAYS").then(|| "7".to_owned()))
            .unwrap();
        assert_eq!(hot.days, 7);
    }
}
