//! Conformance suites for the two ports, written once and run against every
//! implementation: the in-tree ones call them from their tests, and a new
//! [`Backend`] or [`Catalog`] should pass them unchanged.
//!
//! Each check returns `Err(description)` on the first broken promise.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};

use crate::backend::{Backend, ByteStream};
use crate::catalog::{
    Annotation, AuditQuery, BlobRef, Catalog, Comment, KeyQuery, NewVersion, ObjectVersion, Precondition, PrunePolicy,
    SearchHit, SearchPage, SearchQuery, VersionContent, search_words,
};
use crate::error::{ErrorKind, Result};
use crate::key::{Metadata, ObjectKey, Tags};
use crate::time::Timestamp;
use crate::version::VersionId;

/// The result of one check: `Err` says what broke.
pub type Outcome = std::result::Result<(), String>;

macro_rules! check {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(format!($($msg)+));
        }
    };
}

mod plans;
pub use self::plans::{
    catalog_commit_over_a_delete_marker, catalog_plan_suite, catalog_prune_keeps_tagged_versions_and_the_latest,
};

trait Context<T> {
    fn ctx(self, what: &str) -> std::result::Result<T, String>;
}

impl<T> Context<T> for Result<T> {
    fn ctx(self, what: &str) -> std::result::Result<T, String> {
        self.map_err(|e| format!("{what}: {e} ({:?})", e.kind()))
    }
}

fn body(chunks: Vec<Vec<u8>>) -> ByteStream {
    futures::stream::iter(chunks.into_iter().map(|c| Ok(Bytes::from(c)))).boxed()
}

async fn read_all(backend: &dyn Backend, path: &str, range: Option<std::ops::Range<u64>>) -> Result<Vec<u8>> {
    let chunks: Vec<Bytes> = backend.read(path, range).await?.try_collect().await?;
    Ok(chunks.concat())
}

fn unique(prefix: &str) -> String {
    format!("{prefix}/{}", VersionId::generate())
}

/// Run every backend check against `backend`.
pub async fn backend_suite(backend: &dyn Backend) -> Outcome {
    backend_write_read_roundtrip(backend).await?;
    backend_ranged_reads(backend).await?;
    backend_stat_and_delete(backend).await?;
    backend_rename_replaces_target(backend).await?;
    backend_list_finds_every_object(backend).await?;
    backend_failed_write_reports_error(backend).await?;
    backend_deferred_writes_after_sync(backend).await?;
    backend.health().await.ctx("health")?;
    Ok(())
}

/// Bytes written in many chunks read back identical; empty objects work.
pub async fn backend_write_read_roundtrip(backend: &dyn Backend) -> Outcome {
    let path = unique("conformance/roundtrip");
    let chunks: Vec<Vec<u8>> = (0..5u8).map(|i| vec![i; 100_000 + usize::from(i)]).collect();
    let expected = chunks.concat();
    let written = backend.write(&path, body(chunks)).await.ctx("write")?;
    check!(
        written == expected.len() as u64,
        "write returned {written}, wrote {}",
        expected.len()
    );
    check!(
        read_all(backend, &path, None).await.ctx("read")? == expected,
        "bytes read back differ"
    );
    let empty = unique("conformance/empty");
    backend.write(&empty, body(vec![])).await.ctx("write empty")?;
    check!(
        read_all(backend, &empty, None).await.ctx("read empty")?.is_empty(),
        "empty object not empty"
    );
    check!(
        backend.stat(&empty).await.ctx("stat empty")? == Some(0),
        "empty object has no size 0"
    );
    Ok(())
}

/// Ranges return exactly the bytes asked for.
pub async fn backend_ranged_reads(backend: &dyn Backend) -> Outcome {
    let path = unique("conformance/range");
    let data: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
    backend.write(&path, body(vec![data.clone()])).await.ctx("write")?;
    for range in [0..1, 0..10_000, 17..4_000, 9_999..10_000] {
        let got = read_all(backend, &path, Some(range.clone())).await.ctx("ranged read")?;
        check!(
            got == data[range.start as usize..range.end as usize],
            "range {range:?} returned wrong bytes"
        );
    }
    Ok(())
}

/// `stat` sees sizes; `delete` removes and is idempotent; missing paths read as NotFound.
pub async fn backend_stat_and_delete(backend: &dyn Backend) -> Outcome {
    let path = unique("conformance/stat");
    check!(
        backend.stat(&path).await.ctx("stat missing")?.is_none(),
        "missing path has a size"
    );
    backend.write(&path, body(vec![vec![7; 1234]])).await.ctx("write")?;
    check!(
        backend.stat(&path).await.ctx("stat")? == Some(1234),
        "stat reports the wrong size"
    );
    backend.delete(&path).await.ctx("delete")?;
    check!(
        backend.stat(&path).await.ctx("stat deleted")?.is_none(),
        "deleted path still exists"
    );
    backend.delete(&path).await.ctx("second delete")?;
    match backend.read(&path, None).await {
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(e) => Err(format!(
            "reading a missing path failed with {:?}, not NotFound",
            e.kind()
        )),
        Ok(stream) => match stream.try_collect::<Vec<Bytes>>().await {
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            other => Err(format!("reading a missing path gave {:?}", other.map(|c| c.len()))),
        },
    }
}

/// Deferred writes read back like any other, in new directories too, and
/// `sync` succeeds; a deferred write of a failing body leaves nothing readable.
pub async fn backend_deferred_writes_after_sync(backend: &dyn Backend) -> Outcome {
    let paths: Vec<String> = (0..3).map(|i| unique(&format!("conformance/deferred/{i}"))).collect();
    for (i, path) in paths.iter().enumerate() {
        let written = backend
            .write_deferred(path, body(vec![vec![i as u8; 1000 * (i + 1)]]))
            .await
            .ctx("write_deferred")?;
        check!(written == 1000 * (i as u64 + 1), "write_deferred returned {written}");
    }
    backend.sync().await.ctx("sync")?;
    for (i, path) in paths.iter().enumerate() {
        check!(
            read_all(backend, path, None).await.ctx("read deferred")? == vec![i as u8; 1000 * (i + 1)],
            "deferred bytes read back differ"
        );
    }
    let failing = unique("conformance/deferred-failing");
    let broken: ByteStream = futures::stream::iter([
        Ok(Bytes::from_static(b"partial")),
        Err(crate::Error::new(ErrorKind::Io, "the source broke")),
    ])
    .boxed();
    check!(
        backend.write_deferred(&failing, broken).await.is_err(),
        "a failing body's deferred write succeeded"
    );
    check!(
        backend.stat(&failing).await.ctx("stat failed write")?.is_none(),
        "a failed deferred write left an object"
    );
    Ok(())
}

/// `rename` moves bytes and replaces an existing target.
pub async fn backend_rename_replaces_target(backend: &dyn Backend) -> Outcome {
    let from = unique("conformance/rename-from");
    let to = unique("conformance/rename-to/deeper");
    backend
        .write(&to, body(vec![b"old".to_vec()]))
        .await
        .ctx("write target")?;
    backend
        .write(&from, body(vec![b"new content".to_vec()]))
        .await
        .ctx("write source")?;
    backend.rename(&from, &to).await.ctx("rename")?;
    check!(
        backend.stat(&from).await.ctx("stat source")?.is_none(),
        "rename left the source behind"
    );
    check!(
        read_all(backend, &to, None).await.ctx("read target")? == b"new content",
        "rename target has wrong bytes"
    );
    Ok(())
}

/// `list` yields every object under a prefix, nested ones included, and nothing else.
pub async fn backend_list_finds_every_object(backend: &dyn Backend) -> Outcome {
    let root = unique("conformance/list");
    let mut expected: Vec<String> = ["a", "b/c", "b/d/e"].iter().map(|p| format!("{root}/{p}")).collect();
    for path in &expected {
        backend.write(path, body(vec![b"x".to_vec()])).await.ctx("write")?;
    }
    backend
        .write(&format!("{root}-sibling"), body(vec![b"x".to_vec()]))
        .await
        .ctx("write sibling")?;
    let mut listed: Vec<String> = backend
        .list(&format!("{root}/"))
        .await
        .ctx("list")?
        .try_collect()
        .await
        .ctx("list")?;
    listed.sort();
    expected.sort();
    check!(listed == expected, "list returned {listed:?}, expected {expected:?}");
    let none: Vec<String> = backend
        .list(&unique("conformance/nothing-here"))
        .await
        .ctx("list empty")?
        .try_collect()
        .await
        .ctx("list empty")?;
    check!(none.is_empty(), "listing an empty prefix returned {none:?}");
    Ok(())
}

/// A body that fails mid-way fails the write with the body's error.
pub async fn backend_failed_write_reports_error(backend: &dyn Backend) -> Outcome {
    let path = unique("conformance/failed");
    let failing: ByteStream = futures::stream::iter(vec![
        Ok(Bytes::from_static(b"partial")),
        Err(crate::Error::new(ErrorKind::Io, "input truncated")),
    ])
    .boxed();
    match backend.write(&path, failing).await {
        Err(e) => check!(
            e.kind() == ErrorKind::Io,
            "failed write reported {:?}, not the body's Io error",
            e.kind()
        ),
        Ok(n) => return Err(format!("a write whose body failed succeeded with {n} bytes")),
    }
    Ok(())
}

fn key(name: &str) -> std::result::Result<ObjectKey, String> {
    ObjectKey::new(name).map_err(|e| e.to_string())
}

fn blob_version(key: &ObjectKey, content: &str, path: Option<&str>) -> NewVersion {
    use sha2::Digest;
    let sha256 = hex::encode(sha2::Sha256::digest(content.as_bytes()));
    NewVersion {
        key: key.clone(),
        version_id: VersionId::generate(),
        content: VersionContent::Blob(BlobRef {
            md5: format!("md5-of-{content}"),
            size: content.len() as u64,
            new_path: path.map(str::to_owned),
            sha256,
        }),
        content_type: Some("text/plain".into()),
        metadata: Metadata::from([("origin".to_string(), "conformance".to_string())]),
        created_at: Timestamp::now(),
        created_by: "conformance".into(),
        precondition: Precondition::None,
        action: "put",
        audit_detail: serde_json::Value::Null,
        tags: crate::Tags::new(),
        comments: Vec::new(),
    }
}

fn marker(key: &ObjectKey) -> NewVersion {
    NewVersion {
        content: VersionContent::DeleteMarker,
        precondition: Precondition::MustExist,
        action: "delete",
        ..blob_version(key, "", None)
    }
}

/// Run every catalog check against `catalog` (keys are unique per run, so a
/// catalog can be shared with other checks).
pub async fn catalog_suite(catalog: &dyn Catalog) -> Outcome {
    catalog_versions_and_latest(catalog).await?;
    catalog_blob_reference_counts(catalog).await?;
    catalog_preconditions(catalog).await?;
    catalog_delete_version_moves_latest(catalog).await?;
    catalog_list_latest_pages(catalog).await?;
    catalog_concurrent_commits(catalog).await?;
    catalog_audit_pages_by_id(catalog).await?;
    catalog_record_read(catalog).await?;
    catalog_purge_audit(catalog).await?;
    catalog_search(catalog).await?;
    catalog_outbox(catalog).await?;
    catalog_plan_suite(catalog).await?;
    let problems = catalog.check_consistency().await.ctx("check_consistency")?;
    check!(problems.is_empty(), "consistency problems: {problems:?}");
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
            .delete_version(k, &v.version_id, "conformance")
            .await
            .ctx("delete version")?;
        check!(
            deleted.unreferenced_blob.is_none(),
            "blob released while still referenced"
        );
    }
    let last = catalog
        .delete_version(&c, &vc.version_id, "conformance")
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
        .delete_version(&k, &v2.version_id, "conformance")
        .await
        .ctx("delete v2")?;
    let latest = catalog.version(&k, None).await.ctx("latest")?;
    check!(
        latest.map(|v| v.version_id) == Some(v1.version_id.clone()),
        "latest did not move back to v1"
    );
    let err = catalog.delete_version(&k, &v2.version_id, "conformance").await.err();
    check!(
        err.as_ref().map(|e| e.kind()) == Some(ErrorKind::NotFound),
        "deleting a deleted version: {err:?}"
    );
    catalog
        .delete_version(&k, &v1.version_id, "conformance")
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

/// What [`load_search_fixture`] wrote.
#[derive(Debug, Clone)]
pub struct SearchFixture {
    /// Every key starts with this (the prefix given, and `/`).
    pub root: String,
    /// The versions written, by label, as committed (before later changes).
    pub versions: BTreeMap<&'static str, ObjectVersion>,
}

impl SearchFixture {
    /// The label of a version of the fixture, or its key for any other.
    fn label(&self, version: &ObjectVersion) -> String {
        self.versions
            .iter()
            .find(|(_, v)| v.key == version.key && v.version_id == version.version_id)
            .map_or_else(|| version.key.to_string(), |(label, _)| (*label).to_owned())
    }

    fn version(&self, label: &str) -> std::result::Result<&ObjectVersion, String> {
        self.versions
            .get(label)
            .ok_or_else(|| format!("no {label} in the fixture"))
    }
}

/// Midnight UTC on 2024-01-01 plus `days`: the creation times of the fixture.
pub fn search_fixture_day(days: i64) -> Timestamp {
    const DAY: i64 = 86_400_000_000;
    Timestamp::from_micros(1_704_067_200_000_000 + days * DAY)
}

/// Write the versions the search checks look for, all under `prefix/`, each
/// created on its own day of January 2024 ([`search_fixture_day`]):
///
/// | label | key | content type | metadata | tags | comment | day |
/// |---|---|---|---|---|---|---|
/// | inv1 | invoices/2024/inv_001.pdf | application/pdf | department=finance, customer=Acme Corp | qc_status=approved | Initial upload after QC review | 1 |
/// | inv2 | invoices/2024/inv-002.pdf | application/pdf | department=finance | qc_status=pending | | 2 |
/// | report | reports/q1.summary.csv | text/csv | department=sales, title=Quarterly Revenue | | | 3 |
/// | lease1 | contracts/lease.txt | text/plain | status=draft | | | 4 |
/// | lease2 | contracts/lease.txt (overwrites lease1) | text/plain | status=signed | | Countersigned by the landlord | 5 |
/// | memo | old/obsolete_memo.txt | text/plain | | | | 6 |
/// | memo_deleted | old/obsolete_memo.txt (a delete marker) | | | | | 7 |
/// | book | notes/किताब.txt | text/plain | lang=hi | | | 8 |
/// | scan1 | scans/IMG_0042.JPG | image/jpeg | camera=Canon | batch_id=b7 | | 9 |
/// | scan2 | scans/IMG_0042.JPG (overwrites scan1) | image/jpeg | camera=Nikon | batch_id=b7 | | 10 |
pub async fn load_search_fixture(catalog: &dyn Catalog, prefix: &str) -> Result<SearchFixture> {
    type Row = (
        &'static str,
        &'static str,
        Option<&'static str>,
        &'static [(&'static str, &'static str)],
        &'static [(&'static str, &'static str)],
        Option<&'static str>,
    );
    const ROWS: [Row; 10] = [
        (
            "inv1",
            "invoices/2024/inv_001.pdf",
            Some("application/pdf"),
            &[("department", "finance"), ("customer", "Acme Corp")],
            &[("qc_status", "approved")],
            Some("Initial upload after QC review"),
        ),
        (
            "inv2",
            "invoices/2024/inv-002.pdf",
            Some("application/pdf"),
            &[("department", "finance")],
            &[("qc_status", "pending")],
            None,
        ),
        (
            "report",
            "reports/q1.summary.csv",
            Some("text/csv"),
            &[("department", "sales"), ("title", "Quarterly Revenue")],
            &[],
            None,
        ),
        (
            "lease1",
            "contracts/lease.txt",
            Some("text/plain"),
            &[("status", "draft")],
            &[],
            None,
        ),
        (
            "lease2",
            "contracts/lease.txt",
            Some("text/plain"),
            &[("status", "signed")],
            &[],
            Some("Countersigned by the landlord"),
        ),
        ("memo", "old/obsolete_memo.txt", Some("text/plain"), &[], &[], None),
        ("memo_deleted", "old/obsolete_memo.txt", None, &[], &[], None),
        (
            "book",
            "notes/किताब.txt",
            Some("text/plain"),
            &[("lang", "hi")],
            &[],
            None,
        ),
        (
            "scan1",
            "scans/IMG_0042.JPG",
            Some("image/jpeg"),
            &[("camera", "Canon")],
            &[("batch_id", "b7")],
            None,
        ),
        (
            "scan2",
            "scans/IMG_0042.JPG",
            Some("image/jpeg"),
            &[("camera", "Nikon")],
            &[("batch_id", "b7")],
            None,
        ),
    ];
    let root = format!("{prefix}/");
    let mut versions = BTreeMap::new();
    for (day, (label, name, content_type, metadata, tags, comment)) in ROWS.into_iter().enumerate() {
        let key = ObjectKey::new(format!("{root}{name}"))?;
        let created_at = search_fixture_day(day as i64 + 1);
        let base = match content_type {
            Some(_) => blob_version(&key, &format!("{root}{label}"), Some(&unique("blobs/search"))),
            None => marker(&key),
        };
        let version = NewVersion {
            content_type: content_type.map(str::to_owned),
            metadata: metadata.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect(),
            tags: tags.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect(),
            comments: comment
                .map(|text| Comment {
                    at: created_at,
                    actor: "conformance".into(),
                    text: text.into(),
                })
                .into_iter()
                .collect(),
            created_at,
            ..base
        };
        versions.insert(label, catalog.commit_version(version).await?);
    }
    Ok(SearchFixture { root, versions })
}

/// Hits are best first, equal scores in key order, then newest version first.
fn check_hit_order(hits: &[SearchHit]) -> Outcome {
    for pair in hits.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        let ordered = a.score > b.score
            || (a.score == b.score
                && (a.version.key.as_str() < b.version.key.as_str()
                    || (a.version.key == b.version.key && a.version.version_id > b.version.version_id)));
        check!(
            ordered,
            "hits out of order: {} {} ({}) before {} {} ({})",
            a.version.key,
            a.version.version_id,
            a.score,
            b.version.key,
            b.version.version_id,
            b.score
        );
    }
    Ok(())
}

/// Full-text search finds exactly the versions its contract promises, over
/// [`load_search_fixture`]: words of keys (split at `/ _ - .`), metadata
/// values, tag names and values, and comments, as prefixes, all required;
/// every filter; latest versions or all of them, never delete markers; changes
/// by annotate, delete_version and prune seen at once; pages that visit every
/// hit once; bad input refused.
pub async fn catalog_search(catalog: &dyn Catalog) -> Outcome {
    let fixture = load_search_fixture(catalog, &unique("cat/search"))
        .await
        .ctx("load the search fixture")?;
    let root = fixture.root.clone();
    let query = |text: &str| SearchQuery {
        text: text.into(),
        prefix: Some(root.clone()),
        limit: 1000,
        ..SearchQuery::default()
    };
    let pairs = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        pairs.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect()
    };
    let found = |query: SearchQuery| {
        let fixture = &fixture;
        async move {
            let page: SearchPage = catalog.search(&query).await.ctx(&format!("search {query:?}"))?;
            check_hit_order(&page.hits)?;
            check!(page.next_cursor.is_none(), "one page of at most 1000 hits has a cursor");
            Ok::<_, String>(page.hits.iter().map(|h| fixture.label(&h.version)).collect::<Vec<_>>())
        }
    };
    let expect = |what: &str, got: Vec<String>, expected: &[&str]| -> Outcome {
        let got: BTreeSet<&str> = got.iter().map(String::as_str).collect();
        let expected: BTreeSet<&str> = expected.iter().copied().collect();
        check!(got == expected, "{what}: found {got:?}, expected {expected:?}");
        Ok(())
    };
    let words = [
        ("inv", &["inv1", "inv2"][..]),
        ("001", &["inv1"]),
        ("002", &["inv2"]),
        ("summary", &["report"]),
        ("2024", &["inv1", "inv2"]),
        ("acme", &["inv1"]),
        ("Revenue", &["report"]),
        ("approved", &["inv1"]),
        ("status", &["inv1", "inv2"]),
        ("review", &["inv1"]),
        ("landlord", &["lease2"]),
        ("NIKON img", &["scan2"]),
        ("finance 001", &["inv1"]),
        ("finance quarterly", &[]),
        ("nvoice", &[]),
        ("किता", &["book"]),
        ("ताब", &[]),
        ("draft", &[]),
        ("obsolete", &[]),
    ];
    for (text, expected) in words {
        expect(&format!("words {text:?}"), found(query(text)).await?, expected)?;
    }
    let filtered = [
        (
            "tag qc_status=approved",
            SearchQuery {
                tags: pairs(&[("qc_status", "approved")]),
                ..query("")
            },
            &["inv1"][..],
        ),
        (
            "jpg with tag batch_id=b7",
            SearchQuery {
                tags: pairs(&[("batch_id", "b7")]),
                ..query("jpg")
            },
            &["scan2"],
        ),
        (
            "metadata department=finance",
            SearchQuery {
                metadata: pairs(&[("department", "finance")]),
                ..query("")
            },
            &["inv1", "inv2"],
        ),
        (
            "pending with metadata department=finance",
            SearchQuery {
                metadata: pairs(&[("department", "finance")]),
                ..query("pending")
            },
            &["inv2"],
        ),
        (
            "content type application/pdf",
            SearchQuery {
                content_type: Some("application/pdf".into()),
                ..query("")
            },
            &["inv1", "inv2"],
        ),
        (
            "finance of content type text/csv",
            SearchQuery {
                content_type: Some("text/csv".into()),
                ..query("finance")
            },
            &[],
        ),
        (
            "since day 2 until day 4",
            SearchQuery {
                since: Some(search_fixture_day(2)),
                until: Some(search_fixture_day(4)),
                ..query("")
            },
            &["inv2", "report"],
        ),
        (
            "since day 8",
            SearchQuery {
                since: Some(search_fixture_day(8)),
                ..query("")
            },
            &["book", "scan2"],
        ),
        (
            "finance under invoices/",
            SearchQuery {
                prefix: Some(format!("{root}invoices/")),
                ..query("finance")
            },
            &["inv1", "inv2"],
        ),
        (
            "all versions: draft",
            SearchQuery {
                all_versions: true,
                ..query("draft")
            },
            &["lease1"],
        ),
        (
            "all versions: lease",
            SearchQuery {
                all_versions: true,
                ..query("lease")
            },
            &["lease1", "lease2"],
        ),
        (
            "all versions: obsolete",
            SearchQuery {
                all_versions: true,
                ..query("obsolete")
            },
            &["memo"],
        ),
        (
            "all versions under old/",
            SearchQuery {
                all_versions: true,
                prefix: Some(format!("{root}old/")),
                ..query("")
            },
            &["memo"],
        ),
    ];
    for (what, query, expected) in filtered {
        expect(what, found(query).await?, expected)?;
    }

    // Without text: in key order, then newest version first.
    let listed = found(query("")).await?;
    check!(
        listed == ["lease2", "inv2", "inv1", "book", "report", "scan2"],
        "latest versions without text: {listed:?}"
    );
    let scans = found(SearchQuery {
        all_versions: true,
        prefix: Some(format!("{root}scans/")),
        ..query("")
    })
    .await?;
    check!(scans == ["scan2", "scan1"], "all versions without text: {scans:?}");

    // Pages visit every hit once, in order, ranked or not.
    let run_word = search_words(&root).pop().unwrap_or_default();
    let everything = [
        "inv1", "inv2", "report", "lease1", "lease2", "memo", "book", "scan1", "scan2",
    ];
    for text in [run_word.as_str(), ""] {
        let mut page_query = SearchQuery {
            all_versions: true,
            limit: 2,
            ..query(text)
        };
        let mut hits = Vec::new();
        for _ in 0..everything.len() {
            let page = catalog.search(&page_query).await.ctx("search a page")?;
            check!(page.hits.len() <= 2, "a page of limit 2 has {} hits", page.hits.len());
            hits.extend(page.hits);
            match page.next_cursor {
                Some(cursor) => page_query.cursor = Some(cursor),
                None => break,
            }
        }
        check_hit_order(&hits)?;
        let mut labels: Vec<String> = hits.iter().map(|h| fixture.label(&h.version)).collect();
        labels.sort();
        let mut expected: Vec<&str> = everything.to_vec();
        expected.sort();
        check!(
            labels == expected,
            "pages of {text:?} visited {labels:?}, expected each of {expected:?} once"
        );
    }

    // Bad input is refused.
    let first = catalog
        .search(&SearchQuery {
            limit: 1,
            ..query("finance")
        })
        .await
        .ctx("search")?;
    let cursor = first.next_cursor.ok_or("two finance hits gave no cursor")?;
    let refused = [
        (
            "a malformed cursor",
            SearchQuery {
                cursor: Some("not-a-cursor".into()),
                ..query("finance")
            },
        ),
        (
            "another query's cursor",
            SearchQuery {
                cursor: Some(cursor),
                ..query("invoice")
            },
        ),
        ("limit 0", SearchQuery { limit: 0, ..query("a") }),
        (
            "a bad tag name",
            SearchQuery {
                tags: pairs(&[("bad name", "x")]),
                ..query("")
            },
        ),
    ];
    for (what, query) in refused {
        match catalog.search(&query).await {
            Err(e) if e.kind() == ErrorKind::InvalidInput => {}
            other => return Err(format!("{what}: {:?}", other.map(|p| p.hits.len()))),
        }
    }

    // Changes are seen at once.
    let inv2 = fixture.version("inv2")?;
    let set_reviewer = Annotation::Tags {
        set: Tags::from([("reviewer".to_string(), "Zelda".to_string())]),
        remove: Vec::new(),
    };
    catalog
        .annotate(&inv2.key, &inv2.version_id, set_reviewer, "conformance")
        .await
        .ctx("tag")?;
    expect("a new tag", found(query("zelda")).await?, &["inv2"])?;
    let remove_reviewer = Annotation::Tags {
        set: Tags::new(),
        remove: vec!["reviewer".into()],
    };
    catalog
        .annotate(&inv2.key, &inv2.version_id, remove_reviewer, "conformance")
        .await
        .ctx("untag")?;
    expect("a removed tag", found(query("zelda")).await?, &[])?;
    let report = fixture.version("report")?;
    catalog
        .annotate(
            &report.key,
            &report.version_id,
            Annotation::Comment("Flagged for audit".into()),
            "conformance",
        )
        .await
        .ctx("comment")?;
    expect("a new comment", found(query("flagged revenue")).await?, &["report"])?;
    let lease1 = fixture.version("lease1")?;
    catalog
        .delete_version(&lease1.key, &lease1.version_id, "conformance")
        .await
        .ctx("delete_version")?;
    let draft = SearchQuery {
        all_versions: true,
        ..query("draft")
    };
    expect("a removed version", found(draft).await?, &[])?;
    let scan1 = fixture.version("scan1")?;
    let policy = PrunePolicy {
        keep: 1,
        keep_tagged: false,
    };
    catalog
        .prune(&scan1.key, policy, "conformance", false)
        .await
        .ctx("prune")?;
    let canon = SearchQuery {
        all_versions: true,
        ..query("canon img")
    };
    expect("a pruned version", found(canon).await?, &[])?;
    catalog.commit_version(marker(&report.key)).await.ctx("delete")?;
    expect("a deleted key", found(query("revenue")).await?, &[])?;
    Ok(())
}

/// The outbox: a hook gets the events written after it that its filter
/// passes; concurrent claims never take the same delivery; settlements move
/// deliveries to delivered, later retry or dead, with the hook's counters;
/// replay makes dead deliveries due again; removal takes the hook's rows.
pub async fn catalog_outbox(catalog: &dyn Catalog) -> Outcome {
    use crate::catalog::{ClaimRequest, ClaimScope, Outcome as Attempt, Settlement};
    use crate::events::{Event, EventFilter, HookDefinition, HookSpec};
    let name = format!("conformance-{}", VersionId::generate());
    let event_type = format!("conformance.{}", VersionId::generate());
    let before = Event::new(&event_type, None, serde_json::json!({ "n": 0 }));
    catalog
        .append_events(std::slice::from_ref(&before))
        .await
        .ctx("append an early event")?;
    let hook = HookDefinition {
        name: name.clone(),
        spec: HookSpec::Callback,
        filter: EventFilter {
            events: vec![event_type.clone()],
            ..EventFilter::default()
        },
        synchronous: false,
        max_attempts: 3,
        created_at: Timestamp::now(),
        created_by: "conformance".into(),
    };
    catalog.save_hook(&hook, false).await.ctx("save_hook")?;
    let again = catalog.save_hook(&hook, false).await;
    check!(
        again.as_ref().is_err_and(|e| e.kind() == ErrorKind::Conflict),
        "a second hook of the same name: {again:?}"
    );
    let wanted: Vec<Event> = (1..=3)
        .map(|n| Event::new(&event_type, Some("cat/outbox"), serde_json::json!({ "n": n })))
        .collect();
    let other = Event::new("conformance.other", None, serde_json::json!({}));
    let mut written = wanted.clone();
    written.push(other);
    catalog.append_events(&written).await.ctx("append events")?;
    while catalog.fan_out(1000).await.ctx("fan_out")? > 0 {}

    let request = |owner: &str| ClaimRequest {
        owner: owner.to_owned(),
        hooks: vec![name.clone()],
        limit: 2,
        until: Timestamp::from_micros(Timestamp::now().as_micros() + 60_000_000),
        scope: ClaimScope::All,
    };
    let (request_a, request_b) = (request("a"), request("b"));
    let (a, b) = futures::join!(catalog.claim(&request_a), catalog.claim(&request_b));
    let (a, b) = (a.ctx("claim a")?, b.ctx("claim b")?);
    let mut ids: Vec<&str> = a.iter().chain(&b).map(|c| c.event.id.as_str()).collect();
    ids.sort_unstable();
    let mut expected: Vec<&str> = wanted.iter().map(|e| e.id.as_str()).collect();
    expected.sort_unstable();
    check!(ids == expected, "claims took {ids:?}, not each of {expected:?} once");
    check!(
        a.iter()
            .chain(&b)
            .all(|c| c.attempt == 1 && c.payload == c.event.to_json()),
        "claims are first attempts carrying the stored document"
    );
    let (first, rest) = if a.len() == 2 { (&a, &b) } else { (&b, &a) };
    let first_owner = if a.len() == 2 { "a" } else { "b" };
    let rest_owner = if a.len() == 2 { "b" } else { "a" };
    let attempt = |claim: &crate::catalog::Claim, settlement: Settlement| Attempt {
        delivery: claim.delivery,
        hook: claim.hook.clone(),
        settlement,
        elapsed: std::time::Duration::from_millis(2),
    };
    let later = Timestamp::from_micros(Timestamp::now().as_micros() + 3_600_000_000);
    let outcomes = [
        attempt(&first[0], Settlement::Delivered),
        attempt(&first[1], Settlement::Dead { error: "gone".into() }),
    ];
    catalog.settle(first_owner, &outcomes).await.ctx("settle")?;
    let retry = [attempt(
        &rest[0],
        Settlement::Retry {
            at: later,
            error: "busy".into(),
        },
    )];
    catalog.settle(rest_owner, &retry).await.ctx("settle a retry")?;
    let due = catalog.claim(&request("c")).await.ctx("claim again")?;
    check!(due.is_empty(), "nothing is due (a retry in an hour), got {}", due.len());

    let counters = catalog.outbox_counters().await.ctx("outbox_counters")?;
    let mine = counters.hooks.iter().find(|h| h.hook == name);
    let shape = mine.map(|h| (h.executed, h.failed, h.delivered, h.dead, h.pending));
    check!(shape == Some((3, 2, 1, 1, 1)), "hook counters {shape:?}");
    check!(counters.events_waiting == 0, "every event fanned out");
    let dead = catalog.dead_letters(Some(&name), 10).await.ctx("dead_letters")?;
    check!(
        dead.len() == 1 && dead[0].event_id == first[1].event.id && dead[0].error.as_deref() == Some("gone"),
        "dead letters {dead:?}"
    );
    check!(catalog.replay(Some(&name)).await.ctx("replay")? == 1, "one replayed");
    let replayed = catalog.claim(&request("c")).await.ctx("claim the replayed")?;
    check!(
        replayed.len() == 1 && replayed[0].event.id == first[1].event.id && replayed[0].attempt == 1,
        "the replayed delivery is due again from its first attempt"
    );
    check!(
        catalog.remove_hook(&name, "conformance").await.ctx("remove_hook")?,
        "hook removed"
    );
    check!(
        !catalog.remove_hook(&name, "conformance").await.ctx("remove again")?,
        "no second removal"
    );
    let counters = catalog.outbox_counters().await.ctx("outbox_counters after removal")?;
    check!(
        !counters.hooks.iter().any(|h| h.hook == name),
        "removed hook still counted"
    );
    Ok(())
}

/// The store's story on any backend, for the suites of remote backends:
/// versions, copy, delete, rollback, a 12 MiB object sent in parts and read
/// back byte for byte, a clean verify and a healthy backend. `store` must
/// be empty.
pub async fn store_on_backend(store: &crate::Store) -> Outcome {
    use crate::store::PutOptions;
    let first = store
        .put_bytes("docs/a.txt", "one", PutOptions::default())
        .await
        .ctx("put 1")?;
    store
        .put_bytes("docs/a.txt", "two", PutOptions::default())
        .await
        .ctx("put 2")?;
    let (_, old) = store
        .get_bytes("docs/a.txt", Some(&first.version_id))
        .await
        .ctx("get v1")?;
    check!(&old[..] == b"one", "version 1 reads back {old:?}");
    let (_, new) = store.get_bytes("docs/a.txt", None).await.ctx("get latest")?;
    check!(&new[..] == b"two", "the latest reads back {new:?}");
    store
        .copy("docs/a.txt", "docs/b.txt", Default::default())
        .await
        .ctx("copy")?;
    store.delete("docs/a.txt").await.ctx("delete")?;
    check!(!store.exists("docs/a.txt").await.ctx("exists")?, "a deleted key exists");
    let versions = store.versions("docs/a.txt").await.ctx("versions")?;
    check!(
        versions.len() == 3,
        "{} versions after two puts and a delete",
        versions.len()
    );
    let rolled = store
        .rollback("docs/a.txt", &first.version_id, None)
        .await
        .ctx("rollback")?;
    check!(rolled.sha256 == first.sha256, "a rollback shares the old blob");

    let large: Vec<u8> = (0..12u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let chunks: Vec<Result<Bytes>> = large.chunks(1 << 20).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
    let version = store
        .put_stream(
            "big/blob.bin",
            futures::stream::iter(chunks).boxed(),
            PutOptions::default(),
        )
        .await
        .ctx("large put")?;
    check!(
        version.size == large.len() as u64,
        "the large version has {} bytes",
        version.size
    );
    let (_, back) = store.get_bytes("big/blob.bin", None).await.ctx("large get")?;
    check!(back[..] == large[..], "the large object reads back different");

    verify_clean(store).await?;
    let health = store.health().await;
    check!(health.ok, "the backend is not healthy: {health:?}");
    Ok(())
}

/// `store` verifies clean: every referenced blob and manifest is sound, and
/// nothing is orphaned, however new (no minimum age).
pub async fn verify_clean(store: &crate::Store) -> Outcome {
    let report = store
        .verify(&crate::store::VerifyOptions {
            min_orphan_age: std::time::Duration::ZERO,
            ..crate::store::VerifyOptions::default()
        })
        .await
        .ctx("verify")?;
    check!(report.is_clean(), "verify found problems: {report:?}");
    Ok(())
}
