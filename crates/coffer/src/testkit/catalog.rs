//! The catalog suite: versions, blobs, preconditions, listings and audit on
//! any [`Catalog`]; [`catalog_suite`] also runs the search, outbox, plan and
//! retention checks.

use super::outbox::catalog_outbox;
use super::plans::catalog_plan_suite;
use super::retention::catalog_retention_suite;
use super::search::catalog_search;
use super::{Context, Outcome, blob_version, key, marker, unique};
use crate::catalog::{AuditQuery, Catalog, KeyQuery, NewVersion, Precondition};
use crate::error::{ErrorKind, Result};
use crate::time::Timestamp;
use crate::version::VersionId;

/// Run every catalog check against `catalog` (keys are unique per run, so a
/// catalog can be shared with other checks).
pub async fn catalog_suite(catalog: &dyn Catalog) -> Outcome {
    catalog_versions_and_latest(catalog).await?;
    catalog_blob_reference_counts(catalog).await?;
    catalog_preconditions(catalog).await?;
    catalog_delete_version_moves_latest(catalog).await?;
    catalog_list_latest_pages(catalog).await?;
    catalog_versions_pages(catalog).await?;
    catalog_blob_placements(catalog).await?;
    catalog_concurrent_commits(catalog).await?;
    catalog_audit_pages_by_id(catalog).await?;
    catalog_record_read(catalog).await?;
    catalog_purge_audit(catalog).await?;
    catalog_tokens(catalog).await?;
    catalog_search(catalog).await?;
    catalog_outbox(catalog).await?;
    catalog_plan_suite(catalog).await?;
    // Last: it purges old audit rows, which checks above count.
    catalog_retention_suite(catalog).await?;
    let problems = catalog.check_consistency().await.ctx("check_consistency")?;
    check!(problems.is_empty(), "consistency problems: {problems:?}");
    Ok(())
}

/// `versions_page` walks every version under a prefix (markers included),
/// in (key, version id) order, a page at a time, each once.
pub async fn catalog_versions_pages(catalog: &dyn Catalog) -> Outcome {
    let root = unique("cat/pages");
    let mut expected = Vec::new();
    for name in ["a", "b/c", "b/d"] {
        let k = key(&format!("{root}/{name}"))?;
        let mut ids = Vec::new();
        for n in 0..3 {
            let version = catalog
                .commit_version(blob_version(
                    &k,
                    &unique(&format!("page{n}")),
                    Some(&unique("blobs/page")),
                ))
                .await
                .ctx("commit")?;
            ids.push(version.version_id);
        }
        ids.push(catalog.commit_version(marker(&k)).await.ctx("marker")?.version_id);
        expected.extend(ids.into_iter().map(|id| (k.to_string(), id)));
    }
    let other = key(&format!("{root}x/outside"))?;
    catalog
        .commit_version(blob_version(&other, "outside", Some(&unique("blobs/page"))))
        .await
        .ctx("commit outside")?;
    let prefix = format!("{root}/");
    let mut seen = Vec::new();
    let mut after: Option<(String, String)> = None;
    loop {
        let cursor = after.as_ref().map(|(k, v)| (k.as_str(), v.as_str()));
        let page = catalog
            .versions_page(&prefix, cursor, 5, true)
            .await
            .ctx("versions_page")?;
        seen.extend(page.iter().map(|v| (v.key.to_string(), v.version_id.clone())));
        match page.last() {
            Some(last) if page.len() == 5 => after = Some((last.key.to_string(), last.version_id.to_string())),
            _ => break,
        }
    }
    check!(seen == expected, "pages gave {seen:?}, expected {expected:?}");
    Ok(())
}

/// Where content was moved comes back for the blobs asked about, and only
/// for those that were moved.
pub async fn catalog_blob_placements(catalog: &dyn Catalog) -> Outcome {
    use crate::catalog::Repair;
    let moved = catalog
        .commit_version(blob_version(
            &key(&unique("cat/placed"))?,
            &unique("placed"),
            Some(&unique("blobs/p")),
        ))
        .await
        .ctx("commit")?;
    let stayed = catalog
        .commit_version(blob_version(
            &key(&unique("cat/stayed"))?,
            &unique("stayed"),
            Some(&unique("blobs/s")),
        ))
        .await
        .ctx("commit")?;
    let placed = Repair::Placed {
        action: "lifecycle",
        sha256: moved.sha256.clone().unwrap_or_default(),
        placement: Some("GLACIER".into()),
        version: (moved.key.clone(), moved.version_id.clone()),
        detail: serde_json::json!({}),
    };
    catalog
        .repair(&placed, "conformance")
        .await
        .ctx("record the placement")?;
    let asked: Vec<String> = [&moved, &stayed].iter().filter_map(|v| v.sha256.clone()).collect();
    let found = catalog.blob_placements(&asked).await.ctx("blob_placements")?;
    let expected = std::collections::HashMap::from([(asked[0].clone(), "GLACIER".to_owned())]);
    check!(found == expected, "placements: {found:?}");
    Ok(())
}

/// Versions are listed newest first, the newest is latest, delete markers hide nothing from `versions`.
pub async fn catalog_versions_and_latest(catalog: &dyn Catalog) -> Outcome {
    let k = key(&unique("cat/versions"))?;
    let path = unique("blobs/v1");
    let v1 = catalog
        .commit_version(blob_version(&k, &unique("one"), Some(&path)))
        .await
        .ctx("commit v1")?;
    check!(
        v1.is_latest && v1.blob_path.as_deref() == Some(path.as_str()),
        "v1 not latest or wrong blob path"
    );
    let v2 = catalog
        .commit_version(blob_version(&k, "two", Some(&unique("blobs/v2"))))
        .await
        .ctx("commit v2")?;
    let m = catalog.commit_version(marker(&k)).await.ctx("commit marker")?;
    let all = catalog.versions(&k, None).await.ctx("versions")?;
    let ids: Vec<&VersionId> = all.iter().map(|v| &v.version_id).collect();
    check!(
        ids == vec![&m.version_id, &v2.version_id, &v1.version_id],
        "versions not newest first: {ids:?}"
    );
    check!(
        all[0].is_latest && all[0].is_delete_marker && !all[1].is_latest,
        "latest flags wrong"
    );
    let latest = catalog.version(&k, None).await.ctx("latest")?;
    check!(
        latest.is_some_and(|l| l.is_delete_marker),
        "latest is not the delete marker"
    );
    let old = catalog.version(&k, Some(&v1.version_id)).await.ctx("version v1")?;
    check!(
        old.as_ref().map(|v| v.metadata.get("origin").map(String::as_str)) == Some(Some("conformance")),
        "metadata lost"
    );
    let audit = catalog
        .audit(&AuditQuery {
            key: Some(k.clone()),
            limit: 10,
            ..AuditQuery::default()
        })
        .await
        .ctx("audit")?;
    let actions: Vec<&str> = audit.iter().map(|a| a.action.as_str()).collect();
    check!(actions == ["delete", "put", "put"], "audit rows are {actions:?}");
    Ok(())
}

/// Identical content is one blob with a count; the blob goes when the last reference goes.
pub async fn catalog_blob_reference_counts(catalog: &dyn Catalog) -> Outcome {
    let content = unique("shared content");
    let (a, b) = (key(&unique("cat/refs-a"))?, key(&unique("cat/refs-b"))?);
    let first_path = unique("blobs/first");
    let va = catalog
        .commit_version(blob_version(&a, &content, Some(&first_path)))
        .await
        .ctx("commit a")?;
    // A second writer of the same content offers its own copy; the catalog keeps the first.
    let vb = catalog
        .commit_version(blob_version(&b, &content, Some(&unique("blobs/second"))))
        .await
        .ctx("commit b")?;
    check!(
        vb.blob_path.as_deref() == Some(first_path.as_str()),
        "identical content got a second blob"
    );
    let sha = va.sha256.clone().unwrap_or_default();
    let blob = catalog.blob(&sha).await.ctx("blob")?;
    check!(
        blob.as_ref().map(|b| b.refcount) == Some(2),
        "refcount is {:?}, expected 2",
        blob.map(|b| b.refcount)
    );
    // A copy references the existing blob without offering bytes.
    let c = key(&unique("cat/refs-c"))?;
    let vc = catalog
        .commit_version(blob_version(&c, &content, None))
        .await
        .ctx("commit copy")?;
    check!(
        vc.blob_path.as_deref() == Some(first_path.as_str()),
        "copy got another blob"
    );
    for (k, v) in [(&a, &va), (&b, &vb)] {
        let deleted = catalog
            .delete_version(k, &v.version_id, "conformance", false)
            .await
            .ctx("delete version")?;
        check!(
            deleted.unreferenced_blob.is_none(),
            "blob released while still referenced"
        );
    }
    let last = catalog
        .delete_version(&c, &vc.version_id, "conformance", false)
        .await
        .ctx("delete last")?;
    check!(
        last.unreferenced_blob.as_deref() == Some(first_path.as_str()),
        "last reference did not release the blob"
    );
    check!(
        catalog.blob(&sha).await.ctx("blob after")?.is_none(),
        "blob row outlived its references"
    );
    // Content no longer stored cannot be referenced without offering bytes.
    match catalog.commit_version(blob_version(&c, &content, None)).await {
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        other => Err(format!(
            "referencing a released blob gave {:?}",
            other.map(|v| v.version_id)
        )),
    }
}

/// If-Match, If-None-Match and MustExist are enforced, and a failed one changes nothing.
pub async fn catalog_preconditions(catalog: &dyn Catalog) -> Outcome {
    let k = key(&unique("cat/cond"))?;
    let mut create = blob_version(&k, "v1", Some(&unique("blobs/c1")));
    create.precondition = Precondition::IfNoneMatch;
    let v1 = catalog
        .commit_version(create.clone())
        .await
        .ctx("create if none match")?;
    create.version_id = VersionId::generate();
    let err = catalog.commit_version(create).await.err();
    check!(
        err.as_ref().map(|e| e.kind()) == Some(ErrorKind::Conflict),
        "if-none-match on an existing key: {err:?}"
    );
    let mut update = blob_version(&k, "v2", Some(&unique("blobs/c2")));
    update.precondition = Precondition::IfMatch("\"wrong\"".into());
    let err = catalog.commit_version(update.clone()).await.err();
    check!(
        err.as_ref().map(|e| e.kind()) == Some(ErrorKind::Conflict),
        "if-match with a wrong etag: {err:?}"
    );
    update.precondition = Precondition::IfMatch(format!("\"{}\"", v1.etag.clone().unwrap_or_default()));
    catalog
        .commit_version(update)
        .await
        .ctx("if-match with the right etag")?;
    check!(
        catalog.versions(&k, None).await.ctx("versions")?.len() == 2,
        "failed preconditions left versions behind"
    );
    let missing = key(&unique("cat/never"))?;
    let err = catalog.commit_version(marker(&missing)).await.err();
    check!(
        err.as_ref().map(|e| e.kind()) == Some(ErrorKind::NotFound),
        "deleting a missing key: {err:?}"
    );
    check!(
        catalog.versions(&missing, None).await.ctx("versions")?.is_empty(),
        "a failed delete left a marker"
    );
    Ok(())
}

/// Removing the latest version makes the next newest the latest; removing the last removes the key.
pub async fn catalog_delete_version_moves_latest(catalog: &dyn Catalog) -> Outcome {
    let k = key(&unique("cat/delete-version"))?;
    let v1 = catalog
        .commit_version(blob_version(&k, &unique("dv1"), Some(&unique("blobs/d1"))))
        .await
        .ctx("v1")?;
    let v2 = catalog
        .commit_version(blob_version(&k, &unique("dv2"), Some(&unique("blobs/d2"))))
        .await
        .ctx("v2")?;
    catalog
        .delete_version(&k, &v2.version_id, "conformance", false)
        .await
        .ctx("delete v2")?;
    let latest = catalog.version(&k, None).await.ctx("latest")?;
    check!(
        latest.map(|v| v.version_id) == Some(v1.version_id.clone()),
        "latest did not move back to v1"
    );
    let err = catalog
        .delete_version(&k, &v2.version_id, "conformance", false)
        .await
        .err();
    check!(
        err.as_ref().map(|e| e.kind()) == Some(ErrorKind::NotFound),
        "deleting a deleted version: {err:?}"
    );
    catalog
        .delete_version(&k, &v1.version_id, "conformance", false)
        .await
        .ctx("delete v1")?;
    check!(
        catalog.version(&k, None).await.ctx("latest")?.is_none(),
        "a key without versions has a latest"
    );
    Ok(())
}

/// `list_latest` pages in key order, honours prefix and bounds, and skips deleted keys.
pub async fn catalog_list_latest_pages(catalog: &dyn Catalog) -> Outcome {
    let root = unique("cat/list");
    let names = ["a", "b/1", "b/2", "c", "d"];
    for name in names {
        let k = key(&format!("{root}/{name}"))?;
        catalog
            .commit_version(blob_version(&k, name, Some(&unique("blobs/l"))))
            .await
            .ctx("commit")?;
    }
    catalog
        .commit_version(marker(&key(&format!("{root}/c"))?))
        .await
        .ctx("delete c")?;
    let prefix = format!("{root}/");
    let page = |start_after: Option<String>, start_at: Option<String>, limit| KeyQuery {
        prefix: prefix.clone(),
        start_after,
        start_at,
        limit,
        ..KeyQuery::default()
    };
    let names_of = |versions: Vec<crate::ObjectVersion>| -> Vec<String> {
        versions
            .into_iter()
            .map(|v| v.key.as_str()[prefix.len()..].to_owned())
            .collect()
    };
    let all = names_of(catalog.list_latest(&page(None, None, 100)).await.ctx("list")?);
    check!(all == ["a", "b/1", "b/2", "d"], "listed {all:?}");
    let first = names_of(catalog.list_latest(&page(None, None, 2)).await.ctx("list")?);
    check!(first == ["a", "b/1"], "first page {first:?}");
    let second = names_of(
        catalog
            .list_latest(&page(Some(format!("{prefix}b/1")), None, 2))
            .await
            .ctx("list")?,
    );
    check!(second == ["b/2", "d"], "second page {second:?}");
    let from_c = names_of(
        catalog
            .list_latest(&page(None, Some(format!("{prefix}c")), 10))
            .await
            .ctx("list")?,
    );
    check!(from_c == ["d"], "start_at page {from_c:?}");
    Ok(())
}

/// Many concurrent commits to one key all land, and the greatest id is latest.
pub async fn catalog_concurrent_commits(catalog: &dyn Catalog) -> Outcome {
    let k = key(&unique("cat/concurrent"))?;
    let commits = (0..50).map(|i| {
        let version = blob_version(&k, &format!("concurrent {i}"), Some(&format!("blobs/concurrent-{i}")));
        catalog.commit_version(version)
    });
    let results = futures::future::join_all(commits).await;
    let committed: Vec<_> = results.into_iter().collect::<Result<_>>().ctx("concurrent commit")?;
    let max = committed.iter().map(|v| v.version_id.clone()).max();
    let latest = catalog.version(&k, None).await.ctx("latest")?.map(|v| v.version_id);
    check!(latest == max, "latest {latest:?} is not the greatest id {max:?}");
    check!(
        catalog.versions(&k, None).await.ctx("versions")?.len() == 50,
        "lost concurrent versions"
    );
    Ok(())
}

/// Audit rows page by id in either order: `after_id` continues where a page ended.
pub async fn catalog_audit_pages_by_id(catalog: &dyn Catalog) -> Outcome {
    let k = key(&unique("cat/audit-pages"))?;
    for i in 0..5 {
        catalog
            .commit_version(blob_version(&k, &format!("page {i}"), Some(&unique("blobs/p"))))
            .await
            .ctx("commit")?;
    }
    let query = |after_id, oldest_first, limit| AuditQuery {
        key: Some(k.clone()),
        after_id,
        oldest_first,
        limit,
        ..AuditQuery::default()
    };
    let all: Vec<i64> = catalog
        .audit(&query(None, true, 10))
        .await
        .ctx("audit oldest first")?
        .iter()
        .map(|row| row.id)
        .collect();
    check!(
        all.len() == 5 && all.windows(2).all(|w| w[0] < w[1]),
        "oldest first gave ids {all:?}"
    );
    let mut paged = Vec::new();
    let mut after_id = None;
    loop {
        let page = catalog.audit(&query(after_id, true, 2)).await.ctx("audit page")?;
        check!(page.len() <= 2, "a page of 2 held {} rows", page.len());
        let Some(last) = page.last() else { break };
        after_id = Some(last.id);
        paged.extend(page.iter().map(|row| row.id));
    }
    check!(paged == all, "oldest-first pages gave {paged:?}, expected {all:?}");
    let older: Vec<i64> = catalog
        .audit(&query(Some(all[3]), false, 2))
        .await
        .ctx("audit newest first after an id")?
        .iter()
        .map(|row| row.id)
        .collect();
    check!(
        older == [all[2], all[1]],
        "newest first after {} gave {older:?}",
        all[3]
    );
    Ok(())
}

/// `record_read` appends a `get` row naming the key, version, actor and detail.
pub async fn catalog_record_read(catalog: &dyn Catalog) -> Outcome {
    let k = key(&unique("cat/read"))?;
    let v = catalog
        .commit_version(blob_version(&k, &unique("read me"), Some(&unique("blobs/r"))))
        .await
        .ctx("commit")?;
    let reader = unique("reader");
    let before = Timestamp::now();
    catalog
        .record_read(&k, &v.version_id, &reader, serde_json::json!({ "size": v.size }))
        .await
        .ctx("record_read")?;
    let rows = catalog
        .audit(&AuditQuery {
            key: Some(k.clone()),
            action: Some("get".into()),
            limit: 10,
            ..AuditQuery::default()
        })
        .await
        .ctx("audit")?;
    let [row] = rows.as_slice() else {
        return Err(format!("expected one get row, found {}", rows.len()));
    };
    check!(
        row.actor == reader && row.version_id.as_deref() == Some(v.version_id.as_str()),
        "get row names {} and {:?}",
        row.actor,
        row.version_id
    );
    check!(row.detail["size"] == v.size, "get row detail is {}", row.detail);
    check!(row.at >= before, "get row at {} is before the read", row.at);
    Ok(())
}

/// Tokens: made with an audit row, found by name, secret hash and access
/// key; a taken name is refused without a write; revoking keeps the row,
/// twice changes nothing, and an unknown name is `NotFound`.
pub async fn catalog_tokens(catalog: &dyn Catalog) -> Outcome {
    use crate::access::{Scope, TokenRecord};
    use crate::catalog::{TokenChange, TokenLookup};
    let name = unique("tok").replace('/', "-");
    let access_key = unique("CFKEY");
    let token = TokenRecord {
        name: name.clone(),
        scope: Scope::Write,
        prefix: "invoices/".into(),
        access_key: Some(access_key.clone()),
        created_at: Timestamp::now(),
        created_by: "admin".into(),
        expires_at: Some(Timestamp::from_micros(Timestamp::now().as_micros() + 3_600_000_000)),
        revoked_at: None,
    };
    let hash = unique("hash");
    let create = |token: TokenRecord, secret_sha256: String| TokenChange::Create { token, secret_sha256 };
    catalog
        .token_change(create(token.clone(), hash.clone()))
        .await
        .ctx("create")?;
    for lookup in [
        TokenLookup::Name(&name),
        TokenLookup::SecretSha256(&hash),
        TokenLookup::AccessKey(&access_key),
    ] {
        let found = catalog.token(lookup).await.ctx("token")?;
        check!(found.as_ref() == Some(&token), "{lookup:?} found {found:?}");
    }
    // One that never expires and has no access key (NULLs in both engines).
    let plain = TokenRecord {
        name: format!("{name}-plain"),
        access_key: None,
        expires_at: None,
        ..token.clone()
    };
    catalog
        .token_change(create(plain.clone(), unique("hash")))
        .await
        .ctx("create plain")?;
    let found = catalog.token(TokenLookup::Name(&plain.name)).await.ctx("token")?;
    check!(found.as_ref() == Some(&plain), "the plain token reads {found:?}");
    check!(
        catalog
            .token(TokenLookup::SecretSha256("nothing"))
            .await
            .ctx("token")?
            .is_none(),
        "an unknown secret found a token"
    );
    let again = catalog.token_change(create(token.clone(), unique("other"))).await;
    check!(
        again.as_ref().is_err_and(|e| e.kind() == ErrorKind::Conflict),
        "a second token of one name: {again:?}"
    );
    let at = Timestamp::now();
    let revoke = |name: &str| TokenChange::Revoke {
        name: name.to_owned(),
        at,
        actor: "admin".into(),
    };
    catalog.token_change(revoke(&name)).await.ctx("revoke")?;
    catalog.token_change(revoke(&name)).await.ctx("revoke again")?;
    let revoked = catalog.token(TokenLookup::Name(&name)).await.ctx("token")?;
    check!(
        revoked.as_ref().and_then(|t| t.revoked_at) == Some(at),
        "revoked token reads {revoked:?}"
    );
    let missing = catalog.token_change(revoke("no-such-token")).await;
    check!(
        missing.as_ref().is_err_and(|e| e.kind() == ErrorKind::NotFound),
        "revoking an unknown token: {missing:?}"
    );
    check!(
        catalog.tokens().await.ctx("tokens")?.iter().any(|t| t.name == name),
        "the listing misses the token"
    );
    let rows = catalog
        .audit(&AuditQuery {
            actor: Some("admin".into()),
            limit: 1000,
            ..AuditQuery::default()
        })
        .await
        .ctx("audit")?;
    let actions: Vec<&str> = rows
        .iter()
        .filter(|row| row.detail["token"] == name.as_str() || row.detail["token"] == plain.name.as_str())
        .map(|row| row.action.as_str())
        .collect();
    check!(
        actions == ["token_revoke", "token_create", "token_create"],
        "audit rows {actions:?}"
    );
    Ok(())
}

/// `purge_audit` removes rows older than its cutoff and keeps newer ones; it
/// records an `audit_purge` row (even when it finds nothing), which survives;
/// a dry run counts and changes nothing.
///
/// Old rows are made by committing versions with an old `created_at` (a
/// commit's audit row carries it); the cutoff lies before any time the other
/// checks use, so a shared catalog only loses rows this check wrote.
pub async fn catalog_purge_audit(catalog: &dyn Catalog) -> Outcome {
    let time = |text: &str| Timestamp::parse(text).map_err(|e| e.to_string());
    let (old, cutoff, newer) = (
        time("1990-06-01T00:00:00Z")?,
        time("2000-01-01T00:00:00Z")?,
        time("2010-06-01T00:00:00Z")?,
    );
    let k = key(&unique("cat/purge"))?;
    for created_at in [old, newer] {
        let version = NewVersion {
            created_at,
            ..blob_version(&k, &unique("purge"), Some(&unique("blobs/purge")))
        };
        catalog.commit_version(version).await.ctx("commit")?;
    }
    let times_of_key = || async {
        let rows = catalog
            .audit(&AuditQuery {
                key: Some(k.clone()),
                oldest_first: true,
                limit: 10,
                ..AuditQuery::default()
            })
            .await
            .ctx("audit of the key")?;
        Ok::<_, String>(rows.iter().map(|row| row.at).collect::<Vec<_>>())
    };
    check!(
        times_of_key().await? == [old, newer],
        "audit rows carry the commits' times"
    );
    let purger = unique("purger");
    let purges = || async {
        catalog
            .audit(&AuditQuery {
                actor: Some(purger.clone()),
                action: Some("audit_purge".into()),
                oldest_first: true,
                limit: 10,
                ..AuditQuery::default()
            })
            .await
            .ctx("audit of the purges")
    };
    let detail = serde_json::json!({ "retention": "conformance" });

    let would = catalog
        .purge_audit(cutoff, &purger, detail.clone(), true)
        .await
        .ctx("dry-run purge")?;
    check!(would >= 1, "a dry run counted {would} rows older than {cutoff}");
    check!(times_of_key().await? == [old, newer], "a dry run removed rows");
    check!(purges().await?.is_empty(), "a dry run recorded a purge");

    let removed = catalog
        .purge_audit(cutoff, &purger, detail.clone(), false)
        .await
        .ctx("purge")?;
    check!(removed >= 1, "the purge removed {removed} rows");
    check!(
        times_of_key().await? == [newer],
        "after the purge the key's rows are at {:?}",
        times_of_key().await?
    );
    let recorded = purges().await?;
    let [purge] = recorded.as_slice() else {
        return Err(format!("expected one audit_purge row, found {}", recorded.len()));
    };
    check!(
        purge.key.is_none()
            && purge.detail["before"] == cutoff.to_string()
            && purge.detail["removed"] == removed
            && purge.detail["retention"] == "conformance",
        "audit_purge row has key {:?} and detail {}",
        purge.key,
        purge.detail
    );

    let again = catalog
        .purge_audit(cutoff, &purger, detail, false)
        .await
        .ctx("second purge")?;
    check!(again == 0, "a second purge to the same cutoff removed {again} rows");
    let recorded = purges().await?;
    check!(
        recorded.len() == 2 && recorded[0].id == purge.id && recorded[1].detail["removed"] == 0,
        "after a purge that found nothing the purge rows are {recorded:?}"
    );
    Ok(())
}
