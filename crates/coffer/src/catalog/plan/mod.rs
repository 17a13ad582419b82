//! The catalog's decisions, written once for both engines: each plan is a
//! pure function from what a transaction read to what it must write (rows,
//! the search document, events, the audit row) or a refusal. An engine reads,
//! calls the plan, and executes what it says in its own SQL.
//!
//! A new rule (say, "a version under legal hold cannot be pruned") goes into
//! the plan it concerns, with a unit test here and a conformance test that
//! both engines pass.

mod protection;

use serde_json::{Map, Value};

pub(super) use self::protection::{PrunePlan, check_removal, plan_prune, removal_detail};
use super::{
    Annotation, Comment, NewVersion, ObjectVersion, PrunePolicy, Repair, RestoreRequest, VersionContent,
    search_document,
};
use crate::error::{Error, Result};
use crate::events::{Event, HookDefinition, built_in};
use crate::key::{MAX_TAGS, ObjectKey};
use crate::retention::Protection;
use crate::time::Timestamp;
use crate::version::VersionId;

/// Most audit rows one purge transaction removes, so that other writers are not held up for long.
pub(super) const PURGE_BATCH: u64 = 20_000;

/// One audit row to write.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct AuditRecord {
    pub(super) at: Timestamp,
    pub(super) actor: String,
    pub(super) action: String,
    pub(super) key: Option<String>,
    pub(super) version_id: Option<String>,
    pub(super) detail: Value,
}

/// A key's current version, as a commit reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct CurrentVersion {
    pub(super) version_id: String,
    pub(super) is_delete_marker: bool,
    pub(super) etag: Option<String>,
}

/// What committing a new version writes.
#[derive(Debug, Clone)]
pub(super) struct CommitPlan {
    /// The version as recorded (and returned).
    pub(super) committed: ObjectVersion,
    /// It becomes the key's latest: its id is greater than the current one's.
    pub(super) becomes_latest: bool,
    /// Its search document (`None` for a delete marker, which never matches).
    pub(super) document: Option<String>,
    /// The built-in events, written in the same transaction.
    pub(super) events: Vec<Event>,
}

/// Check a new version against the key's current one: its precondition
/// (against the live version, not a delete marker) must hold. Engines call it
/// before they decide what the version does to its blob.
pub(super) fn admit_commit(new: &NewVersion, current: Option<&CurrentVersion>) -> Result<()> {
    let live_etag = current.filter(|c| !c.is_delete_marker).map(|c| c.etag.as_deref());
    new.precondition.check(&new.key, live_etag)
}

/// The plan of an admitted commit whose content sits at `blob_path`: the
/// version becomes the latest when its id is the key's greatest, and a
/// version over a delete marker (or none) is a new object to the events.
pub(super) fn plan_commit(new: &NewVersion, current: Option<&CurrentVersion>, blob_path: Option<String>) -> CommitPlan {
    let becomes_latest = current.is_none_or(|c| new.version_id.as_str() > c.version_id.as_str());
    let committed = new.recorded(becomes_latest, blob_path);
    let had_live_version = current.is_some_and(|c| !c.is_delete_marker);
    let events = built_in::new_version(&committed, had_live_version, new.action, &new.audit_detail);
    let document = matches!(new.content, VersionContent::Blob(_))
        .then(|| search_document(new.key.as_str(), &new.metadata, &new.tags, &new.comments));
    CommitPlan {
        committed,
        becomes_latest,
        document,
        events,
    }
}

/// The version a change names (delete, annotate), which must exist.
pub(super) fn named_version(
    found: Option<ObjectVersion>,
    key: &ObjectKey,
    version_id: &VersionId,
) -> Result<ObjectVersion> {
    found.ok_or_else(|| Error::not_found(format!("no version {version_id} of {key}")))
}

/// The refusal a prune policy earns before anything is read.
pub(super) fn check_prune(key: &ObjectKey, policy: PrunePolicy) -> Result<()> {
    if policy.keep == 0 {
        return Err(Error::invalid_input(format!(
            "prune of {key} would remove its latest version: keep at least 1"
        )));
    }
    Ok(())
}

/// What annotating a version writes.
#[derive(Debug, Clone)]
pub(super) struct AnnotatePlan {
    /// The version with its new tags or comment.
    pub(super) version: ObjectVersion,
    /// The comment to insert (after the version's others), for a comment.
    pub(super) comment: Option<Comment>,
    /// The version's new search document (`None` for a delete marker, or
    /// when the words did not change).
    pub(super) document: Option<String>,
    /// The version's new protection, for a retention or legal hold change.
    pub(super) protection: Option<Protection>,
    /// The audit row.
    pub(super) audit: AuditRecord,
    /// The built-in event.
    pub(super) event: Event,
}

/// The plan of `annotation` on `version` by `actor` at `now`: tags set and
/// removed (refused past [`MAX_TAGS`]), a comment added, or the retention or
/// legal hold changed (see [`protection::plan_protect`]).
pub(super) fn plan_annotate(
    mut version: ObjectVersion,
    annotation: &Annotation,
    actor: &str,
    now: Timestamp,
) -> Result<AnnotatePlan> {
    let mut comment = None;
    let mut protection = None;
    let (action, detail) = match annotation {
        Annotation::Tags { set, remove } => {
            for name in remove {
                version.tags.remove(name);
            }
            version.tags.extend(set.clone());
            if version.tags.len() > MAX_TAGS {
                return Err(Error::invalid_input(format!(
                    "version {} of {} would have {} tags; a version holds at most {MAX_TAGS}",
                    version.version_id,
                    version.key,
                    version.tags.len()
                )));
            }
            ("tag", serde_json::json!({ "set": set, "removed": remove }))
        }
        Annotation::Comment(text) => {
            let added = Comment {
                at: now,
                actor: actor.to_owned(),
                text: text.clone(),
            };
            version.comments.push(added.clone());
            comment = Some(added);
            ("comment", serde_json::json!({ "text": text }))
        }
        Annotation::Retention { .. } | Annotation::LegalHold(_) => {
            let (action, detail) = protection::plan_protect(&mut version, annotation, now)?;
            protection = Some(version.protection());
            (action, detail)
        }
    };
    let words_changed = protection.is_none();
    let document = (words_changed && !version.is_delete_marker).then(|| {
        search_document(
            version.key.as_str(),
            &version.metadata,
            &version.tags,
            &version.comments,
        )
    });
    let event = built_in::annotated(&version, action, actor, &detail, now);
    let audit = AuditRecord {
        at: now,
        actor: actor.to_owned(),
        action: action.to_owned(),
        key: Some(version.key.to_string()),
        version_id: Some(version.version_id.to_string()),
        detail,
    };
    Ok(AnnotatePlan {
        version,
        comment,
        document,
        protection,
        audit,
        event,
    })
}

/// What recording a repair writes.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum RepairPlan {
    /// Mark the blob damaged, with a `repair` audit row of `detail` for each version whose content it is.
    MarkDamaged {
        sha256: String,
        problem: String,
        at: Timestamp,
        actor: String,
        detail: Value,
    },
    /// Record where a blob's content lies now, with this audit row.
    Place {
        sha256: String,
        placement: Option<String>,
        audit: AuditRecord,
    },
    /// Record a restore of the blob as pending (`request` as JSON) or done
    /// (`None`), with this audit row and, once done, this event.
    Restore {
        sha256: String,
        pending: Option<String>,
        audit: AuditRecord,
        event: Option<Event>,
    },
    /// Record a blob's wrapped data key anew.
    DataKey { sha256: String, data_key: String },
    /// Set or remove a store setting, with this audit row if any.
    Setting {
        name: &'static str,
        value: Option<String>,
        if_absent: bool,
        audit: Option<AuditRecord>,
    },
    /// Only this audit row.
    Audit(AuditRecord),
}

/// The plan of `repair` by `actor` at `now`.
pub(super) fn plan_repair(repair: &Repair, actor: &str, now: Timestamp) -> RepairPlan {
    let restore_audit = |action: &str, request: &RestoreRequest| AuditRecord {
        at: now,
        actor: actor.to_owned(),
        action: action.to_owned(),
        key: Some(request.key.clone()),
        version_id: Some(request.version_id.clone()),
        detail: serde_json::json!({ "days": request.days, "tier": request.tier, "requested_at": request.requested_at }),
    };
    let audit = |action: &str, version: Option<(String, String)>, detail: Value| {
        let (key, version_id) = version.unzip();
        RepairPlan::Audit(AuditRecord {
            at: now,
            actor: actor.to_owned(),
            action: action.to_owned(),
            key,
            version_id,
            detail,
        })
    };
    match repair {
        Repair::MarkDamaged { sha256, problem } => RepairPlan::MarkDamaged {
            sha256: sha256.clone(),
            problem: problem.clone(),
            at: now,
            actor: actor.to_owned(),
            detail: serde_json::json!({ "marked_damaged": problem, "sha256": sha256 }),
        },
        Repair::RemoveOrphan { path } => audit("repair", None, serde_json::json!({ "removed_orphan": path })),
        Repair::RestoreManifest { key, version_id } => audit(
            "repair",
            Some((key.to_string(), version_id.to_string())),
            serde_json::json!({ "restored_manifest": true }),
        ),
        Repair::BytesMoved {
            action,
            version,
            detail,
        } => audit(
            action,
            version.as_ref().map(|(key, id)| (key.to_string(), id.to_string())),
            detail.clone(),
        ),
        Repair::Placed {
            action,
            sha256,
            placement,
            version: (key, version_id),
            detail,
        } => RepairPlan::Place {
            sha256: sha256.clone(),
            placement: placement.clone(),
            audit: AuditRecord {
                at: now,
                actor: actor.to_owned(),
                action: (*action).to_owned(),
                key: Some(key.to_string()),
                version_id: Some(version_id.to_string()),
                detail: detail.clone(),
            },
        },
        Repair::DataKey { sha256, data_key } => RepairPlan::DataKey {
            sha256: sha256.clone(),
            data_key: data_key.clone(),
        },
        Repair::Setting {
            name,
            value,
            if_absent,
            audit,
        } => RepairPlan::Setting {
            name,
            value: value.clone(),
            if_absent: *if_absent,
            audit: audit.as_ref().map(|(action, detail)| AuditRecord {
                at: now,
                actor: actor.to_owned(),
                action: (*action).to_owned(),
                key: None,
                version_id: None,
                detail: detail.clone(),
            }),
        },
        Repair::RestoreRequested { sha256, request } => RepairPlan::Restore {
            sha256: sha256.clone(),
            pending: Some(serde_json::json!(request).to_string()),
            audit: restore_audit("restore", request),
            event: None,
        },
        Repair::Restored { version, request } => {
            let audit = restore_audit("restored", request);
            let event = built_in::annotated(version, "restored", actor, &audit.detail, now);
            RepairPlan::Restore {
                sha256: version.sha256.clone().unwrap_or_default(),
                pending: None,
                audit,
                event: Some(event),
            }
        }
    }
}

/// The audit row of `actor` reading a version.
pub(super) fn read_record(
    key: &ObjectKey,
    version_id: &VersionId,
    actor: &str,
    detail: &Value,
    now: Timestamp,
) -> AuditRecord {
    AuditRecord {
        at: now,
        actor: actor.to_owned(),
        action: "get".into(),
        key: Some(key.to_string()),
        version_id: Some(version_id.to_string()),
        detail: detail.clone(),
    }
}

/// The audit row of adding (or, with `replaced`, replacing) `hook`.
pub(super) fn hook_added(hook: &HookDefinition, replaced: bool, now: Timestamp) -> AuditRecord {
    AuditRecord {
        at: now,
        actor: hook.created_by.clone(),
        action: "hook_add".into(),
        key: None,
        version_id: None,
        detail: serde_json::json!({ "hook": hook.name, "kind": hook.spec.kind(), "replaced": replaced }),
    }
}

/// The audit row of `actor` removing the hook `name`.
pub(super) fn hook_removed(name: &str, actor: &str, now: Timestamp) -> AuditRecord {
    AuditRecord {
        at: now,
        actor: actor.to_owned(),
        action: "hook_remove".into(),
        key: None,
        version_id: None,
        detail: serde_json::json!({ "hook": name }),
    }
}

/// An audit purge: which rows each batch may remove, the row each batch
/// records, and when to stop.
#[derive(Debug, Clone)]
pub(super) struct PurgePlan {
    /// Rows older than this go.
    pub(super) before: Timestamp,
    /// Only rows that existed when the purge started (ids up to this), so the
    /// purge's own records are never removed by it.
    pub(super) up_to_id: i64,
    actor: String,
    detail: Map<String, Value>,
}

impl PurgePlan {
    /// A purge of rows older than `before`, of the log whose greatest id is
    /// `max_id` now, recording `detail`'s fields (when it is an object).
    pub(super) fn new(before: Timestamp, max_id: Option<i64>, actor: &str, detail: Value) -> Self {
        let detail = match detail {
            Value::Object(fields) => fields,
            _ => Map::new(),
        };
        PurgePlan {
            before,
            up_to_id: max_id.unwrap_or(0),
            actor: actor.to_owned(),
            detail,
        }
    }

    /// The `audit_purge` row of a batch that removed `removed` rows.
    pub(super) fn record(&self, removed: u64, now: Timestamp) -> AuditRecord {
        let mut detail = self.detail.clone();
        detail.insert("before".into(), self.before.to_string().into());
        detail.insert("removed".into(), removed.into());
        AuditRecord {
            at: now,
            actor: self.actor.clone(),
            action: "audit_purge".into(),
            key: None,
            version_id: None,
            detail: Value::Object(detail),
        }
    }

    /// Whether a batch that removed `removed` rows was the last.
    pub(super) fn finished(removed: u64) -> bool {
        removed < PURGE_BATCH
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{BlobRef, Precondition};
    use crate::error::ErrorKind;
    use crate::key::Tags;

    pub(super) fn key() -> ObjectKey {
        ObjectKey::new("docs/a.txt").unwrap()
    }

    fn new_version(id: &str, content: VersionContent, precondition: Precondition) -> NewVersion {
        NewVersion {
            key: key(),
            version_id: id.parse::<VersionId>().unwrap(),
            content,
            content_type: None,
            metadata: [("dept".to_owned(), "Finance".to_owned())].into(),
            created_at: Timestamp::from_micros(5),
            created_by: "alice".into(),
            tags: Tags::new(),
            comments: Vec::new(),
            precondition,
            action: "put",
            audit_detail: serde_json::json!({}),
            retention: None,
            legal_hold: false,
        }
    }

    fn blob() -> VersionContent {
        VersionContent::Blob(BlobRef {
            sha256: "ab".repeat(32),
            md5: "cd".repeat(16),
            size: 3,
            new_path: Some("blobs/ab".into()),
            data_key: None,
            hot: None,
        })
    }

    const OLD: &str = "0190000000007000800000000000000a";
    const NEW: &str = "0190000000007000800000000000000b";

    fn current(id: &str, is_delete_marker: bool) -> CurrentVersion {
        CurrentVersion {
            version_id: id.into(),
            is_delete_marker,
            etag: (!is_delete_marker).then(|| "etag1".into()),
        }
    }

    fn event_types(plan: &CommitPlan) -> Vec<&str> {
        plan.events.iter().map(|e| e.event_type.as_str()).collect()
    }

    #[test]
    fn a_commit_over_a_delete_marker_is_a_new_object_and_the_latest() {
        let new = new_version(NEW, blob(), Precondition::None);
        let marker = current(OLD, true);
        admit_commit(&new, Some(&marker)).unwrap();
        let plan = plan_commit(&new, Some(&marker), Some("blobs/ab".into()));
        assert!(plan.becomes_latest && plan.committed.is_latest);
        assert_eq!(plan.document.as_deref(), Some("docs a txt finance"));
        let over_live = plan_commit(&new, Some(&current(OLD, false)), Some("blobs/ab".into()));
        assert_ne!(event_types(&plan), event_types(&over_live));
        // A precondition that the key must not exist holds over a delete marker, not over a live version.
        let create = new_version(NEW, blob(), Precondition::IfNoneMatch);
        assert!(admit_commit(&create, Some(&marker)).is_ok());
        let refused = admit_commit(&create, Some(&current(OLD, false))).unwrap_err();
        assert_eq!(refused.kind(), ErrorKind::Conflict);
    }

    #[test]
    fn an_older_version_id_does_not_become_the_latest_and_a_marker_has_no_document() {
        let new = new_version(OLD, VersionContent::DeleteMarker, Precondition::None);
        let plan = plan_commit(&new, Some(&current(NEW, false)), None);
        assert!(!plan.becomes_latest);
        assert_eq!(plan.document, None);
    }

    pub(super) fn version(id: &str, latest: bool, tagged: bool) -> ObjectVersion {
        let mut v = new_version(id, blob(), Precondition::None).recorded(latest, None);
        if tagged {
            v.tags.insert("keep".into(), "yes".into());
        }
        v
    }

    #[test]
    fn annotations_change_tags_or_add_a_comment_with_their_audit_row_and_event() {
        let v = version(NEW, true, true);
        let now = Timestamp::from_micros(9);
        let tags = Annotation::Tags {
            set: [("qc".to_owned(), "ok".to_owned())].into(),
            remove: vec!["keep".into()],
        };
        let plan = plan_annotate(v.clone(), &tags, "bob", now).unwrap();
        assert_eq!(plan.version.tags, Tags::from([("qc".to_owned(), "ok".to_owned())]));
        assert_eq!(plan.audit.action, "tag");
        assert_eq!(
            plan.audit.detail,
            serde_json::json!({ "set": { "qc": "ok" }, "removed": ["keep"] })
        );
        assert!(plan.document.unwrap().ends_with("qc ok"));
        assert_eq!(plan.comment, None);
        let comment = Annotation::Comment("Looks good".into());
        let plan = plan_annotate(v.clone(), &comment, "bob", now).unwrap();
        assert_eq!(
            plan.comment.as_ref().map(|c| (c.text.as_str(), c.at)),
            Some(("Looks good", now))
        );
        assert_eq!(plan.version.comments.len(), 1);
        assert_eq!((plan.audit.action.as_str(), plan.audit.at), ("comment", now));
        let too_many = Annotation::Tags {
            set: (0..=MAX_TAGS).map(|i| (format!("t{i}"), "x".to_owned())).collect(),
            remove: Vec::new(),
        };
        assert_eq!(
            plan_annotate(v, &too_many, "bob", now).unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
    }

    #[test]
    fn repairs_are_audited_as_what_they_did() {
        let now = Timestamp::from_micros(1);
        let orphan = plan_repair(&Repair::RemoveOrphan { path: "blobs/x".into() }, "ops", now);
        let RepairPlan::Audit(row) = orphan else {
            panic!("{orphan:?}")
        };
        assert_eq!((row.action.as_str(), row.key), ("repair", None));
        assert_eq!(row.detail, serde_json::json!({ "removed_orphan": "blobs/x" }));
        let damaged = Repair::MarkDamaged {
            sha256: "ab".into(),
            problem: "truncated".into(),
        };
        assert!(matches!(plan_repair(&damaged, "ops", now), RepairPlan::MarkDamaged { sha256, .. } if sha256 == "ab"));
    }

    #[test]
    fn a_purge_only_reaches_rows_older_than_its_line_that_existed_when_it_began() {
        let before = Timestamp::from_micros(1_000);
        let plan = PurgePlan::new(before, Some(41), "ops", serde_json::json!({ "retention": "7y" }));
        assert_eq!((plan.before, plan.up_to_id), (before, 41));
        let row = plan.record(3, Timestamp::from_micros(2_000));
        assert_eq!(row.action, "audit_purge");
        assert_eq!(row.detail["retention"], "7y");
        assert_eq!(row.detail["removed"], 3);
        assert_eq!(row.detail["before"], before.to_string());
        assert_eq!(PurgePlan::new(before, None, "ops", Value::Null).up_to_id, 0);
        assert!(PurgePlan::finished(PURGE_BATCH - 1));
        assert!(!PurgePlan::finished(PURGE_BATCH));
    }
}
