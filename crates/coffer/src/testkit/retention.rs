//! Conformance checks of retention and legal hold (`catalog/plan/protection.rs`):
//! every way a catalog removes a version yields to them, compliance is only
//! ever extended, and a governance bypass works and is audited.

use std::time::Duration;

use super::{Context, Outcome, blob_version, key, marker, unique};
use crate::catalog::{Annotation, AuditQuery, Catalog, NewVersion, ObjectVersion, PrunePolicy};
use crate::error::ErrorKind;
use crate::key::ObjectKey;
use crate::retention::{Protection, Retention, RetentionMode};
use crate::time::Timestamp;

/// Run every retention check against `catalog`. It purges audit rows older
/// than 2000-01-01: run it after checks that count such rows.
pub async fn catalog_retention_suite(catalog: &dyn Catalog) -> Outcome {
    catalog_retention_is_recorded_with_the_version(catalog).await?;
    catalog_protected_versions_are_not_removed(catalog).await?;
    catalog_compliance_is_only_extended(catalog).await?;
    catalog_governance_yields_to_an_audited_bypass(catalog).await?;
    catalog_removal_is_free_once_the_date_passes(catalog).await?;
    catalog_blob_protections_cover_every_sharing_version(catalog).await?;
    catalog_restores_are_pending_until_done(catalog).await?;
    Ok(())
}

fn retention(mode: RetentionMode, from_now: Duration) -> Retention {
    Retention {
        mode,
        until: Timestamp::now().plus(from_now),
    }
}

const DAY: Duration = Duration::from_secs(86_400);

async fn protected_version(
    catalog: &dyn Catalog,
    k: &ObjectKey,
    retention: Option<Retention>,
    legal_hold: bool,
) -> std::result::Result<ObjectVersion, String> {
    let version = NewVersion {
        retention,
        legal_hold,
        ..blob_version(k, &unique("protected"), Some(&unique("blobs/protected")))
    };
    catalog.commit_version(version).await.ctx("commit a protected version")
}

fn refused_as_locked<T>(outcome: crate::error::Result<T>, what: &str) -> Outcome {
    match outcome {
        Err(err) if err.kind() == ErrorKind::RetentionLocked => Ok(()),
        Err(err) => Err(format!(
            "{what}: refused as {:?} ({err}), not as retention locked",
            err.kind()
        )),
        Ok(_) => Err(format!("{what}: was allowed")),
    }
}

/// A version's retention and legal hold come back with it; a delete marker has none.
pub async fn catalog_retention_is_recorded_with_the_version(catalog: &dyn Catalog) -> Outcome {
    let k = key(&unique("ret/recorded"))?;
    let kept = retention(RetentionMode::Compliance, DAY);
    let v = protected_version(catalog, &k, Some(kept), true).await?;
    let read = catalog
        .version(&k, Some(&v.version_id))
        .await
        .ctx("read")?
        .ok_or("version gone")?;
    check!(
        read.retention == Some(kept),
        "retention read back as {:?}",
        read.retention
    );
    check!(read.legal_hold, "the legal hold was not recorded");
    let gone = catalog
        .commit_version(NewVersion {
            retention: Some(kept),
            legal_hold: true,
            ..marker(&k)
        })
        .await
        .ctx("delete marker")?;
    check!(
        gone.retention.is_none() && !gone.legal_hold,
        "a delete marker was given protection"
    );
    let versions = catalog.versions(&k, None).await.ctx("versions")?;
    check!(versions.len() == 2, "a delete marker removed a protected version");
    Ok(())
}

/// delete_version, prune and the audit purge leave protected versions (and their rows).
pub async fn catalog_protected_versions_are_not_removed(catalog: &dyn Catalog) -> Outcome {
    let k = key(&unique("ret/removal"))?;
    let old = Timestamp::parse("1990-06-01T00:00:00Z").map_err(|e| e.to_string())?;
    let compliance = catalog
        .commit_version(NewVersion {
            created_at: old,
            retention: Some(retention(RetentionMode::Compliance, DAY)),
            ..blob_version(&k, &unique("compliance"), Some(&unique("blobs/ret")))
        })
        .await
        .ctx("commit")?;
    let held = protected_version(catalog, &k, None, true).await?;
    let governed = protected_version(catalog, &k, Some(retention(RetentionMode::Governance, DAY)), false).await?;
    let free = protected_version(catalog, &k, None, false).await?;
    let _latest = protected_version(catalog, &k, None, false).await?;
    for (version, bypass, what) in [
        (&compliance, true, "delete of a compliance version with the bypass"),
        (&held, true, "delete of a version under legal hold with the bypass"),
        (&governed, false, "delete of a governance version without the bypass"),
    ] {
        refused_as_locked(
            catalog
                .delete_version(&k, &version.version_id, "conformance", bypass)
                .await,
            what,
        )?;
    }
    let policy = PrunePolicy {
        keep: 1,
        keep_tagged: false,
    };
    let pruned = catalog.prune(&k, policy, "conformance", false).await.ctx("prune")?;
    let removed: Vec<_> = pruned.removed.iter().map(|d| &d.version.version_id).collect();
    check!(removed == [&free.version_id], "the prune removed {removed:?}");
    let mut kept: Vec<_> = pruned.held.iter().map(|h| h.version.version_id.clone()).collect();
    kept.sort();
    let mut expected = vec![
        compliance.version_id.clone(),
        held.version_id.clone(),
        governed.version_id.clone(),
    ];
    expected.sort();
    check!(kept == expected, "the prune held back {kept:?}");
    check!(
        pruned
            .held
            .iter()
            .all(|h| h.reason.contains("retention until") || h.reason.contains("legal hold")),
        "a held version's reason does not name the protection: {:?}",
        pruned.held
    );
    let cutoff = Timestamp::parse("2000-01-01T00:00:00Z").map_err(|e| e.to_string())?;
    catalog
        .purge_audit(cutoff, "conformance", serde_json::Value::Null, false)
        .await
        .ctx("purge")?;
    let rows = catalog
        .audit(&AuditQuery {
            key: Some(k.clone()),
            action: Some("put".into()),
            limit: 10,
            ..AuditQuery::default()
        })
        .await
        .ctx("audit")?;
    check!(
        rows.iter()
            .any(|r| r.version_id.as_deref() == Some(compliance.version_id.as_str())),
        "the audit purge removed the row of a version under compliance retention"
    );
    let left = catalog.versions(&k, None).await.ctx("versions")?;
    check!(left.len() == 4, "{} versions left, 4 expected", left.len());
    Ok(())
}

/// A compliance retention is extended, never shortened, relaxed or removed, even with the bypass.
pub async fn catalog_compliance_is_only_extended(catalog: &dyn Catalog) -> Outcome {
    let k = key(&unique("ret/compliance"))?;
    let first = retention(RetentionMode::Compliance, DAY);
    let v = protected_version(catalog, &k, Some(first), false).await?;
    let set = |retention: Option<Retention>| Annotation::Retention {
        retention,
        bypass_governance: true,
    };
    let longer = Retention {
        until: first.until.plus(DAY),
        ..first
    };
    let extended = catalog
        .annotate(&k, &v.version_id, set(Some(longer)), "conformance")
        .await
        .ctx("extend")?;
    check!(
        extended.retention == Some(longer),
        "extended to {:?}",
        extended.retention
    );
    let shorter = Retention {
        until: first.until,
        ..first
    };
    let relaxed = Retention {
        mode: RetentionMode::Governance,
        ..longer
    };
    for (retention, what) in [
        (Some(shorter), "shortening"),
        (Some(relaxed), "relaxing"),
        (None, "removing"),
    ] {
        refused_as_locked(
            catalog.annotate(&k, &v.version_id, set(retention), "conformance").await,
            &format!("{what} a compliance retention"),
        )?;
    }
    let read = catalog
        .version(&k, Some(&v.version_id))
        .await
        .ctx("read")?
        .ok_or("gone")?;
    check!(read.retention == Some(longer), "a refused change changed the retention");
    Ok(())
}

/// A governance retention is shortened or removed, and its version deleted,
/// only with the bypass, and the audit rows say the bypass was used.
pub async fn catalog_governance_yields_to_an_audited_bypass(catalog: &dyn Catalog) -> Outcome {
    let k = key(&unique("ret/governance"))?;
    let first = retention(RetentionMode::Governance, DAY * 2);
    let v = protected_version(catalog, &k, Some(first), false).await?;
    let _latest = protected_version(catalog, &k, None, false).await?;
    let shorter = retention(RetentionMode::Governance, DAY);
    let shorten = |bypass_governance| Annotation::Retention {
        retention: Some(shorter),
        bypass_governance,
    };
    refused_as_locked(
        catalog.annotate(&k, &v.version_id, shorten(false), "conformance").await,
        "shortening governance without the bypass",
    )?;
    let shortened = catalog
        .annotate(&k, &v.version_id, shorten(true), "conformance")
        .await
        .ctx("shorten with the bypass")?;
    check!(
        shortened.retention == Some(shorter),
        "shortened to {:?}",
        shortened.retention
    );
    catalog
        .delete_version(&k, &v.version_id, "bypasser", true)
        .await
        .ctx("delete with the bypass")?;
    let rows = catalog
        .audit(&AuditQuery {
            key: Some(k.clone()),
            limit: 10,
            ..AuditQuery::default()
        })
        .await
        .ctx("audit")?;
    for action in ["retention", "delete_version"] {
        let row = rows
            .iter()
            .find(|r| r.action == action)
            .ok_or(format!("no {action} row"))?;
        check!(
            row.detail["bypass_governance"] == true,
            "the {action} row does not say the bypass was used: {}",
            row.detail
        );
    }
    check!(
        rows.iter()
            .any(|r| r.action == "delete_version" && r.actor == "bypasser"),
        "the bypass is not audited with its actor"
    );
    Ok(())
}

/// Once the retain-until date has passed, the version may be removed; a
/// legal hold stays until it is cleared.
pub async fn catalog_removal_is_free_once_the_date_passes(catalog: &dyn Catalog) -> Outcome {
    let k = key(&unique("ret/expiry"))?;
    let soon = retention(RetentionMode::Compliance, Duration::from_millis(1_500));
    let v = protected_version(catalog, &k, Some(soon), true).await?;
    let _latest = protected_version(catalog, &k, None, false).await?;
    tokio::time::sleep(Duration::from_millis(1_600)).await;
    refused_as_locked(
        catalog.delete_version(&k, &v.version_id, "conformance", false).await,
        "delete of a version still under legal hold",
    )?;
    catalog
        .annotate(&k, &v.version_id, Annotation::LegalHold(false), "conformance")
        .await
        .ctx("clear the hold")?;
    catalog
        .delete_version(&k, &v.version_id, "conformance", false)
        .await
        .ctx("delete after the date")?;
    Ok(())
}

/// The protections of every version sharing a blob come back together, so
/// that the store's lock on the blob can cover the longest of them.
pub async fn catalog_blob_protections_cover_every_sharing_version(catalog: &dyn Catalog) -> Outcome {
    let content = unique("shared content");
    let path = unique("blobs/shared");
    let later = retention(RetentionMode::Governance, 30 * DAY);
    let sooner = retention(RetentionMode::Compliance, DAY);
    let first = NewVersion {
        retention: Some(sooner),
        ..blob_version(&key(&unique("ret/shared-a"))?, &content, Some(&path))
    };
    let first = catalog.commit_version(first).await.ctx("commit the first")?;
    let second = NewVersion {
        retention: Some(later),
        legal_hold: true,
        ..blob_version(&key(&unique("ret/shared-b"))?, &content, None)
    };
    catalog
        .commit_version(second)
        .await
        .ctx("commit the second, sharing the blob")?;
    let sha256 = first.sha256.clone().unwrap_or_default();
    let mut found = catalog.blob_protections(&sha256).await.ctx("blob_protections")?;
    found.sort_by_key(|p| p.legal_hold);
    let expected = vec![
        Protection {
            retention: Some(sooner),
            legal_hold: false,
        },
        Protection {
            retention: Some(later),
            legal_hold: true,
        },
    ];
    check!(found == expected, "the blob's protections: {found:?}");
    let covering = Protection::covering(found, Timestamp::now());
    check!(
        covering.retention == Some(later) && covering.legal_hold,
        "covering: {covering:?}"
    );
    Ok(())
}

/// A restore asked for is pending (with the blob's path) until it is
/// recorded done, which audits it and fires `object.restored`.
pub async fn catalog_restores_are_pending_until_done(catalog: &dyn Catalog) -> Outcome {
    use crate::catalog::{Repair, RestoreRequest};
    let k = key(&unique("archive/restore"))?;
    let path = unique("blobs/archived");
    let version = catalog
        .commit_version(blob_version(&k, &unique("archived content"), Some(&path)))
        .await
        .ctx("commit")?;
    let sha256 = version.sha256.clone().unwrap_or_default();
    let request = RestoreRequest {
        key: k.to_string(),
        version_id: version.version_id.to_string(),
        requested_at: Timestamp::now(),
        requested_by: "conformance".into(),
        days: 3,
        tier: "bulk".into(),
    };
    let asked = Repair::RestoreRequested {
        sha256: sha256.clone(),
        request: request.clone(),
    };
    catalog.repair(&asked, "conformance").await.ctx("record the request")?;
    let pending = catalog.pending_restores().await.ctx("pending_restores")?;
    let ours: Vec<_> = pending.iter().filter(|p| p.sha256 == sha256).collect();
    check!(
        ours.len() == 1 && ours[0].path == path && ours[0].request == request,
        "pending: {pending:?}"
    );
    let fired = catalog.outbox_counters().await.ctx("counters")?.events_fired;
    let done = Repair::Restored {
        version: Box::new(version.clone()),
        request,
    };
    catalog.repair(&done, "conformance").await.ctx("record it done")?;
    let pending = catalog.pending_restores().await.ctx("pending_restores")?;
    check!(pending.iter().all(|p| p.sha256 != sha256), "still pending: {pending:?}");
    let after = catalog.outbox_counters().await.ctx("counters")?.events_fired;
    check!(after == fired + 1, "events fired: {fired} before, {after} after");
    let query = AuditQuery {
        key: Some(k.clone()),
        limit: 10,
        ..AuditQuery::default()
    };
    let actions: Vec<String> = catalog
        .audit(&query)
        .await
        .ctx("audit")?
        .into_iter()
        .map(|row| row.action)
        .collect();
    check!(
        actions.contains(&"restore".to_owned()) && actions.contains(&"restored".to_owned()),
        "audit actions: {actions:?}"
    );
    Ok(())
}
