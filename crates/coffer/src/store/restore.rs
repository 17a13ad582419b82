//! Archive restore on `Store`: `coffer restore` starts bringing a version's
//! archived content back (S3 `RestoreObject`, Azure rehydration), `coffer
//! restore status` follows it, and long-running processes poll the pending
//! restores and fire `object.restored` once one is done. A restore asked
//! for is recorded in the catalog (audited as `restore`), so any process
//! can see it through; its completion is audited as `restored`.

use std::time::Duration;

use serde::Serialize;

use super::{Store, SyncHandle};
use crate::backend::{RestoreState, RestoreTier};
use crate::catalog::{ObjectVersion, PendingRestore, Repair, RestoreRequest};
use crate::error::{Error, Result};
use crate::time::Timestamp;
use crate::version::VersionId;

/// The longest restore coffer asks for (S3 takes up to 30,000 days).
pub const MAX_RESTORE_DAYS: u32 = 30_000;
/// How often long-running processes look at pending restores.
pub const RESTORE_POLL_INTERVAL: Duration = Duration::from_secs(60);

/// Where a version's content stands between its archive class and being readable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RestoreStatus {
    /// The key.
    pub key: String,
    /// The version.
    pub version_id: VersionId,
    /// What the store says.
    #[serde(flatten)]
    pub state: RestoreState,
    /// The restore asked for and not yet seen done, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pending: Option<RestoreRequest>,
}

impl Store {
    /// Start bringing the archived content of `key`'s version back: readable
    /// for `days` (S3's temporary copy; Azure's rehydration is for good), at
    /// the speed of `tier`. Recorded as pending until a poll (or
    /// [`restore_status`](Self::restore_status)) sees it done. A version that
    /// is not archived is refused with `InvalidInput`.
    pub async fn restore(
        &self,
        key: &str,
        version_id: &VersionId,
        days: u32,
        tier: RestoreTier,
    ) -> Result<RestoreStatus> {
        if !(1..=MAX_RESTORE_DAYS).contains(&days) {
            return Err(Error::invalid_input(format!(
                "a restore's days must be 1 to {MAX_RESTORE_DAYS}, not {days}"
            )));
        }
        let version = self.head(key, Some(version_id)).await?;
        let (path, sha256) = super::stored_content(&version)?;
        let state = self.backend.restore_status(path).await?;
        if state == RestoreState::NotArchived {
            return Err(Error::invalid_input(format!(
                "{} version {} is not archived: it can be read as it is",
                version.key, version.version_id
            )));
        }
        let mut pending = self.pending_restore(sha256).await?;
        // A restore asked now, or one under way that no one recorded, is
        // recorded as pending; settling it (at once, if the store was that
        // quick) fires `object.restored`.
        let asked = matches!(state, RestoreState::Archived { .. } | RestoreState::InProgress { .. });
        let state = match state {
            RestoreState::Archived { .. } => self.backend.restore(path, days, tier).await?,
            other => other,
        };
        if asked && pending.is_none() {
            let request = RestoreRequest {
                key: version.key.to_string(),
                version_id: version.version_id.to_string(),
                requested_at: Timestamp::now(),
                requested_by: self.actor.clone(),
                days,
                tier: tier.as_str().to_owned(),
            };
            let recorded = Repair::RestoreRequested {
                sha256: sha256.to_owned(),
                request: request.clone(),
            };
            self.catalog.repair(&recorded, &self.actor).await?;
            pending = Some(request);
        }
        let status = RestoreStatus {
            key: version.key.to_string(),
            version_id: version.version_id.clone(),
            state,
            pending,
        };
        self.settle(status, &version).await
    }

    /// Where the content of `key`'s version stands; a pending restore found
    /// done is recorded so (and `object.restored` fired).
    pub async fn restore_status(&self, key: &str, version_id: &VersionId) -> Result<RestoreStatus> {
        let version = self.head(key, Some(version_id)).await?;
        let (path, sha256) = super::stored_content(&version)?;
        let status = RestoreStatus {
            key: version.key.to_string(),
            version_id: version.version_id.clone(),
            state: self.backend.restore_status(path).await?,
            pending: self.pending_restore(sha256).await?,
        };
        self.settle(status, &version).await
    }

    /// Look once at every pending restore, and record those done (firing
    /// `object.restored`): what long-running processes call on a schedule.
    /// Returns the restores seen done.
    pub async fn poll_restores(&self) -> Result<Vec<PendingRestore>> {
        let mut done = Vec::new();
        for pending in self.catalog.pending_restores().await? {
            let state = match self.backend.restore_status(&pending.path).await {
                Ok(state) => state,
                // The next poll tries again.
                Err(e) if e.is_retryable() => continue,
                Err(e) => return Err(e),
            };
            if !state.readable() {
                continue;
            }
            let version_id: VersionId = pending.request.version_id.parse()?;
            let version = self.head(&pending.request.key, Some(&version_id)).await?;
            self.record_restored(&version, &pending.request).await?;
            done.push(pending);
        }
        Ok(done)
    }

    /// Poll the pending restores every `every` in the background, for as
    /// long as the handle lives (`coffer hooks run` does, so that
    /// `object.restored` reaches the hooks). A round that fails waits for the next.
    pub fn spawn_restore_poll(&self, every: Duration) -> SyncHandle {
        let store = self.clone();
        let task = tokio::spawn(async move {
            loop {
                let _ = store.poll_restores().await;
                tokio::time::sleep(every).await;
            }
        });
        SyncHandle { task }
    }

    /// `status`, with a pending restore found done recorded so.
    async fn settle(&self, mut status: RestoreStatus, version: &ObjectVersion) -> Result<RestoreStatus> {
        if let (Some(request), true) = (&status.pending, status.state.readable()) {
            self.record_restored(version, request).await?;
            status.pending = None;
        }
        Ok(status)
    }

    async fn record_restored(&self, version: &ObjectVersion, request: &RestoreRequest) -> Result<()> {
        let done = Repair::Restored {
            version: Box::new(version.clone()),
            request: request.clone(),
        };
        self.catalog.repair(&done, &self.actor).await
    }

    /// The restore pending for the blob `sha256`, if any.
    async fn pending_restore(&self, sha256: &str) -> Result<Option<RestoreRequest>> {
        Ok(self
            .catalog
            .pending_restores()
            .await?
            .into_iter()
            .find(|p| p.sha256 == sha256)
            .map(|p| p.request))
    }
}
