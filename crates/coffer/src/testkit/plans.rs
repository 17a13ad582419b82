//! Conformance checks of the catalog's plans (`catalog/plan.rs`): that each
//! engine executes what a plan decides, for the cases the plans exist for.

use super::{Context, Outcome, blob_version, key, marker, unique};
use crate::catalog::{Annotation, AuditQuery, Catalog, NewVersion, Precondition, PrunePolicy, SearchQuery};
use crate::key::Tags;

/// Run every plan check against `catalog`.
pub async fn catalog_plan_suite(catalog: &dyn Catalog) -> Outcome {
    catalog_commit_over_a_delete_marker(catalog).await?;
    catalog_prune_keeps_tagged_versions_and_the_latest(catalog).await?;
    Ok(())
}

/// A commit on a key whose latest is a delete marker: "must not exist" holds,
/// the version becomes the latest, is found by search, and the key lists again.
pub async fn catalog_commit_over_a_delete_marker(catalog: &dyn Catalog) -> Outcome {
    let k = key(&unique("plan/revive"))?;
    let first = catalog
        .commit_version(blob_version(&k, &unique("first"), Some(&unique("blobs/first"))))
        .await
        .ctx("commit the first version")?;
    let gone = catalog.commit_version(marker(&k)).await.ctx("commit the marker")?;
    let revived = NewVersion {
        precondition: Precondition::IfNoneMatch,
        ..blob_version(&k, &unique("again"), Some(&unique("blobs/again")))
    };
    let revived = catalog
        .commit_version(revived)
        .await
        .ctx("commit over the marker with must-not-exist")?;
    check!(revived.is_latest, "the version over a delete marker is not the latest");
    let latest = catalog.version(&k, None).await.ctx("latest")?;
    check!(
        latest.as_ref().map(|v| &v.version_id) == Some(&revived.version_id),
        "latest is {latest:?}"
    );
    let ids: Vec<_> = catalog
        .versions(&k, None)
        .await
        .ctx("versions")?
        .into_iter()
        .map(|v| v.version_id)
        .collect();
    check!(
        ids == [revived.version_id.clone(), gone.version_id, first.version_id],
        "versions newest first: {ids:?}"
    );
    // Now a live version is there again: must-not-exist is refused.
    let refused = NewVersion {
        precondition: Precondition::IfNoneMatch,
        ..blob_version(&k, &unique("third"), Some(&unique("blobs/third")))
    };
    check!(
        catalog.commit_version(refused).await.is_err(),
        "must-not-exist passed over a live version"
    );
    let found = catalog
        .search(&SearchQuery {
            prefix: Some(k.to_string()),
            limit: 10,
            ..SearchQuery::default()
        })
        .await
        .ctx("search")?;
    let hits: Vec<_> = found.hits.iter().map(|h| &h.version.version_id).collect();
    check!(hits == [&revived.version_id], "search finds {hits:?}");
    Ok(())
}

/// A prune that keeps one version and tagged ones: the tagged version and the
/// latest stay, the rest go, each audited; a dry run reports the same and removes nothing.
pub async fn catalog_prune_keeps_tagged_versions_and_the_latest(catalog: &dyn Catalog) -> Outcome {
    let k = key(&unique("plan/prune"))?;
    let mut ids = Vec::new();
    for n in 0..4 {
        let version = blob_version(&k, &unique(&format!("prune{n}")), Some(&unique("blobs/prune")));
        ids.push(catalog.commit_version(version).await.ctx("commit")?.version_id);
    }
    let tags = Annotation::Tags {
        set: Tags::from([("keep".to_owned(), "yes".to_owned())]),
        remove: Vec::new(),
    };
    catalog.annotate(&k, &ids[1], tags, "conformance").await.ctx("tag")?;
    let policy = PrunePolicy {
        keep: 1,
        keep_tagged: true,
    };
    let removed_ids = |removed: Vec<crate::catalog::DeletedVersion>| {
        let mut removed: Vec<_> = removed.into_iter().map(|d| d.version.version_id).collect();
        removed.sort();
        removed
    };
    let expected = vec![ids[0].clone(), ids[2].clone()];
    let would = catalog.prune(&k, policy, "conformance", true).await.ctx("dry run")?;
    check!(
        removed_ids(would.removed) == expected,
        "a dry run would remove other versions"
    );
    check!(
        catalog.versions(&k, None).await.ctx("versions")?.len() == 4,
        "a dry run removed versions"
    );
    let removed = catalog.prune(&k, policy, "conformance", false).await.ctx("prune")?;
    check!(
        removed_ids(removed.removed) == expected,
        "the prune removed other versions"
    );
    let left: Vec<_> = catalog
        .versions(&k, None)
        .await
        .ctx("versions")?
        .into_iter()
        .map(|v| v.version_id)
        .collect();
    check!(
        left == [ids[3].clone(), ids[1].clone()],
        "left after the prune: {left:?}"
    );
    let audited = catalog
        .audit(&AuditQuery {
            key: Some(k.clone()),
            action: Some("prune".into()),
            limit: 10,
            ..AuditQuery::default()
        })
        .await
        .ctx("audit")?;
    check!(audited.len() == 2, "{} prune rows audited", audited.len());
    Ok(())
}
