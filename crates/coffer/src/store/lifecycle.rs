//! Lifecycle on `Store`: plan the rules over the catalog at any time, and
//! apply them now, one action per catalog transaction, each audited with
//! its events. Applying twice does nothing the second time.

use std::time::SystemTime;

use futures::TryStreamExt;
use serde::Serialize;

use super::Store;
use crate::backend::{IncompleteUpload, Tier};
use crate::catalog::Precondition;
use crate::error::{Error, Result};
use crate::key::ObjectKey;
use crate::layout::{self, STAGING_DIR};
use crate::lifecycle::{ActionKind, LifecycleAction, LifecycleConfig, LifecyclePlan, plan_catalog};
use crate::time::Timestamp;
use crate::version::VersionId;

/// An upload that never finished, and the rule that aborts it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StaleUpload {
    /// The rule.
    pub rule: String,
    /// The backend path it was for.
    pub path: String,
    /// The store's id of a multipart upload (S3); `None` for a staged file of coffer's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upload_id: Option<String>,
}

/// What [`Store::lifecycle_apply`] did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LifecycleReport {
    /// True if nothing was changed.
    pub dry_run: bool,
    /// The plan it carried out (or, in a dry run, would have).
    pub plan: LifecyclePlan,
    /// Unfinished uploads aborted (or that would be).
    pub uploads: Vec<StaleUpload>,
    /// Actions that did not apply, with why (a newer put meanwhile, a
    /// backend that refused): the next run tries again.
    pub failed: Vec<FailedAction>,
}

/// An action that did not apply.
#[derive(Debug, Clone, Serialize)]
pub struct FailedAction {
    /// The action.
    #[serde(flatten)]
    pub action: LifecycleAction,
    /// Why, in one line.
    pub reason: String,
}

impl Store {
    /// The store's lifecycle rules (`[lifecycle]`).
    pub fn lifecycle_rules(&self) -> &LifecycleConfig {
        &self.lifecycle
    }

    /// What the lifecycle rules would do at `at` (now when `None`), without
    /// changing anything: every key is read a page of versions at a time.
    pub async fn lifecycle_plan(&self, at: Option<Timestamp>) -> Result<LifecyclePlan> {
        let now = at.unwrap_or_else(Timestamp::now);
        plan_catalog(&*self.catalog, &self.lifecycle.rules, now).await
    }

    /// Apply the lifecycle rules now and then every `every`, in the
    /// background for as long as the handle lives (what `coffer serve`
    /// runs). A round that fails is tried again by the next.
    pub fn spawn_lifecycle(&self, every: std::time::Duration) -> super::SyncHandle {
        let store = self.clone();
        let task = tokio::spawn(async move {
            loop {
                let _ = store.lifecycle_apply(false).await;
                tokio::time::sleep(every).await;
            }
        });
        super::SyncHandle { task }
    }

    /// Apply the lifecycle rules now (or, with `dry_run`, say what would
    /// happen). Each action is its own catalog transaction, audited (the
    /// actor is `lifecycle:RULE`) with its events; one that fails is reported
    /// and tried again by the next run. Retention and legal hold win: what
    /// they hold is reported, never removed.
    pub async fn lifecycle_apply(&self, dry_run: bool) -> Result<LifecycleReport> {
        // Transitions move content on the backend: the hot store's goes there first.
        if !dry_run {
            self.flush_hot().await?;
        }
        let plan = self.lifecycle_plan(None).await?;
        let uploads = self.stale_uploads(SystemTime::now()).await?;
        let mut report = LifecycleReport {
            dry_run,
            uploads,
            ..LifecycleReport::default()
        };
        if !dry_run {
            for action in &plan.actions {
                if let Err(err) = self.apply_action(action).await {
                    report.failed.push(FailedAction {
                        action: action.clone(),
                        reason: err.message().to_owned(),
                    });
                }
            }
            for upload in &report.uploads {
                self.abort_stale_upload(upload).await?;
            }
        }
        report.plan = plan;
        Ok(report)
    }

    async fn apply_action(&self, action: &LifecycleAction) -> Result<()> {
        let store = self.with_actor(format!("lifecycle:{}", action.rule));
        let key = ObjectKey::new(action.key.as_str())?;
        let version_id: VersionId = action.version_id.parse()?;
        match &action.kind {
            ActionKind::ExpireCurrent => store.expire_current(&key, &version_id, action).await,
            ActionKind::ExpireNoncurrent | ActionKind::RemoveDeleteMarker => {
                store.delete_version(key.as_str(), &version_id).await.map(|_| ())
            }
            ActionKind::Transition { to } if to.eq_ignore_ascii_case(Tier::Cold.as_str()) => store
                .move_to_tier(key.as_str(), &version_id, Tier::Cold)
                .await
                .map(|_| ()),
            ActionKind::Transition { to } => store.transition_to_class(&key, &version_id, to, action).await,
        }
    }

    /// A delete marker over `key`, committed only while `version_id` is still
    /// its current version (a put since is younger than the rule's age).
    async fn expire_current(&self, key: &ObjectKey, version_id: &VersionId, action: &LifecycleAction) -> Result<()> {
        let current = self.head(key.as_str(), None).await?;
        if current.version_id != *version_id {
            return Err(Error::conflict(format!("{key} has a newer version since the plan")));
        }
        let marker = self.delete_marker(
            key.clone(),
            Precondition::IfMatch(current.etag.unwrap_or_default()),
            "lifecycle",
            serde_json::json!({ "rule": action.rule, "expired_version_id": version_id }),
        );
        self.commit_described(marker).await.map(|_| ())
    }

    /// Give a version's content a storage class (every version sharing it
    /// moves too), and record where it lies.
    async fn transition_to_class(
        &self,
        key: &ObjectKey,
        version_id: &VersionId,
        class: &str,
        action: &LifecycleAction,
    ) -> Result<()> {
        let version = self.head(key.as_str(), Some(version_id)).await?;
        let (path, _) = super::stored_content(&version)?;
        self.backend
            .set_storage_class(path, class)
            .await
            .map_err(|e| super::archived_version(e, &format!("{key} version {version_id}")))?;
        // A class changed in place may be a new object to a store with a
        // guard (an S3 copy onto itself): lock it again.
        let _ = self.guard(&version).await;
        let detail = serde_json::json!({ "rule": action.rule, "to": class, "sha256": version.sha256 });
        self.record_placement("lifecycle", &version, Some(class.to_owned()), detail)
            .await
    }

    /// Uploads that never finished, older than the shortest abort rule allows.
    async fn stale_uploads(&self, now: SystemTime) -> Result<Vec<StaleUpload>> {
        let Some((rule, after)) = self.lifecycle.abort_uploads_after() else {
            return Ok(Vec::new());
        };
        let cutoff = now.checked_sub(after).unwrap_or(SystemTime::UNIX_EPOCH);
        let mut stale: Vec<StaleUpload> = self
            .backend
            .incomplete_uploads(cutoff)
            .await?
            .into_iter()
            .map(|upload| StaleUpload {
                rule: rule.clone(),
                path: upload.path,
                upload_id: Some(upload.upload_id),
            })
            .collect();
        // coffer's own staged uploads (a put or presigned upload cut off)
        // carry their time in their name.
        let cutoff = Timestamp::from_system(cutoff);
        let mut staged = self.backend.list(STAGING_DIR).await?;
        while let Some(path) = staged.try_next().await? {
            if layout::id_in_path(&path).is_some_and(|id| id.timestamp() < cutoff) {
                stale.push(StaleUpload {
                    rule: rule.clone(),
                    path,
                    upload_id: None,
                });
            }
        }
        Ok(stale)
    }

    async fn abort_stale_upload(&self, upload: &StaleUpload) -> Result<()> {
        match &upload.upload_id {
            Some(upload_id) => {
                let incomplete = IncompleteUpload {
                    path: upload.path.clone(),
                    upload_id: upload_id.clone(),
                };
                self.backend.abort_upload(&incomplete).await
            }
            None => self.backend.delete(&upload.path).await,
        }
    }
}
