//! The events the store fires by itself, built from what a change recorded;
//! both catalogs call these inside the change's transaction.

use serde_json::{Map, Value, json};

use super::{Event, types};
use crate::catalog::ObjectVersion;

/// Audit actions that record a version without anything happening to the
/// key (a catalog rebuilt from manifests): they fire no events.
const SILENT_ACTIONS: &[&str] = &["reindex"];

/// What every event about a version carries.
fn version_data(version: &ObjectVersion, actor: &str, action: &str) -> Map<String, Value> {
    let mut data = Map::new();
    data.insert("key".into(), version.key.as_str().into());
    data.insert("version_id".into(), version.version_id.as_str().into());
    data.insert("is_delete_marker".into(), version.is_delete_marker.into());
    data.insert("size".into(), version.size.into());
    data.insert("etag".into(), json!(version.etag));
    data.insert("sha256".into(), json!(version.sha256));
    data.insert("content_type".into(), json!(version.content_type));
    data.insert("metadata".into(), json!(version.metadata));
    data.insert("tags".into(), json!(version.tags));
    data.insert("actor".into(), actor.into());
    data.insert("action".into(), action.into());
    data
}

fn event_at(event_type: &str, version: &ObjectVersion, data: Map<String, Value>, at: crate::time::Timestamp) -> Event {
    let mut event = Event::new(event_type, Some(version.key.as_str()), Value::Object(data));
    event.time = at;
    event
}

/// The events of a new version: `object.archived` (the key had no live
/// version), `object.updated` (it had one) or `object.deleted` (a delete
/// marker); `version.created` for a version with content; and
/// `version.rolled_back` for a rollback or an undelete. `detail` is the change's audit
/// detail, whose fields (the copy's source, the rollback's target ...) the
/// data carries too.
pub(crate) fn new_version(version: &ObjectVersion, had_live_version: bool, action: &str, detail: &Value) -> Vec<Event> {
    if SILENT_ACTIONS.contains(&action) {
        return Vec::new();
    }
    let mut data = version_data(version, &version.created_by, action);
    if let Value::Object(fields) = detail {
        for (name, value) in fields {
            data.entry(name.clone()).or_insert_with(|| value.clone());
        }
    }
    let at = version.created_at;
    if version.is_delete_marker {
        return vec![event_at(types::OBJECT_DELETED, version, data, at)];
    }
    let key_event = if had_live_version {
        types::OBJECT_UPDATED
    } else {
        types::OBJECT_ARCHIVED
    };
    let mut events = vec![
        event_at(key_event, version, data.clone(), at),
        event_at(types::VERSION_CREATED, version, data.clone(), at),
    ];
    // An undelete is a rollback of a deleted key to its newest content.
    if matches!(action, "rollback" | "undelete") {
        events.push(event_at(types::VERSION_ROLLED_BACK, version, data, at));
    }
    events
}

/// The event of a version removed for good: `version.pruned` by a prune,
/// else `version.deleted`.
pub(crate) fn removed_version(version: &ObjectVersion, action: &str, actor: &str, at: crate::time::Timestamp) -> Event {
    let event_type = if action == "prune" {
        types::VERSION_PRUNED
    } else {
        types::VERSION_DELETED
    };
    event_at(event_type, version, version_data(version, actor, action), at)
}

/// The event of a change to a version's annotations or protection, or to
/// where its content can be read: `version.tagged` (`detail` holds the tags
/// set and removed), `version.commented`, `version.retention_set` or
/// `version.legal_hold` (`detail` holds the new setting), `object.restored`
/// (`detail` holds the restore asked for).
pub(crate) fn annotated(
    version: &ObjectVersion,
    action: &str,
    actor: &str,
    detail: &Value,
    at: crate::time::Timestamp,
) -> Event {
    let mut data = version_data(version, actor, action);
    if let Value::Object(fields) = detail {
        for (name, value) in fields {
            data.insert(name.clone(), value.clone());
        }
    }
    let event_type = match action {
        "tag" => types::VERSION_TAGGED,
        "retention" => types::VERSION_RETENTION_SET,
        "legal_hold" => types::VERSION_LEGAL_HOLD,
        "restored" => types::OBJECT_RESTORED,
        _ => types::VERSION_COMMENTED,
    };
    event_at(event_type, version, data, at)
}

/// The event of a read: `object.retrieved`.
pub(crate) fn retrieved(version: &ObjectVersion, actor: &str) -> Event {
    event_at(
        types::OBJECT_RETRIEVED,
        version,
        version_data(version, actor, "get"),
        crate::time::Timestamp::now(),
    )
}
