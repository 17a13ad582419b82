//! Hook definitions: what a hook delivers to, and which events it wants.

use serde::{Deserialize, Serialize};

use super::Event;
use super::sinks::{AmqpConfig, ExecConfig, FileLogConfig, NatsConfig, SqsConfig, WebhookConfig};
use crate::error::{Error, Result};
use crate::time::Timestamp;

/// Longest hook name.
pub const MAX_HOOK_NAME_BYTES: usize = 64;
/// Most attempts a hook may be given.
pub const MAX_ATTEMPTS_LIMIT: u32 = 100;

/// A hook as the catalog keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct HookDefinition {
    /// Unique name.
    pub name: String,
    /// Where it delivers.
    pub spec: HookSpec,
    /// Which events it wants.
    pub filter: EventFilter,
    /// Deliver inside the operation that fired the event: the operation
    /// returns once this hook has been tried (a failure is still retried
    /// later by the dispatcher, and does not fail the operation).
    pub synchronous: bool,
    /// Attempts before a delivery is dead-lettered.
    pub max_attempts: u32,
    /// When it was added.
    pub created_at: Timestamp,
    /// Who added it.
    pub created_by: String,
}

impl HookDefinition {
    /// Check the name and limits.
    pub fn validate(&self) -> Result<()> {
        let name = &self.name;
        let valid_name = !name.is_empty()
            && name.len() <= MAX_HOOK_NAME_BYTES
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        if !valid_name {
            return Err(Error::invalid_input(format!(
                "invalid hook name {name:?}: use letters, digits, '.', '_' and '-', at most {MAX_HOOK_NAME_BYTES} bytes"
            )));
        }
        if self.max_attempts == 0 || self.max_attempts > MAX_ATTEMPTS_LIMIT {
            return Err(Error::invalid_input(format!(
                "hook {name}: attempts must be 1 to {MAX_ATTEMPTS_LIMIT}, not {}",
                self.max_attempts
            )));
        }
        self.filter.validate()?;
        self.spec.validate()
    }

    /// The definition as shown to users: every secret replaced by `***`.
    pub fn redacted(&self) -> HookDefinition {
        HookDefinition {
            spec: self.spec.redacted(),
            ..self.clone()
        }
    }
}

/// Where a hook delivers, with the receiver's settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum HookSpec {
    /// An HTTP request per event.
    Webhook(WebhookConfig),
    /// A line per event, appended to a file.
    Filelog(FileLogConfig),
    /// A command run per event, the event on its standard input.
    Exec(ExecConfig),
    /// An in-process function registered on the `Store` under the hook's
    /// name; only processes that registered it deliver to it.
    Callback,
    /// A NATS JetStream subject.
    Nats(NatsConfig),
    /// An AMQP 0-9-1 exchange (RabbitMQ).
    Amqp(AmqpConfig),
    /// An Amazon SQS queue.
    Sqs(SqsConfig),
}

impl HookSpec {
    /// The kind's name: `webhook`, `filelog`, ...
    pub fn kind(&self) -> &'static str {
        match self {
            HookSpec::Webhook(_) => "webhook",
            HookSpec::Filelog(_) => "filelog",
            HookSpec::Exec(_) => "exec",
            HookSpec::Callback => "callback",
            HookSpec::Nats(_) => "nats",
            HookSpec::Amqp(_) => "amqp",
            HookSpec::Sqs(_) => "sqs",
        }
    }

    fn validate(&self) -> Result<()> {
        super::sinks::ensure_built(self)?;
        match self {
            HookSpec::Webhook(config) => config.validate(),
            HookSpec::Filelog(config) => config.validate(),
            HookSpec::Exec(config) => config.validate(),
            HookSpec::Callback => Ok(()),
            HookSpec::Nats(config) => config.validate(),
            HookSpec::Amqp(config) => config.validate(),
            HookSpec::Sqs(config) => config.validate(),
        }
    }

    /// The secrets among the settings, to seal or open in place: signing
    /// keys, header values, passwords, tokens, secret keys, and URLs that
    /// carry a password.
    pub(crate) fn secrets_mut(&mut self) -> Vec<&mut String> {
        let url = |url: &mut String| crate::redact::has_password(url) || crate::crypto::secrets::is_sealed(url);
        let mut secrets = Vec::new();
        match self {
            HookSpec::Webhook(config) => {
                if url(&mut config.url) {
                    secrets.push(&mut config.url);
                }
                secrets.extend(config.secret.as_mut());
                secrets.extend(config.headers.values_mut());
            }
            HookSpec::Nats(config) => {
                if url(&mut config.url) {
                    secrets.push(&mut config.url);
                }
                secrets.extend(config.password.as_mut());
                secrets.extend(config.token.as_mut());
            }
            HookSpec::Amqp(config) => {
                if url(&mut config.url) {
                    secrets.push(&mut config.url);
                }
            }
            HookSpec::Sqs(config) => {
                secrets.push(&mut config.secret_access_key);
                secrets.extend(config.session_token.as_mut());
            }
            HookSpec::Filelog(_) | HookSpec::Exec(_) | HookSpec::Callback => {}
        }
        secrets
    }

    /// The same settings with every secret replaced by `***`.
    pub fn redacted(&self) -> HookSpec {
        match self {
            HookSpec::Webhook(config) => HookSpec::Webhook(config.redacted()),
            HookSpec::Nats(config) => HookSpec::Nats(config.redacted()),
            HookSpec::Amqp(config) => HookSpec::Amqp(config.redacted()),
            HookSpec::Sqs(config) => HookSpec::Sqs(config.redacted()),
            other => other.clone(),
        }
    }
}

/// Which events a hook wants; every part given must match.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct EventFilter {
    /// Event types; empty means all. `object.*` matches every type starting with `object.`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<String>,
    /// Only events about keys starting with this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// Only events about keys matching this glob (`*` stays within one `/`
    /// segment, `**` spans segments, `?` is one character).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub glob: Option<String>,
    /// Only events whose user metadata or tags satisfy all of these (each
    /// name is looked up in the metadata first, then in the tags: see
    /// [`Event::attribute`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metadata: Vec<MetadataPredicate>,
}

/// A condition on one user metadata entry of the event, or on one of its
/// tags when the metadata has no entry of that name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct MetadataPredicate {
    /// The metadata name.
    pub name: String,
    /// The value it must have, or must not have when `negated`.
    pub value: String,
    /// `name!=value`: the entry is absent or has another value.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub negated: bool,
}

impl MetadataPredicate {
    /// Parse `name=value` or `name!=value`.
    pub fn parse(text: &str) -> Result<Self> {
        let (name, value, negated) = if let Some((name, value)) = text.split_once("!=") {
            (name, value, true)
        } else if let Some((name, value)) = text.split_once('=') {
            (name, value, false)
        } else {
            return Err(Error::invalid_input(format!(
                "invalid metadata condition {text:?}: expected NAME=VALUE or NAME!=VALUE"
            )));
        };
        let name = name.trim();
        if name.is_empty() {
            return Err(Error::invalid_input(format!(
                "invalid metadata condition {text:?}: the name is empty"
            )));
        }
        Ok(MetadataPredicate {
            name: name.to_owned(),
            value: value.to_owned(),
            negated,
        })
    }
}

impl std::fmt::Display for MetadataPredicate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let op = if self.negated { "!=" } else { "=" };
        write!(f, "{}{op}{}", self.name, self.value)
    }
}

impl EventFilter {
    fn validate(&self) -> Result<()> {
        for event in &self.events {
            super::validate_event_pattern(event)?;
        }
        if let Some(glob) = &self.glob {
            glob::Pattern::new(glob).map_err(|e| Error::invalid_input(format!("invalid glob {glob:?}: {e}")))?;
        }
        Ok(())
    }

    /// Whether `event` passes.
    pub fn matches(&self, event: &Event) -> bool {
        let type_matches = self.events.is_empty()
            || self.events.iter().any(|wanted| {
                wanted == "*"
                    || *wanted == event.event_type
                    || wanted
                        .strip_suffix('*')
                        .is_some_and(|start| start.ends_with('.') && event.event_type.starts_with(start))
            });
        if !type_matches {
            return false;
        }
        let subject = event.subject.as_deref();
        if let Some(prefix) = &self.prefix
            && !subject.is_some_and(|key| key.starts_with(prefix.as_str()))
        {
            return false;
        }
        if let Some(glob) = &self.glob {
            let options = glob::MatchOptions {
                case_sensitive: true,
                require_literal_separator: true,
                require_literal_leading_dot: false,
            };
            let matched = glob::Pattern::new(glob)
                .map(|pattern| subject.is_some_and(|key| pattern.matches_with(key, options)))
                .unwrap_or(false);
            if !matched {
                return false;
            }
        }
        self.metadata
            .iter()
            .all(|predicate| (event.attribute(&predicate.name) == Some(predicate.value.as_str())) != predicate.negated)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(event_type: &str, key: &str, metadata: serde_json::Value) -> Event {
        Event::new(
            event_type,
            Some(key),
            serde_json::json!({ "key": key, "metadata": metadata }),
        )
    }

    #[test]
    fn filters_combine_types_keys_and_metadata() {
        let filter = EventFilter {
            events: vec!["object.*".into(), "batch.completed".into()],
            prefix: Some("invoices/".into()),
            glob: Some("invoices/*.pdf".into()),
            metadata: vec![
                MetadataPredicate::parse("doc_type=invoice").unwrap(),
                MetadataPredicate::parse("qc_status!=rejected").unwrap(),
            ],
        };
        let good = serde_json::json!({ "doc_type": "invoice", "qc_status": "approved" });
        assert!(filter.matches(&event("object.archived", "invoices/a.pdf", good.clone())));
        assert!(!filter.matches(&event("version.created", "invoices/a.pdf", good.clone())));
        assert!(!filter.matches(&event("object.archived", "invoices/2024/a.pdf", good.clone())));
        assert!(!filter.matches(&event("object.archived", "receipts/a.pdf", good)));
        let rejected = serde_json::json!({ "doc_type": "invoice", "qc_status": "rejected" });
        assert!(!filter.matches(&event("object.updated", "invoices/a.pdf", rejected)));
        let unchecked = serde_json::json!({ "doc_type": "invoice" });
        assert!(filter.matches(&event("object.updated", "invoices/b.pdf", unchecked)));
        assert!(!filter.matches(&event("object.updated", "invoices/b.pdf", serde_json::json!({}))));
    }

    #[test]
    fn conditions_match_tags_when_the_metadata_has_no_such_entry() {
        let filter = EventFilter {
            metadata: vec![MetadataPredicate::parse("qc_status=approved").unwrap()],
            ..EventFilter::default()
        };
        let with = |metadata: serde_json::Value, tags: serde_json::Value| {
            Event::new(
                "object.updated",
                Some("a"),
                serde_json::json!({ "metadata": metadata, "tags": tags }),
            )
        };
        let approved = serde_json::json!({ "qc_status": "approved" });
        let pending = serde_json::json!({ "qc_status": "pending" });
        let none = serde_json::json!({});
        assert!(filter.matches(&with(none.clone(), approved.clone())), "a tag");
        assert!(
            filter.matches(&with(approved.clone(), none.clone())),
            "a metadata entry"
        );
        assert!(
            !filter.matches(&with(pending.clone(), approved.clone())),
            "the metadata wins"
        );
        assert!(filter.matches(&with(approved, pending)), "the metadata wins");
        assert!(!filter.matches(&with(none.clone(), none)));
    }

    #[test]
    fn event_types_are_built_in_or_under_a_prefix_of_their_own() {
        let check = |events: &[&str]| {
            EventFilter {
                events: events.iter().map(|e| (*e).to_owned()).collect(),
                ..EventFilter::default()
            }
            .validate()
        };
        for good in [
            "*",
            "object.archived",
            "version.*",
            "object.*",
            "qc.*",
            "batch.completed",
            "a.b.c",
        ] {
            assert!(check(&[good]).is_ok(), "{good}");
        }
        for bad in [
            "object.archvied",
            "objectarchived",
            "version.made",
            "hook.*",
            "store.*x",
            "",
            "qc.",
            ".x",
        ] {
            assert!(check(&["object.updated", bad]).is_err(), "{bad}");
        }
        let message = check(&["object.archve"]).unwrap_err().message().to_owned();
        assert!(
            message.contains("object.archived") && message.contains("version.deleted"),
            "{message}"
        );
    }

    #[test]
    fn an_empty_filter_takes_everything_and_bad_conditions_are_refused() {
        assert!(EventFilter::default().matches(&Event::new("qc.approved", None, serde_json::json!({}))));
        assert!(MetadataPredicate::parse("no-operator").is_err());
        assert!(MetadataPredicate::parse("=value").is_err());
        let bad_glob = EventFilter {
            glob: Some("a/[".into()),
            ..EventFilter::default()
        };
        assert!(bad_glob.validate().is_err());
    }
}
