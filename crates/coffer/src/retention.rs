//! Retention and legal hold, with S3 Object Lock's semantics, enforced by
//! the catalog on every backend.
//!
//! A version may carry a retention (a mode and a retain-until time) and a
//! legal hold. While either is in force nothing removes the version or its
//! blob: not `delete --version`, prune, `max_versions`, lifecycle, repair or
//! an audit purge of its rows. A delete without a version id still writes a
//! delete marker, as on S3: the protected versions stay behind it.
//! - **Governance**: shortening or removing the retention, or removing the
//!   version, needs an explicit bypass, which is audited.
//! - **Compliance**: nobody shortens or removes it, or removes the version,
//!   before its date. Extending is always allowed.
//! - **Legal hold**: no date; set and cleared explicitly; it blocks removal
//!   whatever the retention says.
//!
//! The rules here are pure: the catalog's plans call them inside the
//! transaction that would change or remove a version.
//!
//! ```
//! use std::time::Duration;
//! use coffer::Timestamp;
//! use coffer::retention::{Protection, Retention, RetentionMode};
//!
//! let now = Timestamp::parse("2024-01-01T00:00:00Z")?;
//! let until = now.plus(Duration::from_secs(86_400));
//! let locked = Protection { retention: Some(Retention { mode: RetentionMode::Compliance, until }), legal_hold: false };
//! assert!(locked.check_removal("a version", now, true).is_err()); // no bypass for compliance
//! assert!(locked.check_removal("a version", until, false).is_ok()); // free once the date has passed
//! # Ok::<(), coffer::Error>(())
//! ```

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};

use crate::error::{Error, ErrorKind, Result};
use crate::time::Timestamp;

/// How strictly a retention holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum RetentionMode {
    /// Shortening, removing or deleting needs an explicit, audited bypass.
    Governance,
    /// Nobody can shorten, remove or delete before the date.
    Compliance,
}

impl RetentionMode {
    /// The mode's name, as configs, flags and S3 write it (lowercase).
    pub fn as_str(self) -> &'static str {
        match self {
            RetentionMode::Governance => "governance",
            RetentionMode::Compliance => "compliance",
        }
    }
}

impl fmt::Display for RetentionMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RetentionMode {
    type Err = Error;
    fn from_str(text: &str) -> Result<Self> {
        match text.trim().to_ascii_lowercase().as_str() {
            "governance" => Ok(RetentionMode::Governance),
            "compliance" => Ok(RetentionMode::Compliance),
            _ => Err(Error::invalid_input(format!(
                "retention mode {text:?}: expected governance or compliance"
            ))),
        }
    }
}

/// A retention: the version is kept until `until`, as strictly as `mode` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Retention {
    /// How strictly.
    pub mode: RetentionMode,
    /// Until when (the version may be removed from this instant on).
    pub until: Timestamp,
}

impl Retention {
    /// The retention a request names: until a point in time (`until`:
    /// RFC 3339 or a date) or for a span from `now` (`span`: `10y`, `90d`), in
    /// `mode` (`governance` or `compliance`; governance when absent). `None`
    /// when it names none; a mode alone, or both a time and a span, is refused.
    pub fn requested(
        until: Option<&str>,
        span: Option<&str>,
        mode: Option<&str>,
        now: Timestamp,
    ) -> Result<Option<Self>> {
        let mode = mode.map(str::parse::<RetentionMode>).transpose()?;
        let until = match (until, span) {
            (Some(_), Some(_)) => {
                return Err(Error::invalid_input(
                    "give a retain-until time or a retention span, not both",
                ));
            }
            (Some(text), None) => Timestamp::parse_point(text)?,
            (None, Some(text)) => now.plus(parse_span("retention span", text)?),
            (None, None) if mode.is_some() => {
                return Err(Error::invalid_input(
                    "a retention mode needs a retain-until time or a span (--retain-until T or --retain 10y)",
                ));
            }
            (None, None) => return Ok(None),
        };
        Ok(Some(Retention {
            mode: mode.unwrap_or(RetentionMode::Governance),
            until,
        }))
    }

    /// Refuse a retention asked for that would already be over at `now`.
    pub fn check_requested(&self, now: Timestamp) -> Result<()> {
        if self.in_force(now) {
            return Ok(());
        }
        Err(Error::invalid_input(format!(
            "retain-until {} is in the past: a retention must end later than now",
            self.until
        )))
    }

    /// True while the retention holds at `now`.
    pub fn in_force(&self, now: Timestamp) -> bool {
        now < self.until
    }
}

/// What protects one version from removal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Protection {
    /// Its retention, if it has one (in force or past).
    pub retention: Option<Retention>,
    /// A legal hold is on.
    pub legal_hold: bool,
}

/// The one error every refused removal or change of a protection gets.
fn locked(message: String) -> Error {
    Error::new(ErrorKind::RetentionLocked, message)
}

impl Protection {
    /// One protection that holds as long as each of `all` does at `now`
    /// (what an object shared by several versions needs): the latest
    /// retention in force, compliance where one reaches as far, and a legal
    /// hold if any has one.
    pub fn covering(all: impl IntoIterator<Item = Protection>, now: Timestamp) -> Protection {
        let mut covering = Protection::default();
        for protection in all {
            covering.legal_hold |= protection.legal_hold;
            if let Some(retention) = protection.active(now) {
                covering.retention = Some(match covering.retention {
                    Some(held) if (held.until, held.mode) >= (retention.until, retention.mode) => held,
                    _ => retention,
                });
            }
        }
        covering
    }

    /// The retention still in force at `now`, if any.
    pub fn active(&self, now: Timestamp) -> Option<Retention> {
        self.retention.filter(|r| r.in_force(now))
    }

    /// True when something protects the version at `now`.
    pub fn is_protected(&self, now: Timestamp) -> bool {
        self.legal_hold || self.active(now).is_some()
    }

    /// May `what` (a version, named for the message) be removed at `now`?
    /// A legal hold always refuses; a compliance retention in force always
    /// refuses; a governance one refuses unless `bypass_governance`.
    pub fn check_removal(&self, what: &str, now: Timestamp, bypass_governance: bool) -> Result<()> {
        if self.legal_hold {
            return Err(locked(format!(
                "{what} is under legal hold: it cannot be removed until the hold is cleared"
            )));
        }
        match self.active(now) {
            Some(Retention {
                mode: RetentionMode::Compliance,
                until,
            }) => Err(locked(format!(
                "{what} is under compliance retention until {until}: nobody can remove it before then"
            ))),
            Some(Retention {
                mode: RetentionMode::Governance,
                until,
            }) if !bypass_governance => Err(locked(format!(
                "{what} is under governance retention until {until}: removing it needs --bypass-governance"
            ))),
            _ => Ok(()),
        }
    }

    /// May the retention of `what` become `requested` (`None`: removed) at
    /// `now`? Extending, or making it stricter, is always allowed; a past
    /// retention may be changed freely. Shortening, removing or relaxing a
    /// compliance retention in force is refused; a governance one needs
    /// `bypass_governance`. Returns whether the bypass was used.
    pub fn check_retention_change(
        &self,
        what: &str,
        requested: Option<&Retention>,
        now: Timestamp,
        bypass_governance: bool,
    ) -> Result<bool> {
        let Some(current) = self.active(now) else {
            return Ok(false);
        };
        let keeps_it = requested.is_some_and(|r| r.until >= current.until && r.mode >= current.mode);
        if keeps_it {
            return Ok(false);
        }
        let change = match requested {
            None => "removed".to_owned(),
            Some(r) if r.until < current.until => format!("shortened to {}", r.until),
            Some(r) => format!("relaxed to {}", r.mode),
        };
        match current.mode {
            RetentionMode::Compliance => Err(locked(format!(
                "{what} is under compliance retention until {}: it cannot be {change}",
                current.until
            ))),
            RetentionMode::Governance if bypass_governance => Ok(true),
            RetentionMode::Governance => Err(locked(format!(
                "{what} is under governance retention until {}: it can be {change} only with --bypass-governance",
                current.until
            ))),
        }
    }
}

/// A retention period: a mode and how long from a version's creation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionPeriod {
    /// How strictly.
    pub mode: RetentionMode,
    /// How long from the version's creation.
    pub duration: Duration,
}

impl RetentionPeriod {
    /// The retention this period gives a version created at `created_at`.
    pub fn from(&self, created_at: Timestamp) -> Retention {
        Retention {
            mode: self.mode,
            until: created_at.plus(self.duration),
        }
    }
}

/// A per-prefix rule (`[[retention.rules]]`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionRule {
    /// Keys starting with this.
    pub prefix: String,
    /// How strictly (default: the store's mode, else governance).
    pub mode: Option<RetentionMode>,
    /// How long from each version's creation (`"10y"`, `"90d"`).
    #[serde(deserialize_with = "span_from_text")]
    pub duration: Duration,
}

/// The `[retention]` section: the store's default and its per-prefix rules.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetentionConfig {
    /// The default mode (governance when a duration is given without one).
    pub mode: Option<RetentionMode>,
    /// The default period for every new version (none when absent).
    #[serde(deserialize_with = "optional_span_from_text")]
    pub duration: Option<Duration>,
    /// Rules by key prefix.
    pub rules: Vec<RetentionRule>,
}

impl RetentionConfig {
    fn default_mode(&self) -> RetentionMode {
        self.mode.unwrap_or(RetentionMode::Governance)
    }

    /// The periods that apply to `key`: the store's default and every rule
    /// whose prefix the key starts with.
    pub fn periods_for(&self, key: &str) -> Vec<RetentionPeriod> {
        let default = self.duration.map(|duration| RetentionPeriod {
            mode: self.default_mode(),
            duration,
        });
        let rules = self
            .rules
            .iter()
            .filter(|rule| key.starts_with(&rule.prefix))
            .map(|rule| RetentionPeriod {
                mode: rule.mode.unwrap_or(self.default_mode()),
                duration: rule.duration,
            });
        default.into_iter().chain(rules).collect()
    }

    /// The retention a new version of `key` created at `created_at` gets:
    /// the longest of the store's default, the rules that match and the one
    /// asked for with the put (`requested`); of equal dates, compliance.
    pub fn for_new_version(&self, key: &str, created_at: Timestamp, requested: Option<Retention>) -> Option<Retention> {
        self.periods_for(key)
            .into_iter()
            .map(|period| period.from(created_at))
            .chain(requested)
            .max_by_key(|r| (r.until, r.mode))
    }

    /// Refuse rules that cannot mean anything: an empty prefix or a zero span.
    pub fn validate(&self) -> Result<()> {
        if self.duration.is_some_and(|d| d.is_zero()) {
            return Err(Error::invalid_input(
                "[retention] duration of 0 protects nothing: use a span like 7y, or leave it out",
            ));
        }
        if self.mode.is_some() && self.duration.is_none() && self.rules.is_empty() {
            return Err(Error::invalid_input(
                "[retention] mode without a duration or rules protects nothing: add duration = \"7y\"",
            ));
        }
        for rule in &self.rules {
            if rule.prefix.is_empty() {
                return Err(Error::invalid_input(
                    "[[retention.rules]] needs a prefix (the store default is [retention] duration)",
                ));
            }
            if rule.duration.is_zero() {
                return Err(Error::invalid_input(format!(
                    "[[retention.rules]] for {:?}: a duration of 0 protects nothing",
                    rule.prefix
                )));
            }
        }
        Ok(())
    }
}

/// Parse a retention span (`7y`, `10years`, `90d`).
pub fn parse_span(setting: &str, text: &str) -> Result<Duration> {
    humantime::parse_duration(text.trim()).map_err(|e| {
        Error::invalid_input(format!(
            "{setting} {text:?}: {e}; expected a span like 7y, 10years or 90d"
        ))
    })
}

fn span_from_text<'de, D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Duration, D::Error> {
    let text = String::deserialize(deserializer)?;
    parse_span("duration", &text).map_err(|e| serde::de::Error::custom(e.message()))
}

fn optional_span_from_text<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> std::result::Result<Option<Duration>, D::Error> {
    span_from_text(deserializer).map(Some)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn at(text: &str) -> Timestamp {
        Timestamp::parse(text).unwrap()
    }

    fn retained(mode: RetentionMode, until: &str) -> Protection {
        Protection {
            retention: Some(Retention { mode, until: at(until) }),
            legal_hold: false,
        }
    }

    #[test]
    fn a_shared_object_is_covered_by_the_longest_protection() {
        let now = at("2024-06-01T00:00:00Z");
        let governance = retained(RetentionMode::Governance, "2026-01-01T00:00:00Z");
        let compliance = retained(RetentionMode::Compliance, "2025-01-01T00:00:00Z");
        let past = retained(RetentionMode::Compliance, "2024-01-01T00:00:00Z");
        let held = Protection {
            retention: None,
            legal_hold: true,
        };
        let covering = Protection::covering([compliance, governance, past], now);
        assert_eq!(covering, governance);
        // A tie goes to compliance; a hold on any one holds them all.
        let tie = retained(RetentionMode::Compliance, "2026-01-01T00:00:00Z");
        assert_eq!(Protection::covering([governance, tie], now).retention, tie.retention);
        assert!(Protection::covering([past, held], now).legal_hold);
        assert_eq!(Protection::covering([past], now), Protection::default());
    }

    #[test]
    fn removal_is_refused_while_protected_and_free_after() {
        let now = at("2024-06-01T00:00:00Z");
        let compliance = retained(RetentionMode::Compliance, "2025-01-01T00:00:00Z");
        let err = compliance.check_removal("k version v", now, true).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::RetentionLocked);
        assert_eq!(
            err.message(),
            "k version v is under compliance retention until 2025-01-01T00:00:00.000000Z: nobody can remove it before then"
        );
        assert!(compliance.check_removal("k", at("2025-01-01T00:00:00Z"), false).is_ok());

        let governance = retained(RetentionMode::Governance, "2025-01-01T00:00:00Z");
        assert!(governance.check_removal("k", now, false).is_err());
        assert!(governance.check_removal("k", now, true).is_ok());

        let held = Protection {
            legal_hold: true,
            ..Protection::default()
        };
        assert!(
            held.check_removal("k", now, true)
                .unwrap_err()
                .message()
                .contains("legal hold")
        );
        assert!(Protection::default().check_removal("k", now, false).is_ok());
    }

    #[test]
    fn compliance_can_be_extended_never_shortened_relaxed_or_removed() {
        let now = at("2024-06-01T00:00:00Z");
        let current = retained(RetentionMode::Compliance, "2025-01-01T00:00:00Z");
        let longer = Retention {
            mode: RetentionMode::Compliance,
            until: at("2026-01-01T00:00:00Z"),
        };
        assert!(!current.check_retention_change("k", Some(&longer), now, false).unwrap());
        let shorter = Retention {
            until: at("2024-12-01T00:00:00Z"),
            ..longer
        };
        for (requested, word) in [
            (Some(shorter), "shortened"),
            (None, "removed"),
            (
                Some(Retention {
                    mode: RetentionMode::Governance,
                    ..longer
                }),
                "relaxed",
            ),
        ] {
            let err = current
                .check_retention_change("k", requested.as_ref(), now, true)
                .unwrap_err();
            assert_eq!(err.kind(), ErrorKind::RetentionLocked);
            assert!(err.message().contains(word), "{}", err.message());
        }
        // Once past, anything goes.
        assert!(
            current
                .check_retention_change("k", None, at("2025-02-01T00:00:00Z"), false)
                .is_ok()
        );
    }

    #[test]
    fn governance_needs_the_bypass_to_shorten_or_remove_and_says_it_was_used() {
        let now = at("2024-06-01T00:00:00Z");
        let current = retained(RetentionMode::Governance, "2025-01-01T00:00:00Z");
        let stricter = Retention {
            mode: RetentionMode::Compliance,
            until: at("2025-01-01T00:00:00Z"),
        };
        assert!(
            !current
                .check_retention_change("k", Some(&stricter), now, false)
                .unwrap()
        );
        let err = current.check_retention_change("k", None, now, false).unwrap_err();
        assert!(err.message().contains("--bypass-governance"), "{}", err.message());
        assert!(current.check_retention_change("k", None, now, true).unwrap());
    }

    #[test]
    fn a_new_version_gets_the_longest_retention_that_applies() {
        let config: RetentionConfig = toml::from_str(
            r#"
            mode = "compliance"
            duration = "7y"
            [[rules]]
            prefix = "invoices/"
            duration = "10y"
            [[rules]]
            prefix = "tmp/"
            mode = "governance"
            duration = "1d"
            "#,
        )
        .unwrap();
        config.validate().unwrap();
        let created = at("2024-01-01T00:00:00Z");
        let invoice = config.for_new_version("invoices/a.pdf", created, None).unwrap();
        assert_eq!(invoice.until, created.plus(Duration::from_secs(10 * 31_557_600)));
        assert_eq!(invoice.mode, RetentionMode::Compliance);
        // The store default outlasts the tmp/ rule.
        let tmp = config.for_new_version("tmp/x", created, None).unwrap();
        assert_eq!(tmp.until, created.plus(Duration::from_secs(7 * 31_557_600)));
        // A longer one asked for with the put wins.
        let asked = Retention {
            mode: RetentionMode::Governance,
            until: at("2040-01-01T00:00:00Z"),
        };
        assert_eq!(config.for_new_version("docs/a", created, Some(asked)), Some(asked));
        assert_eq!(
            RetentionConfig::default().for_new_version("docs/a", created, None),
            None
        );
    }

    #[test]
    fn a_request_names_a_time_or_a_span_and_a_mode() {
        let now = at("2024-01-01T00:00:00Z");
        let until = Retention::requested(Some("2033-01-01"), None, Some("compliance"), now)
            .unwrap()
            .unwrap();
        assert_eq!(
            (until.mode, until.until),
            (RetentionMode::Compliance, at("2033-01-01T00:00:00Z"))
        );
        let span = Retention::requested(None, Some("10d"), None, now).unwrap().unwrap();
        assert_eq!(
            (span.mode, span.until),
            (RetentionMode::Governance, now.plus(Duration::from_secs(864_000)))
        );
        assert_eq!(Retention::requested(None, None, None, now).unwrap(), None);
        for (until, span, mode) in [
            (Some("2033-01-01"), Some("1y"), None),
            (None, None, Some("compliance")),
            (Some("7d"), None, None),
            (None, Some("soon"), None),
            (None, Some("1y"), Some("strict")),
        ] {
            let err = Retention::requested(until, span, mode, now).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "{until:?} {span:?} {mode:?}");
            assert!(!err.message().contains('\n'));
        }
    }

    #[test]
    fn rules_that_protect_nothing_are_refused() {
        for text in [
            "duration = \"0s\"",
            "mode = \"compliance\"",
            "[[rules]]\nprefix = \"\"\nduration = \"1d\"",
            "[[rules]]\nprefix = \"a/\"\nduration = \"0d\"",
        ] {
            let config: RetentionConfig = toml::from_str(text).unwrap();
            assert!(config.validate().is_err(), "{text}");
        }
        assert!(toml::from_str::<RetentionConfig>("mode = \"strict\"").is_err());
        assert!(toml::from_str::<RetentionConfig>("duration = \"forever\"").is_err());
    }
}
