//! Version management on `Store`: history, rollback, compare, tags, comments and prune.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use serde::Serialize;

use super::Store;
use crate::catalog::Precondition;
use crate::catalog::{Annotation, Comment, DeletedVersion, HeldVersion, KeyQuery, ObjectVersion, PrunePolicy, Pruned};
use crate::error::{Error, ErrorKind, Result};
use crate::key::{
    Metadata, ObjectKey, Tags, validate_comment, validate_content_type, validate_metadata, validate_tag_name,
    validate_tags,
};
use crate::layout;
use crate::time::Timestamp;
use crate::version::VersionId;

/// Largest version `compare` reads to make a text diff.
const MAX_DIFF_BYTES: u64 = 1 << 20;

/// One line of a key's history: a version and how its size changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct HistoryEntry {
    /// The version.
    #[serde(flatten)]
    pub version: ObjectVersion,
    /// Its size minus the previous (older) version's, a delete marker or no
    /// previous version counting as 0 bytes.
    pub size_change: i64,
}

/// The before and after of one metadata entry or tag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ValueChange {
    /// In the first version compared (`None`: absent there).
    pub before: Option<String>,
    /// In the second version compared (`None`: absent there).
    pub after: Option<String>,
}

/// A line-by-line diff of two text versions, or why there is none.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum TextDiff {
    /// A unified diff (empty when the texts are equal).
    Unified(String),
    /// No diff was made, and why.
    Skipped(String),
}

/// How two versions of a key differ.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Comparison {
    /// The first version (usually the older).
    pub from: ObjectVersion,
    /// The second version.
    pub to: ObjectVersion,
    /// `to`'s size minus `from`'s.
    pub size_change: i64,
    /// Whether the contents are byte for byte the same (equal SHA-256).
    pub same_content: bool,
    /// Content types, when they differ.
    pub content_type: Option<ValueChange>,
    /// Metadata entries that differ, by name.
    pub metadata: BTreeMap<String, ValueChange>,
    /// Tags that differ, by name.
    pub tags: BTreeMap<String, ValueChange>,
    /// A unified diff when both versions are text.
    pub text_diff: TextDiff,
}

/// What a prune removed (or, for a dry run, would remove).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PruneReport {
    /// True if nothing was removed because this was a dry run.
    pub dry_run: bool,
    /// The versions removed.
    pub removed: Vec<ObjectVersion>,
    /// Blobs no version references any more, deleted from the backend.
    pub blobs_freed: u64,
    /// Their bytes.
    pub bytes_freed: u64,
    /// Versions the policy would remove that retention or a legal hold keeps, with why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub held: Vec<HeldVersion>,
}

impl PruneReport {
    fn add(&mut self, pruned: Pruned) {
        self.held.extend(pruned.held);
        for deleted in pruned.removed {
            if deleted.unreferenced_blob.is_some() {
                self.blobs_freed += 1;
                self.bytes_freed += deleted.version.size;
            }
            self.removed.push(deleted.version);
        }
    }
}

fn signed(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl Store {
    /// The versions of `key`, newest first (at most `limit`), each with its
    /// size change from the version before it.
    pub async fn history(&self, key: &str, limit: Option<usize>) -> Result<Vec<HistoryEntry>> {
        let key = ObjectKey::new(key)?;
        if limit == Some(0) {
            return Err(Error::invalid_input("limit must be at least 1"));
        }
        // One more than shown, for the size change of the oldest one shown.
        let mut versions = self.catalog.versions(&key, limit.map(|n| n.saturating_add(1))).await?;
        if versions.is_empty() {
            return Err(Error::not_found(format!("no such key: {key}")));
        }
        let older_sizes: Vec<u64> = versions.iter().skip(1).map(|v| v.size).chain([0]).collect();
        if let Some(limit) = limit {
            versions.truncate(limit);
        }
        Ok(versions
            .into_iter()
            .zip(older_sizes)
            .map(|(version, older)| HistoryEntry {
                size_change: signed(version.size) - signed(older),
                version,
            })
            .collect())
    }

    /// Make the content of an older version current again: a new version that
    /// references the old one's bytes (nothing is copied), recorded with who
    /// did it and, if given, why.
    pub async fn rollback(&self, key: &str, version_id: &VersionId, comment: Option<&str>) -> Result<ObjectVersion> {
        let key = ObjectKey::new(key)?;
        if let Some(text) = comment {
            validate_comment(text)?;
        }
        let target = match self.catalog.version(&key, Some(version_id)).await? {
            None => return Err(Error::not_found(format!("no version {version_id} of {key}"))),
            Some(v) if v.is_delete_marker => {
                return Err(Error::invalid_input(format!(
                    "cannot roll {key} back to {version_id}: that version is a delete marker"
                )));
            }
            Some(v) => v,
        };
        self.reinstate(target, "rollback", Precondition::None, comment).await
    }

    /// Bring back a deleted key (its latest version is a delete marker): a
    /// new version that references the bytes of its newest version with
    /// content, as [`rollback`](Self::rollback) to that version would, audited
    /// as `undelete` and firing a rollback's events. Fails with `Conflict`,
    /// changing nothing, when the key is not deleted (or is brought back by
    /// someone else meanwhile), and with `NotFound` when it has no version
    /// with content.
    pub async fn undelete(&self, key: &str, comment: Option<&str>) -> Result<ObjectVersion> {
        let key = ObjectKey::new(key)?;
        if let Some(text) = comment {
            validate_comment(text)?;
        }
        let versions = self.catalog.versions(&key, None).await?;
        match versions.first() {
            None => return Err(Error::not_found(format!("no such key: {key}"))),
            Some(latest) if !latest.is_delete_marker => {
                return Err(Error::conflict(format!(
                    "{key} is not deleted: its latest version {} is live",
                    latest.version_id
                )));
            }
            Some(_) => {}
        }
        let Some(target) = versions.into_iter().find(|v| !v.is_delete_marker) else {
            return Err(Error::not_found(format!(
                "{key} has only delete markers: no version with content to bring back"
            )));
        };
        // Committed only while the key is still deleted.
        self.reinstate(target, "undelete", Precondition::IfNoneMatch, comment)
            .await
            .map_err(|e| match e.kind() {
                ErrorKind::Conflict => Error::conflict(format!("{key} is not deleted any more")),
                _ => e,
            })
    }

    /// A new version of `target`'s key sharing `target`'s bytes: what a
    /// rollback and an undelete commit.
    async fn reinstate(
        &self,
        target: ObjectVersion,
        action: &'static str,
        precondition: Precondition,
        comment: Option<&str>,
    ) -> Result<ObjectVersion> {
        let (key, version_id) = (&target.key, &target.version_id);
        if let Some(problem) = &target.damaged {
            return Err(Error::new(
                ErrorKind::IntegrityMismatch,
                format!("cannot bring back {key} version {version_id}: its content is damaged ({problem})"),
            ));
        }
        let detail = serde_json::json!({
            "rolled_back_to": version_id, "sha256": target.sha256, "comment": comment,
        });
        let mut version = self.sharing_content(key.clone(), &target, action, detail)?;
        version.precondition = precondition;
        version.comments = comment
            .map(|text| Comment {
                at: version.created_at,
                actor: self.actor.clone(),
                text: text.to_owned(),
            })
            .into_iter()
            .collect();
        let committed = self.commit_described(version).await?;
        self.apply_max_versions(&committed.key).await?;
        Ok(committed)
    }

    /// How version `to` of `key` differs from version `from`.
    pub async fn compare(&self, key: &str, from: &VersionId, to: &VersionId) -> Result<Comparison> {
        let from = self.head(key, Some(from)).await?;
        let to = self.head(key, Some(to)).await?;
        let same_content = from.sha256 == to.sha256;
        let content_type = (from.content_type != to.content_type).then(|| ValueChange {
            before: from.content_type.clone(),
            after: to.content_type.clone(),
        });
        let text_diff = if same_content {
            TextDiff::Unified(String::new())
        } else {
            self.text_diff(&from, &to).await?
        };
        Ok(Comparison {
            size_change: signed(to.size) - signed(from.size),
            same_content,
            content_type,
            metadata: map_changes(&from.metadata, &to.metadata),
            tags: map_changes(&from.tags, &to.tags),
            text_diff,
            from,
            to,
        })
    }

    async fn text_diff(&self, from: &ObjectVersion, to: &ObjectVersion) -> Result<TextDiff> {
        if from.size.max(to.size) > MAX_DIFF_BYTES {
            return Ok(TextDiff::Skipped(format!(
                "a version is larger than {} KiB",
                MAX_DIFF_BYTES / 1024
            )));
        }
        let key = from.key.as_str();
        let (_, old) = self.get_bytes(key, Some(&from.version_id)).await?;
        let (_, new) = self.get_bytes(key, Some(&to.version_id)).await?;
        let (Some(old), Some(new)) = (as_text(&old), as_text(&new)) else {
            return Ok(TextDiff::Skipped("binary content".into()));
        };
        let diff = similar::TextDiff::from_lines(old, new);
        let unified = diff
            .unified_diff()
            .context_radius(3)
            .header(
                &format!("{key} {}", from.version_id),
                &format!("{key} {}", to.version_id),
            )
            .to_string();
        Ok(TextDiff::Unified(unified))
    }

    /// Set tags on a version (replacing values of the same names) and remove
    /// the tags named in `remove`.
    pub async fn tag(&self, key: &str, version_id: &VersionId, set: Tags, remove: &[String]) -> Result<ObjectVersion> {
        let key = ObjectKey::new(key)?;
        validate_tags(&set)?;
        for name in remove {
            validate_tag_name(name)?;
        }
        if set.is_empty() && remove.is_empty() {
            return Err(Error::invalid_input("no tags to set or remove"));
        }
        if let Some(name) = remove.iter().find(|name| set.contains_key(*name)) {
            return Err(Error::invalid_input(format!("tag {name:?} is both set and removed")));
        }
        // As S3 refuses to tag a delete marker (MethodNotAllowed): it has no
        // content to describe. A version never becomes or stops being a
        // marker, so this check cannot race with a change. Comments stay
        // allowed: one may say why the key was deleted.
        if let Some(version) = self.catalog.version(&key, Some(version_id)).await?
            && version.is_delete_marker
        {
            return Err(Error::invalid_input(format!(
                "version {version_id} of {key} is a delete marker: it cannot be tagged"
            )));
        }
        let annotation = Annotation::Tags {
            set,
            remove: remove.to_vec(),
        };
        self.annotate(&key, version_id, annotation).await
    }

    /// Add a comment to a version.
    pub async fn comment(&self, key: &str, version_id: &VersionId, text: &str) -> Result<ObjectVersion> {
        let key = ObjectKey::new(key)?;
        validate_comment(text)?;
        self.annotate(&key, version_id, Annotation::Comment(text.to_owned()))
            .await
    }

    /// Change a version's user metadata or content type without touching its
    /// bytes: a new version of `key` sharing the latest version's content
    /// (and tags), with the entries of `set` added or replaced, those named in
    /// `remove` gone, and `content_type` when given. Audited (`metadata`) and
    /// announced like a put; `history` and `compare` show the change. Fails
    /// with `Conflict` if another version became the latest meanwhile.
    pub async fn update_metadata(
        &self,
        key: &str,
        set: Metadata,
        remove: &[String],
        content_type: Option<String>,
    ) -> Result<ObjectVersion> {
        validate_metadata(&set)?;
        if let Some(content_type) = &content_type {
            validate_content_type(content_type)?;
        }
        if set.is_empty() && remove.is_empty() && content_type.is_none() {
            return Err(Error::invalid_input(
                "no metadata to set or remove, and no content type",
            ));
        }
        if let Some(name) = remove.iter().find(|name| set.contains_key(*name)) {
            return Err(Error::invalid_input(format!(
                "metadata {name:?} is both set and removed"
            )));
        }
        let current = self.head(key, None).await?;
        let mut metadata = current.metadata.clone();
        for name in remove {
            if metadata.remove(name).is_none() {
                return Err(Error::invalid_input(format!(
                    "{key} has no metadata {name:?} to remove"
                )));
            }
        }
        metadata.extend(set.clone());
        validate_metadata(&metadata)?;
        let detail = serde_json::json!({
            "from_version_id": current.version_id, "sha256": current.sha256, "set": set, "removed": remove,
            "content_type": content_type,
        });
        let mut version = self.sharing_content(current.key.clone(), &current, "metadata", detail)?;
        version.metadata = metadata;
        version.tags = current.tags.clone();
        if let Some(content_type) = content_type {
            version.content_type = Some(content_type);
        }
        // Committed only while the version read is still the latest (same content).
        version.precondition = Precondition::IfMatch(current.etag.clone().unwrap_or_default());
        let committed = self.commit_described(version).await?;
        self.apply_max_versions(&committed.key).await?;
        Ok(committed)
    }

    pub(super) async fn annotate(
        &self,
        key: &ObjectKey,
        version_id: &VersionId,
        annotation: Annotation,
    ) -> Result<ObjectVersion> {
        let annotation_changes_protection =
            matches!(annotation, Annotation::Retention { .. } | Annotation::LegalHold(_));
        let version = self.catalog.annotate(key, version_id, annotation, &self.actor).await?;
        self.events_written(key).await;
        // The catalog holds the change; the manifest follows so that reindex
        // can restore it. If this write fails, `verify --repair` redoes it.
        let _ = self.rewrite_manifest(&version).await;
        // The rewritten manifest is a new object to a store with a guard:
        // locked as the version is (protection commands lock it themselves).
        if !annotation_changes_protection && version.protection().is_protected(Timestamp::now()) {
            let _ = self.guard(&version).await;
        }
        Ok(version)
    }

    /// Remove the versions of `key` that `policy` does not keep. The latest
    /// version always stays, and a blob goes only with its last reference.
    pub async fn prune(&self, key: &str, policy: PrunePolicy, dry_run: bool) -> Result<PruneReport> {
        let key = ObjectKey::new(key)?;
        let mut report = PruneReport {
            dry_run,
            ..PruneReport::default()
        };
        report.add(self.prune_key(&key, policy, dry_run).await?);
        Ok(report)
    }

    /// [`prune`](Self::prune) every key under `prefix`, deleted keys included.
    pub async fn prune_prefix(&self, prefix: &str, policy: PrunePolicy, dry_run: bool) -> Result<PruneReport> {
        const PAGE: usize = 1000;
        let mut report = PruneReport {
            dry_run,
            ..PruneReport::default()
        };
        let mut query = KeyQuery {
            prefix: prefix.to_owned(),
            limit: PAGE,
            include_deleted: true,
            ..KeyQuery::default()
        };
        loop {
            let page = self.catalog.list_latest(&query).await?;
            for latest in &page {
                report.add(self.prune_key(&latest.key, policy, dry_run).await?);
            }
            match page.last() {
                Some(last) if page.len() == PAGE => query.start_after = Some(last.key.to_string()),
                _ => return Ok(report),
            }
        }
    }

    async fn prune_key(&self, key: &ObjectKey, policy: PrunePolicy, dry_run: bool) -> Result<Pruned> {
        let pruned = self.catalog.prune(key, policy, &self.actor, dry_run).await?;
        if !dry_run {
            self.events_written(key).await;
            self.remove_leftovers(&pruned.removed).await;
        }
        Ok(pruned)
    }

    /// Delete the manifests of removed versions and the blobs they released.
    /// The catalog has committed; a failure here leaves an orphan that
    /// `verify --repair` removes, never a dangling version.
    pub(super) async fn remove_leftovers(&self, removed: &[DeletedVersion]) {
        let blobs: BTreeSet<&String> = removed.iter().filter_map(|d| d.unreferenced_blob.as_ref()).collect();
        for deleted in removed {
            let manifest = layout::manifest_path(&deleted.version.key, &deleted.version.version_id);
            let _ = self.backend.delete(&manifest).await;
        }
        for blob in blobs {
            let _ = self.backend.delete(blob).await;
        }
    }

    /// Prune `key` to the store's `max_versions`, if it has one.
    pub(super) async fn apply_max_versions(&self, key: &ObjectKey) -> Result<()> {
        if let Some(keep) = self.max_versions {
            let policy = PrunePolicy {
                keep,
                keep_tagged: true,
            };
            self.prune_key(key, policy, false).await?;
        }
        Ok(())
    }
}

/// The entries that differ between two maps.
fn map_changes(before: &BTreeMap<String, String>, after: &BTreeMap<String, String>) -> BTreeMap<String, ValueChange> {
    before
        .keys()
        .chain(after.keys())
        .filter(|name| before.get(*name) != after.get(*name))
        .map(|name| {
            let change = ValueChange {
                before: before.get(name).cloned(),
                after: after.get(name).cloned(),
            };
            (name.clone(), change)
        })
        .collect()
}

/// The bytes as text, if they are UTF-8 without NUL bytes.
fn as_text(bytes: &Bytes) -> Option<&str> {
    std::str::from_utf8(bytes).ok().filter(|text| !text.contains('\0'))
}
