//! Retention and legal hold on `Store`: the calls behind `coffer retention`
//! and `coffer legal-hold`, and removing a version for good under them. The
//! rules are the catalog's (see `crate::retention`); these check the request
//! and record it.

use super::Store;
use crate::catalog::{Annotation, ObjectVersion};
use crate::error::Result;
use crate::key::ObjectKey;
use crate::retention::Retention;
use crate::time::Timestamp;
use crate::version::VersionId;

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
        self.annotate(&key, version_id, change).await
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
        self.annotate(&key, version_id, change).await
    }

    /// Set (`on`) or clear a version's legal hold; while it is on nothing
    /// removes the version, whatever its retention says.
    pub async fn set_legal_hold(&self, key: &str, version_id: &VersionId, on: bool) -> Result<ObjectVersion> {
        let key = ObjectKey::new(key)?;
        self.annotate(&key, version_id, Annotation::LegalHold(on)).await
    }
}
