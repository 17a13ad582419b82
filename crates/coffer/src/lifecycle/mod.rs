//! Lifecycle rules (S3 lifecycle / MinIO ILM semantics), run by coffer on
//! every backend: expire current versions (a delete marker), expire
//! noncurrent versions some days after they became noncurrent (keeping the
//! newest few), remove delete markers left with no versions, move content
//! to the cold tier or a storage class, and abort uploads that never
//! finished.
//!
//! The planner is pure: rules, a key's versions and a time give the actions
//! (see [`plan_key`]); `Store::lifecycle_plan` runs it over the catalog and
//! `Store::lifecycle_apply` carries it out. Retention and legal hold always
//! win: what they protect is listed as held, never removed.
//!
//! ```
//! use coffer::lifecycle::LifecycleConfig;
//!
//! let config: LifecycleConfig = toml::from_str(r#"
//!     [[rules]]
//!     id = "tmp-7d"
//!     prefix = "tmp/"
//!     expire_after_days = 7
//! "#).unwrap();
//! config.validate()?;
//! assert_eq!(config.rules[0].id, "tmp-7d");
//! # Ok::<(), coffer::Error>(())
//! ```

use std::collections::BTreeSet;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::catalog::ObjectVersion;
use crate::error::{Error, Result};
use crate::key::Tags;
use crate::time::Timestamp;

mod scan;

pub use self::scan::plan_catalog;

/// One day, the unit of every age in a rule.
const DAY: Duration = Duration::from_secs(86_400);

/// One rule (`[[lifecycle.rules]]`): filters, and what happens to what they select.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LifecycleRule {
    /// Names the rule in plans, audit rows and events.
    pub id: String,
    /// Only keys starting with this.
    pub prefix: String,
    /// Only versions carrying all of these tags.
    pub tags: Tags,
    /// Only versions of at least this many bytes.
    pub min_size: Option<u64>,
    /// Only versions of at most this many bytes.
    pub max_size: Option<u64>,
    /// A key's current version gets a delete marker this many days after it was made.
    pub expire_after_days: Option<u64>,
    /// A noncurrent version is removed this many days after it became noncurrent ...
    pub noncurrent_expire_after_days: Option<u64>,
    /// ... except the newest this many noncurrent versions of each key.
    pub keep_noncurrent: usize,
    /// Remove a delete marker that is a key's only version left.
    pub expire_delete_markers: bool,
    /// Content moves this many days after its version was made ...
    pub transition_after_days: Option<u64>,
    /// ... to `cold` (the cold tier) or a storage class / access tier
    /// (`STANDARD_IA`, `GLACIER`, `Cool`, `Archive` ...).
    pub transition_to: Option<String>,
    /// Uploads begun this many days ago and never finished are aborted.
    pub abort_uploads_after_days: Option<u64>,
}

/// The `[lifecycle]` section.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LifecycleConfig {
    /// The rules, applied in order.
    pub rules: Vec<LifecycleRule>,
}

impl LifecycleConfig {
    /// Refuse rules that cannot mean anything: no id, a repeated id, no
    /// action, a transition without a target (or the reverse), sizes the
    /// wrong way round, a noncurrent count without its age.
    pub fn validate(&self) -> Result<()> {
        let mut ids = BTreeSet::new();
        for rule in &self.rules {
            let id = &rule.id;
            let bad = |what: &str| Err(Error::invalid_input(format!("[[lifecycle.rules]] {id:?}: {what}")));
            if id.trim().is_empty() {
                return Err(Error::invalid_input("[[lifecycle.rules]] needs an id"));
            }
            if !ids.insert(id.as_str()) {
                return bad("the id is used twice");
            }
            let acts = rule.expire_after_days.is_some()
                || rule.noncurrent_expire_after_days.is_some()
                || rule.expire_delete_markers
                || rule.transition_after_days.is_some()
                || rule.abort_uploads_after_days.is_some();
            if !acts {
                return bad(
                    "no action: give expire_after_days, noncurrent_expire_after_days, expire_delete_markers, \
                     transition_after_days or abort_uploads_after_days",
                );
            }
            if rule.transition_after_days.is_some() != rule.transition_to.is_some() {
                return bad("transition_after_days and transition_to go together");
            }
            if rule.transition_to.as_deref().is_some_and(|to| to.trim().is_empty()) {
                return bad("transition_to is empty: give cold or a storage class");
            }
            if let (Some(min), Some(max)) = (rule.min_size, rule.max_size)
                && min > max
            {
                return bad("min_size is larger than max_size");
            }
            if rule.keep_noncurrent > 0 && rule.noncurrent_expire_after_days.is_none() {
                return bad("keep_noncurrent goes with noncurrent_expire_after_days");
            }
        }
        Ok(())
    }

    /// The longest an unfinished upload may wait under any rule, if any rule aborts them.
    pub fn abort_uploads_after(&self) -> Option<(String, Duration)> {
        self.rules
            .iter()
            .filter_map(|rule| {
                rule.abort_uploads_after_days
                    .map(|days| (rule.id.clone(), days_span(days)))
            })
            .min_by_key(|(_, span)| *span)
    }
}

fn days_span(days: u64) -> Duration {
    DAY.saturating_mul(u32::try_from(days).unwrap_or(u32::MAX))
}

/// `at` plus `days` days.
fn after_days(at: Timestamp, days: u64) -> Timestamp {
    at.plus(days_span(days))
}

/// What a lifecycle action does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ActionKind {
    /// Write a delete marker over the key's current version.
    ExpireCurrent,
    /// Remove a noncurrent version for good.
    ExpireNoncurrent,
    /// Remove a delete marker that is the key's only version.
    RemoveDeleteMarker,
    /// Move the version's content to the cold tier or a storage class.
    Transition {
        /// `cold`, or a storage class / access tier.
        to: String,
    },
}

/// One action of a plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LifecycleAction {
    /// The rule that asks for it.
    pub rule: String,
    /// What it does.
    #[serde(flatten)]
    pub kind: ActionKind,
    /// The key.
    pub key: String,
    /// The version it acts on (the current one, for an expiry).
    pub version_id: String,
    /// Why now: the time the rule's age was reached.
    pub due: Timestamp,
}

/// A removal a rule asks for that retention or a legal hold holds back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HeldAction {
    /// The action held back.
    #[serde(flatten)]
    pub action: LifecycleAction,
    /// Why, in one line naming the hold, or the mode and the date.
    pub reason: String,
}

/// What the rules do at a time: the actions, and the removals held back.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LifecyclePlan {
    /// When the plan is for.
    pub at: Option<Timestamp>,
    /// Versions the plan looked at.
    pub versions_seen: u64,
    /// The actions, key by key.
    pub actions: Vec<LifecycleAction>,
    /// Removals retention or a legal hold holds back.
    pub held: Vec<HeldAction>,
}

impl LifecycleRule {
    fn selects_key(&self, key: &str) -> bool {
        key.starts_with(&self.prefix)
    }

    /// Whether the version passes the tag and size filters (a delete marker
    /// has neither: it passes only rules without them).
    fn selects(&self, version: &ObjectVersion) -> bool {
        let tags = self
            .tags
            .iter()
            .all(|(name, value)| version.tags.get(name) == Some(value));
        let sized = self.min_size.is_some() || self.max_size.is_some();
        if version.is_delete_marker {
            return self.tags.is_empty() && !sized;
        }
        tags && self.min_size.is_none_or(|min| version.size >= min)
            && self.max_size.is_none_or(|max| version.size <= max)
    }

    /// The transition this rule makes of `version` at `now`, if one is due:
    /// where to, and since when.
    fn transition_due(&self, version: &ObjectVersion, now: Timestamp) -> Option<(&String, Timestamp)> {
        let (days, to) = (self.transition_after_days?, self.transition_to.as_ref()?);
        let due = after_days(version.created_at, days);
        (due <= now && !version.is_delete_marker && self.selects(version)).then_some((to, due))
    }
}

/// Plan `rules` over one key's versions (newest first, as the catalog lists
/// them) at `now`, adding to `plan`. Each version gets at most one action:
/// the first rule that removes it wins over later ones, and a removal over
/// a transition; of the transitions due, the one due last (the furthest
/// stage) is the version's target, so content only moves forward.
pub fn plan_key(rules: &[LifecycleRule], versions: &[ObjectVersion], now: Timestamp, plan: &mut LifecyclePlan) {
    plan.versions_seen += versions.len() as u64;
    let Some(current) = versions.first() else {
        return;
    };
    let key = current.key.as_str();
    let rules: Vec<&LifecycleRule> = rules.iter().filter(|rule| rule.selects_key(key)).collect();
    if rules.is_empty() {
        return;
    }
    let action = |rule: &LifecycleRule, kind, version: &ObjectVersion, due| LifecycleAction {
        rule: rule.id.clone(),
        kind,
        key: key.to_owned(),
        version_id: version.version_id.to_string(),
        due,
    };
    let mut removed = BTreeSet::new();
    let mut acted = BTreeSet::new();
    // The current version: a delete marker over it.
    if !current.is_delete_marker
        && let Some((rule, due)) = rules.iter().find_map(|rule| {
            let days = rule.expire_after_days?;
            let due = after_days(current.created_at, days);
            (rule.selects(current) && due <= now).then_some((rule, due))
        })
    {
        plan.actions.push(action(rule, ActionKind::ExpireCurrent, current, due));
        acted.insert(0);
    }
    // Noncurrent versions: each became noncurrent when the next newer one was made.
    for (index, version) in versions.iter().enumerate().skip(1) {
        let noncurrent_since = versions[index - 1].created_at;
        let found = rules.iter().find_map(|rule| {
            let days = rule.noncurrent_expire_after_days?;
            let due = after_days(noncurrent_since, days);
            (index > rule.keep_noncurrent && rule.selects(version) && due <= now).then_some((rule, due))
        });
        let Some((rule, due)) = found else { continue };
        let planned = action(rule, ActionKind::ExpireNoncurrent, version, due);
        acted.insert(index);
        match version
            .protection()
            .check_removal(&format!("{key} version {}", version.version_id), now, false)
        {
            Ok(()) => {
                removed.insert(index);
                plan.actions.push(planned);
            }
            Err(refusal) => plan.held.push(HeldAction {
                action: planned,
                reason: refusal.message().to_owned(),
            }),
        }
    }
    // A delete marker left alone, once the removals above are done.
    let alone = (1..versions.len()).all(|index| removed.contains(&index));
    if current.is_delete_marker
        && alone
        && let Some(rule) = rules
            .iter()
            .find(|rule| rule.expire_delete_markers && rule.selects(current))
    {
        plan.actions.push(action(
            rule,
            ActionKind::RemoveDeleteMarker,
            current,
            current.created_at,
        ));
        acted.insert(0);
    }
    // Transitions of content that stays.
    for (index, version) in versions.iter().enumerate() {
        if version.is_delete_marker || removed.contains(&index) || (index == 0 && acted.contains(&0)) {
            continue;
        }
        // The furthest stage reached: a later transition supersedes an
        // earlier one, so content only ever moves forward.
        let found = rules
            .iter()
            .filter_map(|rule| rule.transition_due(version, now).map(|(to, due)| (rule, to, due)))
            .max_by_key(|(_, _, due)| *due)
            .filter(|(_, to, _)| {
                !version
                    .placement
                    .as_deref()
                    .is_some_and(|at| at.eq_ignore_ascii_case(to))
            });
        if let Some((rule, to, due)) = found {
            plan.actions
                .push(action(rule, ActionKind::Transition { to: to.clone() }, version, due));
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::catalog::{BlobRef, NewVersion, Precondition, VersionContent};
    use crate::key::{Metadata, ObjectKey};
    use crate::retention::{Retention, RetentionMode};
    use crate::version::VersionId;

    fn day(n: i64) -> Timestamp {
        Timestamp::from_micros(1_700_000_000_000_000 + n * 86_400_000_000)
    }

    /// A version of `key` made on day `made`, `size` bytes (`None`: a delete marker).
    fn version(key: &str, made: i64, size: Option<u64>) -> ObjectVersion {
        let content = match size {
            Some(size) => VersionContent::Blob(BlobRef {
                sha256: format!("{made:064}"),
                md5: "m".into(),
                size,
                new_path: None,
                data_key: None,
                hot: None,
            }),
            None => VersionContent::DeleteMarker,
        };
        NewVersion {
            key: ObjectKey::new(key).unwrap(),
            version_id: VersionId::generate(),
            content,
            content_type: None,
            metadata: Metadata::new(),
            created_at: day(made),
            created_by: "t".into(),
            precondition: Precondition::None,
            action: "put",
            audit_detail: serde_json::Value::Null,
            tags: Tags::new(),
            comments: Vec::new(),
            retention: None,
            legal_hold: false,
        }
        .recorded(false, Some("blobs/x".into()))
    }

    /// A key's versions, newest first, made on these days.
    fn history(key: &str, days: &[(i64, Option<u64>)]) -> Vec<ObjectVersion> {
        let mut versions: Vec<_> = days.iter().map(|(made, size)| version(key, *made, *size)).collect();
        versions.reverse();
        versions[0].is_latest = true;
        versions
    }

    fn config(text: &str) -> LifecycleConfig {
        let config: LifecycleConfig = toml::from_str(text).unwrap();
        config.validate().unwrap();
        config
    }

    fn kinds(rules: &[LifecycleRule], versions: &[ObjectVersion], at: i64) -> Vec<(String, usize)> {
        let mut plan = LifecyclePlan::default();
        plan_key(rules, versions, day(at), &mut plan);
        plan.actions
            .iter()
            .map(|a| {
                let index = versions
                    .iter()
                    .position(|v| v.version_id.as_str() == a.version_id)
                    .unwrap();
                let kind = match &a.kind {
                    ActionKind::ExpireCurrent => "expire".to_owned(),
                    ActionKind::ExpireNoncurrent => "noncurrent".to_owned(),
                    ActionKind::RemoveDeleteMarker => "marker".to_owned(),
                    ActionKind::Transition { to } => format!("to {to}"),
                };
                (kind, index)
            })
            .collect()
    }

    const RULES: &str = r#"
        [[rules]]
        id = "tmp"
        prefix = "tmp/"
        expire_after_days = 7
        noncurrent_expire_after_days = 30
        keep_noncurrent = 1
        expire_delete_markers = true

        [[rules]]
        id = "archive"
        prefix = "docs/"
        transition_after_days = 30
        transition_to = "cold"
        min_size = 100

        [[rules]]
        id = "glacier"
        prefix = "docs/"
        transition_after_days = 90
        transition_to = "GLACIER"
    "#;

    /// The table of the issue: rules x objects x times (1, 31, 91 and 400 days).
    #[test]
    fn plans_at_1_31_91_and_400_days() {
        let rules = config(RULES).rules;
        // tmp/a: made on day 0, rewritten on days 10 and 20.
        let tmp = history("tmp/a", &[(0, Some(5)), (10, Some(5)), (20, Some(5))]);
        let docs = history("docs/big", &[(0, Some(500))]);
        let small = history("docs/small", &[(0, Some(10))]);
        let other = history("other/x", &[(0, Some(10))]);
        type Row<'a> = (i64, &'a [ObjectVersion], Vec<(&'a str, usize)>); // day, versions, actions expected
        let table: [Row; 12] = [
            (1, &tmp, vec![]),
            (31, &tmp, vec![("expire", 0)]),
            // Noncurrent since day 20 (index 1, kept as the newest noncurrent) and day 10 (index 2).
            (41, &tmp, vec![("expire", 0), ("noncurrent", 2)]),
            (400, &tmp, vec![("expire", 0), ("noncurrent", 2)]),
            (1, &docs, vec![]),
            (31, &docs, vec![("to cold", 0)]),
            (91, &docs, vec![("to GLACIER", 0)]),
            (1, &small, vec![]),
            (31, &small, vec![]),
            (91, &small, vec![("to GLACIER", 0)]),
            (400, &small, vec![("to GLACIER", 0)]),
            (400, &other, vec![]),
        ];
        for (at, versions, expected) in table {
            let expected: Vec<(String, usize)> = expected.into_iter().map(|(k, i)| (k.to_owned(), i)).collect();
            assert_eq!(kinds(&rules, versions, at), expected, "{} at day {at}", versions[0].key);
        }
        // Moved already: no second move to the same place, and never back.
        let mut moved = docs.clone();
        moved[0].placement = Some("cold".into());
        assert!(kinds(&rules, &moved, 31).is_empty());
        assert_eq!(kinds(&rules, &moved, 400), vec![("to GLACIER".to_owned(), 0)]);
        moved[0].placement = Some("GLACIER".into());
        assert!(kinds(&rules, &moved, 400).is_empty());
    }

    #[test]
    fn a_lone_delete_marker_goes_once_the_versions_behind_it_do() {
        let rules =
            config("[[rules]]\nid = \"m\"\nnoncurrent_expire_after_days = 1\nexpire_delete_markers = true").rules;
        let deleted = history("k", &[(0, Some(1)), (5, None)]);
        assert_eq!(kinds(&rules, &deleted, 5), vec![]);
        assert_eq!(
            kinds(&rules, &deleted, 6),
            vec![("noncurrent".into(), 1), ("marker".into(), 0)]
        );
        let alone = history("k", &[(5, None)]);
        assert_eq!(kinds(&rules, &alone, 5), vec![("marker".into(), 0)]);
    }

    #[test]
    fn retention_and_legal_hold_hold_removals_back() {
        let rules =
            config("[[rules]]\nid = \"n\"\nnoncurrent_expire_after_days = 1\nexpire_delete_markers = true").rules;
        let mut versions = history("k", &[(0, Some(1)), (1, Some(1)), (2, None)]);
        versions[1].legal_hold = true;
        versions[2].retention = Some(Retention {
            mode: RetentionMode::Governance,
            until: day(100),
        });
        let mut plan = LifecyclePlan::default();
        plan_key(&rules, &versions, day(10), &mut plan);
        assert!(plan.actions.is_empty(), "{:?}", plan.actions);
        assert_eq!(plan.held.len(), 2);
        assert!(plan.held[0].reason.contains("legal hold"));
        assert!(plan.held[1].reason.contains("governance retention until"));
        // Past the date, only the hold remains; the marker stays while a version does.
        let mut plan = LifecyclePlan::default();
        plan_key(&rules, &versions, day(101), &mut plan);
        assert_eq!(plan.actions.len(), 1);
        assert_eq!(plan.held.len(), 1);
    }

    #[test]
    fn tags_and_sizes_filter_and_markers_pass_only_plain_rules() {
        let rules = config(
            "[[rules]]\nid = \"drafts\"\ntags = { stage = \"draft\" }\nexpire_after_days = 1\n\
             [[rules]]\nid = \"big\"\nmin_size = 1000\nexpire_after_days = 1",
        )
        .rules;
        let mut draft = history("a", &[(0, Some(5))]);
        assert!(kinds(&rules, &draft, 5).is_empty());
        draft[0].tags.insert("stage".into(), "draft".into());
        assert_eq!(kinds(&rules, &draft, 5), vec![("expire".into(), 0)]);
        let big = history("b", &[(0, Some(5000))]);
        assert_eq!(kinds(&rules, &big, 5), vec![("expire".into(), 0)]);
    }

    #[test]
    fn rules_that_mean_nothing_are_refused_in_one_line() {
        for text in [
            "[[rules]]\nexpire_after_days = 1",
            "[[rules]]\nid = \"a\"",
            "[[rules]]\nid = \"a\"\ntransition_after_days = 3",
            "[[rules]]\nid = \"a\"\ntransition_to = \"cold\"",
            "[[rules]]\nid = \"a\"\nexpire_after_days = 1\nmin_size = 5\nmax_size = 1",
            "[[rules]]\nid = \"a\"\nexpire_after_days = 1\n[[rules]]\nid = \"a\"\nexpire_after_days = 2",
            "[[rules]]\nid = \"a\"\nexpire_after_days = 1\nkeep_noncurrent = 2",
        ] {
            let config: LifecycleConfig = toml::from_str(text).unwrap();
            let err = config.validate().unwrap_err();
            assert!(!err.message().contains('\n'), "{text}");
        }
        assert!(toml::from_str::<LifecycleConfig>("[[rules]]\nid = \"a\"\nexpire_days = 1").is_err());
    }
}
