//! Events: what happened in a store, as CloudEvents 1.0 documents.
//!
//! Every change writes its events into the catalog's outbox in the same
//! transaction as the change itself (see [`crate::catalog::Catalog`]). A dispatcher
//! then fans each event out to the hooks whose filters match it and delivers
//! it through the hook's [`Sink`], at least once, retrying with backoff until
//! the hook's attempt limit, after which the delivery is dead-lettered.

pub(crate) mod built_in;
mod dispatcher;
mod hook;
pub(crate) mod runtime;
mod sink;
pub mod sinks;
mod stats;

use serde::{Deserialize, Serialize};

pub use self::dispatcher::{DispatchReport, Dispatcher, DispatcherOptions};
pub use self::hook::{EventFilter, HookDefinition, HookSpec, MetadataPredicate};
pub use self::runtime::{Backoff, Callback, callback};
pub use self::sink::Sink;
pub use self::stats::{HISTOGRAM_BUCKETS, HookStats, HooksReport, LatencyHistogram};

use crate::error::{Error, Result};
use crate::time::Timestamp;

/// The CloudEvents version of every event.
pub const SPEC_VERSION: &str = "1.0";
/// The `source` of the events a store fires.
pub const EVENT_SOURCE: &str = "/coffer";

/// The event types the store fires by itself.
pub mod types {
    /// A key got its first live version (nothing, or a delete marker, was there).
    pub const OBJECT_ARCHIVED: &str = "object.archived";
    /// A key that had a live version got a new one.
    pub const OBJECT_UPDATED: &str = "object.updated";
    /// A key got a delete marker.
    pub const OBJECT_DELETED: &str = "object.deleted";
    /// A version was read (only when read events are enabled).
    pub const OBJECT_RETRIEVED: &str = "object.retrieved";
    /// An archived version's content came back from its archive class
    /// (`coffer restore`), seen by a poll of the pending restores.
    pub const OBJECT_RESTORED: &str = "object.restored";
    /// A version with content was made (put, copy or rollback).
    pub const VERSION_CREATED: &str = "version.created";
    /// A key was rolled back to an earlier version's content.
    pub const VERSION_ROLLED_BACK: &str = "version.rolled_back";
    /// A version's tags changed.
    pub const VERSION_TAGGED: &str = "version.tagged";
    /// A version got a comment.
    pub const VERSION_COMMENTED: &str = "version.commented";
    /// A version was removed by a prune.
    pub const VERSION_PRUNED: &str = "version.pruned";
    /// A version was removed for good by `delete-version`.
    pub const VERSION_DELETED: &str = "version.deleted";
    /// A version's retention was set, extended or (with a bypass) shortened.
    pub const VERSION_RETENTION_SET: &str = "version.retention_set";
    /// A version's legal hold was set or cleared.
    pub const VERSION_LEGAL_HOLD: &str = "version.legal_hold";
    /// A bundle was completed. Its data is the message the users' pipelines
    /// read (`bundle_id`, `recipe_id`, `primary_url`, `resources_count`,
    /// `storage_key`, `completion_timestamp`, `metadata`); an SQS hook sends
    /// that data as the message body.
    pub const BUNDLE_COMPLETED: &str = "bundle.completed";
    /// Every built-in type.
    pub const BUILT_IN: &[&str] = &[
        OBJECT_ARCHIVED,
        OBJECT_UPDATED,
        OBJECT_DELETED,
        OBJECT_RETRIEVED,
        OBJECT_RESTORED,
        VERSION_CREATED,
        VERSION_ROLLED_BACK,
        VERSION_TAGGED,
        VERSION_RETENTION_SET,
        VERSION_LEGAL_HOLD,
        VERSION_COMMENTED,
        VERSION_PRUNED,
        VERSION_DELETED,
        BUNDLE_COMPLETED,
    ];
}

/// Longest event type name.
pub const MAX_EVENT_TYPE_BYTES: usize = 128;
/// Largest payload of an application's own event, as JSON text.
pub const MAX_EVENT_DATA_BYTES: usize = 256 * 1024;

/// One event: a CloudEvents 1.0 document in JSON form.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Event {
    /// Always `1.0`.
    pub specversion: String,
    /// Unique and stable: receivers drop duplicates by it (a UUIDv7).
    pub id: String,
    /// What happened: `object.archived`, or an application's own name.
    #[serde(rename = "type")]
    pub event_type: String,
    /// Where: [`EVENT_SOURCE`].
    pub source: String,
    /// When the change committed.
    pub time: Timestamp,
    /// The key concerned, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// Always `application/json`.
    pub datacontenttype: String,
    /// For built-in events: key, version id, size, etag, content type, user
    /// metadata, actor, and what else the type carries. For an
    /// application's events: its payload.
    pub data: serde_json::Value,
}

impl Event {
    /// A new event with a fresh id, timed now.
    pub fn new(event_type: &str, subject: Option<&str>, data: serde_json::Value) -> Self {
        Event {
            specversion: SPEC_VERSION.to_owned(),
            id: uuid::Uuid::now_v7().to_string(),
            event_type: event_type.to_owned(),
            source: EVENT_SOURCE.to_owned(),
            time: Timestamp::now(),
            subject: subject.map(str::to_owned),
            datacontenttype: "application/json".to_owned(),
            data,
        }
    }

    /// The CloudEvents JSON document.
    pub fn to_json(&self) -> String {
        // Serializing plain strings, numbers and JSON values cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Parse a CloudEvents JSON document written by [`Event::to_json`].
    pub fn from_json(json: &str) -> Result<Self> {
        serde_json::from_str(json).map_err(|e| Error::new(crate::ErrorKind::Catalog, format!("corrupt event: {e}")))
    }

    /// The user metadata the event's data carries (empty for events without any).
    pub fn metadata(&self) -> impl Iterator<Item = (&str, &str)> {
        self.string_entries("metadata")
    }

    /// The version's tags the event's data carries (empty for events without any).
    pub fn tags(&self) -> impl Iterator<Item = (&str, &str)> {
        self.string_entries("tags")
    }

    /// What a hook's `NAME=VALUE` condition compares: the user metadata entry
    /// `name`, or, when the metadata has none, the tag `name`.
    pub fn attribute(&self, name: &str) -> Option<&str> {
        let named = |(entry, _): &(&str, &str)| *entry == name;
        self.metadata()
            .find(named)
            .or_else(|| self.tags().find(named))
            .map(|(_, value)| value)
    }

    fn string_entries(&self, field: &str) -> impl Iterator<Item = (&str, &str)> {
        self.data
            .get(field)
            .and_then(serde_json::Value::as_object)
            .into_iter()
            .flatten()
            .filter_map(|(name, value)| value.as_str().map(|v| (name.as_str(), v)))
    }
}

/// The first parts of event types that are coffer's own: the built-in types
/// live under them (and `hook.test`, which `hooks test` sends). An
/// application's own types take a first part of their own (`batch.completed`,
/// `qc.approved`), so that a typo of a built-in type is caught, not taken for
/// an application's type.
pub const RESERVED_NAMESPACES: &[&str] = &["object", "version", "hook", "bundle"];

/// Check an application's own event type: `PREFIX.NAME`, 1 to
/// [`MAX_EVENT_TYPE_BYTES`] bytes of letters, digits, `.`, `_` and `-`,
/// starting with a letter, whose prefix (up to the first `.`) is not one of
/// [`RESERVED_NAMESPACES`].
pub fn validate_event_type(name: &str) -> Result<()> {
    validate_event_name(name)?;
    match name.split_once('.') {
        Some((prefix, _)) if RESERVED_NAMESPACES.contains(&prefix) => Err(unknown_type(name)),
        Some((prefix, rest)) if !prefix.is_empty() && !rest.is_empty() => Ok(()),
        _ => Err(Error::invalid_input(format!(
            "invalid event type {name:?}: an application's own type needs a prefix of its own, like \
             batch.completed or qc.approved"
        ))),
    }
}

/// Check an entry of a hook's event filter: `*` (every event), a built-in
/// type, a family of them (`object.*`, `version.*`), an application's own
/// type (see [`validate_event_type`]) or a family of those (`qc.*`).
pub fn validate_event_pattern(pattern: &str) -> Result<()> {
    if pattern == "*" || types::BUILT_IN.contains(&pattern) {
        return Ok(());
    }
    if let Some(family) = pattern.strip_suffix(".*") {
        validate_event_name(family)?;
        let prefix = family.split('.').next().unwrap_or(family);
        let built_in_family = types::BUILT_IN.iter().any(|t| t.starts_with(&format!("{family}.")));
        if RESERVED_NAMESPACES.contains(&prefix) && !built_in_family {
            return Err(unknown_type(pattern));
        }
        return Ok(());
    }
    validate_event_type(pattern)
}

fn validate_event_name(name: &str) -> Result<()> {
    let valid = !name.is_empty()
        && name.len() <= MAX_EVENT_TYPE_BYTES
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if valid {
        Ok(())
    } else {
        Err(Error::invalid_input(format!(
            "invalid event type {name:?}: use letters, digits, '.', '_' and '-', starting with a letter, at most {MAX_EVENT_TYPE_BYTES} bytes"
        )))
    }
}

/// A type under coffer's namespaces that coffer does not fire.
fn unknown_type(name: &str) -> Error {
    Error::invalid_input(format!(
        "unknown event type {name:?}: coffer fires {} (object.* or version.* for a family, * for all); \
         an application's own types take a prefix other than {}",
        types::BUILT_IN.join(", "),
        RESERVED_NAMESPACES.join(", ")
    ))
}
