//! Retention and legal hold on `Store`: the calls behind `coffer retention`
//! and `coffer legal-hold`, and removing a version for good under them. The
//! rules are the catalog's (see `crate::retention`); these check the request
//! and record it, then mirror it onto the store's own guard where it has
//! one (S3 Object Lock), so that a raw client of the store cannot undo it.

use super::Store;
use crate::catalog::{Annotation, ObjectVersion};
use crate::error::{Error, Result};
use crate::key::ObjectKey;
use crate::layout;
use crate::retention::{Protection, Retention};
use crate::time::Timestamp;
use crate::version::VersionId;

/// Versions read at once when locks are set again.
const RELOCK_PAGE: usize = 1000;

impl Store {
    /// Remove one version of `key` for good, and its bytes once no version
    /// uses them. Refused (`RetentionLocked`) while a legal hold or a
    /// retention in force protects the version.
    pub async fn delete_version(&self, key: &str, version_id: &VersionId) -> Result<ObjectVersion> {
        self.remove_version(key, version_id, false).await
    }

    /// [`delete_version`](Self::delete_version), bypassing a governance
    /// retention in force (audited as such); a compliance retention or a
    /// legal hold still refuses.
    pub async fn delete_version_bypassing_governance(
        &self,
        key: &str,
        version_id: &VersionId,
    ) -> Result<ObjectVersion> {
        self.remove_version(key, version_id, true).await
    }

    async fn remove_version(
        &self,
        key: &str,
        version_id: &VersionId,
        bypass_governance: bool,
    ) -> Result<ObjectVersion> {
        let key = ObjectKey::new(key)?;
        let deleted = self
            .catalog
            .delete_version(&key, version_id, &self.actor, bypass_governance)
            .await?;
        self.events_written(&key).await;
        self.remove_leftovers(std::slice::from_ref(&deleted)).await;
        Ok(deleted.version)
    }

    /// Give a version `retention`: extending it (or making governance
    /// compliance) is always allowed; shortening or relaxing a governance
    /// retention in force needs `bypass_governance` (audited as such), and a
    /// compliance one cannot be shortened by anyone (`RetentionLocked`).
    pub async fn set_retention(
        &self,
        key: &str,
        version_id: &VersionId,
        retention: Retention,
        bypass_governance: bool,
    ) -> Result<ObjectVersion> {
        let key = ObjectKey::new(key)?;
        retention.check_requested(Timestamp::now())?;
        let change = Annotation::Retention {
            retention: Some(retention),
            bypass_governance,
        };
        let version = self.annotate(&key, version_id, change).await?;
        self.guard_explicitly(version).await
    }

    /// Remove a version's retention: free once its date has passed; one in
    /// force only in governance mode with `bypass_governance`.
    pub async fn remove_retention(
        &self,
        key: &str,
        version_id: &VersionId,
        bypass_governance: bool,
    ) -> Result<ObjectVersion> {
        let key = ObjectKey::new(key)?;
        let change = Annotation::Retention {
            retention: None,
            bypass_governance,
        };
        let version = self.annotate(&key, version_id, change).await?;
        self.guard_explicitly(version).await
    }

    /// Set (`on`) or clear a version's legal hold; while it is on nothing
    /// removes the version, whatever its retention says.
    pub async fn set_legal_hold(&self, key: &str, version_id: &VersionId, on: bool) -> Result<ObjectVersion> {
        let key = ObjectKey::new(key)?;
        let version = self.annotate(&key, version_id, Annotation::LegalHold(on)).await?;
        self.guard_explicitly(version).await
    }

    /// The store's own guard against removing locked objects (`S3 Object
    /// Lock on bucket b`), or `None` where the protection is coffer's alone.
    pub async fn native_guard(&self) -> Result<Option<String>> {
        self.backend.native_guard().await
    }

    /// Mirror the catalog's protection of `version` onto the store's guard:
    /// its manifest is locked as the version is, its blob as long as the
    /// longest protection of the versions sharing it. Nothing where the store
    /// has no guard. Returns whether a lock had to be changed.
    pub(super) async fn guard(&self, version: &ObjectVersion) -> Result<bool> {
        if !self.has_guard().await? {
            return Ok(false);
        }
        // Objects are locked where they are: the hot store's go there first.
        self.flush_hot().await?;
        self.lock_objects(version).await
    }

    /// Whether the store may have a guard of its own.
    pub(super) async fn has_guard(&self) -> Result<bool> {
        match self.backend.native_guard().await {
            Ok(guard) => Ok(guard.is_some()),
            // A store that does not answer may still have a guard: a spool
            // keeps the lock until the object reaches the store.
            Err(e) if e.is_retryable() => Ok(true),
            Err(e) => Err(e),
        }
    }

    /// [`guard`](Self::guard)'s locks, on a store with a guard whose
    /// objects of `version` are there.
    pub(super) async fn lock_objects(&self, version: &ObjectVersion) -> Result<bool> {
        let manifest = layout::manifest_path(&version.key, &version.version_id);
        let mut changed = self.backend.lock(&manifest, &version.protection()).await?;
        if let (Some(sha256), Some(blob)) = (&version.sha256, &version.blob_path) {
            let sharing = self.catalog.blob_protections(sha256).await?;
            let covering = Protection::covering(sharing, crate::time::Timestamp::now());
            changed |= self.backend.lock(blob, &covering).await?;
        }
        Ok(changed)
    }

    /// Set again the store's locks of every protected version under
    /// `prefix` that lacks them (`verify --repair`): the versions whose
    /// locks had to be changed. Nothing where the store has no guard.
    pub(super) async fn relock_protected(&self, prefix: &str) -> Result<Vec<ObjectVersion>> {
        let mut relocked = Vec::new();
        if self.backend.native_guard().await?.is_none() {
            return Ok(relocked);
        }
        let now = crate::time::Timestamp::now();
        let mut after: Option<(String, String)> = None;
        loop {
            let cursor = after.as_ref().map(|(k, v)| (k.as_str(), v.as_str()));
            let page = self.catalog.versions_page(prefix, cursor, RELOCK_PAGE, false).await?;
            for listed in page.iter().filter(|v| v.protection().is_protected(now)) {
                // A page carries no blob path: read the whole version.
                let Some(version) = self.catalog.version(&listed.key, Some(&listed.version_id)).await? else {
                    continue;
                };
                if self.guard(&version).await? {
                    relocked.push(version);
                }
            }
            match page.last() {
                Some(last) if page.len() == RELOCK_PAGE => {
                    after = Some((last.key.to_string(), last.version_id.to_string()));
                }
                _ => return Ok(relocked),
            }
        }
    }

    /// [`guard`](Self::guard) after a protection command: the catalog holds
    /// the change either way; a lock the store refused is this call's error.
    async fn guard_explicitly(&self, version: ObjectVersion) -> Result<ObjectVersion> {
        match self.guard(&version).await {
            Ok(_) => Ok(version),
            Err(e) => Err(Error::new(
                e.kind(),
                format!(
                    "the catalog holds the change, but the store's lock failed (`coffer verify --repair` sets it again): {}",
                    e.message()
                ),
            )),
        }
    }
}
