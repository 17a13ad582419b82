//! The plans where retention and legal hold win: every removal of a version
//! (delete, prune, `max_versions`) asks [`check_removal`], and a change of
//! protection goes through [`plan_protect`]. The rules themselves are
//! [`Protection`]'s, in `crate::retention`.

use serde_json::{Value, json};

use super::{Annotation, ObjectVersion, check_prune};
use crate::catalog::{HeldVersion, PrunePolicy};
use crate::error::{Error, Result};
use crate::key::ObjectKey;
use crate::time::Timestamp;

/// What a prune removes and what protection holds back.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(in crate::catalog) struct PrunePlan {
    pub(in crate::catalog) doomed: Vec<ObjectVersion>,
    pub(in crate::catalog) held: Vec<HeldVersion>,
}

/// The versions a prune removes at `now`, from the key's versions newest
/// first: those past the newest `keep`, never the latest, not tagged ones
/// when the policy keeps those, and never a protected one (those are held,
/// with the reason). Refused when `keep` is 0 or the key has no versions.
pub(in crate::catalog) fn plan_prune(
    key: &ObjectKey,
    versions: Vec<ObjectVersion>,
    policy: PrunePolicy,
    now: Timestamp,
) -> Result<PrunePlan> {
    check_prune(key, policy)?;
    if versions.is_empty() {
        return Err(Error::not_found(format!("no such key: {key}")));
    }
    let mut plan = PrunePlan::default();
    let candidates = versions
        .into_iter()
        .enumerate()
        .filter(|(i, v)| *i >= policy.keep && !v.is_latest && (v.tags.is_empty() || !policy.keep_tagged));
    for (_, version) in candidates {
        match check_removal(&version, false, now) {
            Ok(_) => plan.doomed.push(version),
            Err(refusal) => plan.held.push(HeldVersion {
                version,
                reason: refusal.message().to_owned(),
            }),
        }
    }
    Ok(plan)
}

/// May `version` be removed at `now`? Refused with one line naming the hold,
/// or the mode and the date; `Ok(true)` when a governance retention in force
/// was bypassed (the removal's audit row says so).
pub(in crate::catalog) fn check_removal(
    version: &ObjectVersion,
    bypass_governance: bool,
    now: Timestamp,
) -> Result<bool> {
    let protection = version.protection();
    let what = format!("{} version {}", version.key, version.version_id);
    protection.check_removal(&what, now, bypass_governance)?;
    Ok(protection.active(now).is_some())
}

/// The audit detail of removing `version` (`bypassed`: a governance retention
/// in force was bypassed to do it).
pub(in crate::catalog) fn removal_detail(version: &ObjectVersion, bypassed: bool) -> Value {
    let mut detail = json!({
        "size": version.size, "sha256": version.sha256, "was_delete_marker": version.is_delete_marker,
    });
    if bypassed {
        detail["bypass_governance"] = Value::Bool(true);
    }
    detail
}

/// Change `version`'s protection as `change` (a retention or legal hold
/// annotation) asks at `now`: extending is always allowed, shortening or
/// removing a governance retention in force needs the bypass, a compliance
/// one never yields. Returns the audit action and detail.
pub(super) fn plan_protect(
    version: &mut ObjectVersion,
    change: &Annotation,
    now: Timestamp,
) -> Result<(&'static str, Value)> {
    if version.is_delete_marker {
        return Err(Error::invalid_input(format!(
            "version {} of {} is a delete marker: it has no content to protect",
            version.version_id, version.key
        )));
    }
    match change {
        Annotation::Retention {
            retention,
            bypass_governance,
        } => {
            let what = format!("{} version {}", version.key, version.version_id);
            let bypassed =
                version
                    .protection()
                    .check_retention_change(&what, retention.as_ref(), now, *bypass_governance)?;
            let previous = std::mem::replace(&mut version.retention, *retention);
            let mut detail = json!({ "retention": retention, "previous": previous });
            if bypassed {
                detail["bypass_governance"] = Value::Bool(true);
            }
            Ok(("retention", detail))
        }
        Annotation::LegalHold(on) => {
            version.legal_hold = *on;
            Ok(("legal_hold", json!({ "legal_hold": on })))
        }
        Annotation::Tags { .. } | Annotation::Comment(_) => Err(Error::invalid_input("not a change of protection")),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::super::plan_annotate;
    use super::super::tests::{key, version};
    use super::*;
    use crate::error::ErrorKind;
    use crate::retention::{Retention, RetentionMode};

    const IDS: [&str; 4] = [
        "01900000000070008000000000000004",
        "01900000000070008000000000000003",
        "01900000000070008000000000000002",
        "01900000000070008000000000000001",
    ];

    fn now() -> Timestamp {
        Timestamp::parse("2030-01-01T00:00:00Z").unwrap()
    }

    fn retention(mode: RetentionMode, until: &str) -> Option<Retention> {
        Some(Retention {
            mode,
            until: Timestamp::parse(until).unwrap(),
        })
    }

    fn versions() -> Vec<ObjectVersion> {
        vec![
            version(IDS[0], true, false),
            version(IDS[1], false, false),
            version(IDS[2], false, true),
            version(IDS[3], false, false),
        ]
    }

    fn ids(versions: &[ObjectVersion]) -> Vec<String> {
        versions.iter().map(|v| v.version_id.to_string()).collect()
    }

    #[test]
    fn a_prune_keeps_the_newest_the_latest_and_tagged_versions_when_asked() {
        let removed = |policy| ids(&plan_prune(&key(), versions(), policy, now()).unwrap().doomed);
        let keep_tagged = PrunePolicy {
            keep: 1,
            keep_tagged: true,
        };
        assert_eq!(removed(keep_tagged), [IDS[1], IDS[3]]);
        let keep_two = PrunePolicy {
            keep: 2,
            keep_tagged: false,
        };
        assert_eq!(removed(keep_two), [IDS[2], IDS[3]]);
        // The latest stays even when it is not among the newest.
        let mut latest_last = versions();
        latest_last[0].is_latest = false;
        latest_last[3].is_latest = true;
        let plan = plan_prune(&key(), latest_last, keep_two, now()).unwrap();
        assert!(plan.doomed.iter().all(|v| !v.is_latest));
        let none = PrunePolicy {
            keep: 0,
            keep_tagged: false,
        };
        assert_eq!(
            plan_prune(&key(), versions(), none, now()).unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
        assert_eq!(
            plan_prune(&key(), Vec::new(), keep_two, now()).unwrap_err().kind(),
            ErrorKind::NotFound
        );
    }

    #[test]
    fn a_prune_holds_back_protected_versions_with_the_reason() {
        let mut all = versions();
        all[1].retention = retention(RetentionMode::Governance, "2031-01-01T00:00:00Z");
        all[3].legal_hold = true;
        let policy = PrunePolicy {
            keep: 1,
            keep_tagged: false,
        };
        let plan = plan_prune(&key(), all.clone(), policy, now()).unwrap();
        assert_eq!(ids(&plan.doomed), [IDS[2]]);
        let held: Vec<_> = plan.held.iter().map(|h| h.reason.as_str()).collect();
        assert_eq!(held.len(), 2);
        assert!(held[0].contains("governance retention until 2031-01-01"), "{}", held[0]);
        assert!(held[1].contains("legal hold"), "{}", held[1]);
        // Once the date has passed the version goes; the hold stays until cleared.
        let later = Timestamp::parse("2031-06-01T00:00:00Z").unwrap();
        let plan = plan_prune(&key(), all, policy, later).unwrap();
        assert_eq!(ids(&plan.doomed), [IDS[1], IDS[2]]);
        assert_eq!(plan.held.len(), 1);
    }

    #[test]
    fn a_removal_names_the_protection_and_governance_yields_to_the_bypass() {
        let mut v = version(IDS[1], false, false);
        v.retention = retention(RetentionMode::Governance, "2031-01-01T00:00:00Z");
        let err = check_removal(&v, false, now()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::RetentionLocked);
        assert!(err.message().contains("--bypass-governance"), "{}", err.message());
        assert!(check_removal(&v, true, now()).unwrap());
        assert_eq!(removal_detail(&v, true)["bypass_governance"], true);
        v.retention = retention(RetentionMode::Compliance, "2031-01-01T00:00:00Z");
        assert!(check_removal(&v, true, now()).is_err());
        assert!(!check_removal(&version(IDS[2], false, false), false, now()).unwrap());
    }

    #[test]
    fn protection_changes_are_audited_and_a_marker_has_none() {
        let v = version(IDS[1], false, false);
        let extend = Annotation::Retention {
            retention: retention(RetentionMode::Compliance, "2035-01-01T00:00:00Z"),
            bypass_governance: false,
        };
        let plan = plan_annotate(v.clone(), &extend, "ops", now()).unwrap();
        assert_eq!(plan.audit.action, "retention");
        assert_eq!(plan.event.event_type, "version.retention_set");
        assert_eq!(plan.protection.unwrap().retention, plan.version.retention);
        assert!(
            plan.document.is_none(),
            "a protection change leaves the search words alone"
        );
        // Shortening the compliance retention just set is refused.
        let shorten = Annotation::Retention {
            retention: retention(RetentionMode::Compliance, "2032-01-01T00:00:00Z"),
            bypass_governance: true,
        };
        let err = plan_annotate(plan.version.clone(), &shorten, "ops", now()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::RetentionLocked);
        let hold = plan_annotate(v, &Annotation::LegalHold(true), "ops", now()).unwrap();
        assert!(hold.version.legal_hold);
        assert_eq!(hold.event.event_type, "version.legal_hold");
        let mut marker = version(IDS[0], true, false);
        marker.is_delete_marker = true;
        assert!(plan_annotate(marker, &Annotation::LegalHold(true), "ops", now()).is_err());
    }
}
