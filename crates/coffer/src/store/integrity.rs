//! Integrity on `Store`: `verify` re-hashes what the catalog references and
//! finds what nothing references.

use crate::crypto::BlobKey;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use serde::Serialize;

use super::Store;
use crate::body::BackgroundHasher;
use crate::catalog::{BlobRecord, Repair};
use crate::error::{ErrorKind, Result};
use crate::layout::{self, BLOBS_DIR, MANIFESTS_DIR, Manifest, PARTS_DIR, STAGING_DIR};
use crate::progress::Progress;
use crate::time::Timestamp;

/// Options of [`Store::verify`].
#[derive(Clone)]
pub struct VerifyOptions {
    /// Only the versions of keys starting with this. Orphans are looked for
    /// only when it is empty, except manifests that name a key under it.
    pub prefix: String,
    /// Mark damaged content, remove orphans and rewrite missing manifests.
    pub repair: bool,
    /// Orphans younger than this are left alone: they may belong to a put
    /// still in progress.
    pub min_orphan_age: Duration,
    /// Blobs hashed at once.
    pub jobs: usize,
    /// Told about the bytes as they are hashed.
    pub progress: Option<Arc<dyn Progress>>,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        VerifyOptions {
            prefix: String::new(),
            repair: false,
            min_orphan_age: Duration::from_secs(3600),
            jobs: 2,
            progress: None,
        }
    }
}

impl std::fmt::Debug for VerifyOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyOptions")
            .field("prefix", &self.prefix)
            .field("repair", &self.repair)
            .field("min_orphan_age", &self.min_orphan_age)
            .field("jobs", &self.jobs)
            .finish_non_exhaustive()
    }
}

/// One thing `verify` found wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifyProblem {
    /// `missing_blob`, `truncated_blob`, `corrupt_blob`, `damaged_blob` (marked
    /// by an earlier repair: its versions stay unreadable until the same
    /// content is stored again or they are removed), `orphan_blob`, `orphan_manifest`, `orphan_upload`, `incomplete_upload`, `missing_manifest`,
    /// `bad_manifest`, `catalog`, or `unlocked_version` (a protected
    /// version whose objects lacked the store's lock: found and set again
    /// by a repair, on stores with a guard).
    pub kind: &'static str,
    /// What is wrong, in a sentence.
    pub detail: String,
    /// The path on the backend concerned.
    pub path: Option<String>,
    /// The versions concerned, as `key` and version id.
    pub versions: Vec<(String, String)>,
    /// True once `--repair` dealt with it.
    pub repaired: bool,
    /// True while the problem stands after this run: not repaired, or
    /// repaired by marking content damaged, whose versions stay unreadable
    /// until the same content is stored again or they are removed.
    pub remains: bool,
}

/// What `verify` checked and found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    /// Versions checked (delete markers included).
    pub versions: u64,
    /// Blobs re-hashed.
    pub blobs: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Problems found.
    pub problems: Vec<VerifyProblem>,
    /// Unreferenced objects left alone because they are younger than `min_orphan_age`.
    pub recent_unreferenced: u64,
    /// Versions (in scope) the hot store holds whose manifest is not on the
    /// backend yet: not a problem, the flusher writes them.
    pub unflushed_versions: u64,
    /// Contents the hot store holds that are not on the backend yet (their
    /// hot copies were checked instead).
    pub unflushed_blobs: u64,
}

impl VerifyReport {
    /// True when nothing was found wrong (damaged versions included).
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }
}

/// What is wrong with a blob, if anything: a problem kind and a sentence.
type BlobCheck = Result<Option<(&'static str, String)>>;

/// A blob the catalog references, with the versions that reference it.
struct Referenced {
    blob: BlobRecord,
    versions: Vec<(String, String)>,
}

impl Store {
    /// Check that the catalog is sound and every blob it references is on the
    /// backend with the recorded size (except blobs already marked damaged).
    /// Returns a line per problem (empty when sound). This does not re-hash
    /// content: [`verify`](Self::verify) does.
    pub async fn check_consistency(&self) -> Result<Vec<String>> {
        let mut problems = self.catalog.check_consistency().await?;
        for blob in self.catalog.blobs().await?.into_iter().filter(|b| b.damaged.is_none()) {
            let stored_size = crate::crypto::segments::stored_size(blob.data_key.is_some(), blob.size);
            match self.backend.stat(&blob.path).await? {
                // Content the hot store has not flushed yet is not on the
                // backend (asked only of what is missing: a hot copy is read whole).
                None if self.awaits_flush(&blob.sha256).await? => {}
                None => problems.push(format!(
                    "blob {} is missing from the backend ({})",
                    blob.sha256, blob.path
                )),
                Some(size) if size != stored_size => problems.push(format!(
                    "blob {} has {size} bytes on the backend, {stored_size} expected",
                    blob.sha256
                )),
                Some(_) => {}
            }
        }
        Ok(problems)
    }

    /// Check every version under `options.prefix`: re-hash its blob, check its
    /// manifest, and find objects on the backend no version references. With
    /// `repair`, mark damaged content (audited), rewrite missing manifests and
    /// remove orphans; a referenced blob is never removed.
    pub async fn verify(&self, options: &VerifyOptions) -> Result<VerifyReport> {
        if let Some(wrong) = self.wrong_location().await? {
            return Err(wrong);
        }
        let mut report = VerifyReport::default();
        for line in self.catalog.check_consistency().await? {
            report.problems.push(problem("catalog", line, None, Vec::new()));
        }
        let refs = self.catalog.version_refs("").await?;
        let in_scope = |key: &str| key.starts_with(options.prefix.as_str());
        let mut by_blob: HashMap<String, Vec<(String, String)>> = HashMap::new();
        let mut expected_manifests = HashMap::new();
        for r in &refs {
            let pair = (r.key.to_string(), r.version_id.to_string());
            if in_scope(r.key.as_str()) {
                report.versions += 1;
                if let Some(sha256) = &r.sha256 {
                    by_blob.entry(sha256.clone()).or_default().push(pair.clone());
                }
            }
            expected_manifests.insert(layout::manifest_path(&r.key, &r.version_id), pair);
        }
        // What the flusher has still to write is not missing.
        let mut unflushed = HashSet::new();
        for version in self.catalog.hot_backlog(usize::MAX, 0).await?.versions {
            report.unflushed_versions += u64::from(in_scope(version.key.as_str()));
            unflushed.insert(layout::manifest_path(&version.key, &version.version_id));
        }
        report.unflushed_blobs = self.catalog.hot_stats().await?.unflushed_objects;
        let blobs = self.catalog.blobs().await?;
        let locators: HashSet<String> = blobs.iter().map(|b| b.path.clone()).collect();
        let mut referenced = Vec::new();
        for blob in blobs {
            let Some(versions) = by_blob.remove(&blob.sha256) else {
                continue;
            };
            match &blob.damaged {
                // No repair can bring the bytes back: only a put of the same
                // content (which heals it) or removing its versions ends this.
                Some(why) => report.problems.push(problem(
                    "damaged_blob",
                    format!(
                        "blob {} was marked damaged ({why}): its versions cannot be read until the same content is stored again",
                        blob.sha256
                    ),
                    Some(blob.path.clone()),
                    versions,
                )),
                None => referenced.push(Referenced { blob, versions }),
            }
        }

        self.check_blobs(referenced, options, &mut report).await?;
        let unrecorded = self
            .check_manifests(&expected_manifests, &unflushed, options, &mut report)
            .await?;
        if options.prefix.is_empty() {
            self.find_orphans(BLOBS_DIR, "orphan_blob", &locators, &unrecorded, options, &mut report)
                .await?;
            let none = (HashSet::new(), HashMap::new());
            self.find_orphans(STAGING_DIR, "orphan_upload", &none.0, &none.1, options, &mut report)
                .await?;
            let parts = self.staged_parts().await?;
            self.find_orphans(PARTS_DIR, "orphan_upload", &parts, &none.1, options, &mut report)
                .await?;
            self.find_incomplete_uploads(options, &mut report).await?;
        }
        if options.repair {
            for version in self.relock_protected(&options.prefix).await? {
                let mut found = problem(
                    "unlocked_version",
                    format!(
                        "the store's lock of {} version {} did not match its protection",
                        version.key, version.version_id
                    ),
                    version.blob_path.clone(),
                    vec![(version.key.to_string(), version.version_id.to_string())],
                );
                found.repaired = true;
                found.remains = false;
                report.problems.push(found);
            }
        }
        Ok(report)
    }

    async fn check_blobs(
        &self,
        referenced: Vec<Referenced>,
        options: &VerifyOptions,
        report: &mut VerifyReport,
    ) -> Result<()> {
        if let Some(progress) = &options.progress {
            progress.start(Some(referenced.iter().map(|r| r.blob.size).sum()));
        }
        let checks = futures::stream::iter(referenced)
            .map(|r| async move {
                let found = self.check_blob(&r.blob, options.progress.clone()).await;
                (r, found)
            })
            .buffer_unordered(options.jobs.max(1));
        let results: Vec<(Referenced, BlobCheck)> = checks.collect().await;
        if let Some(progress) = &options.progress {
            progress.finish();
        }
        for (r, found) in results {
            report.blobs += 1;
            report.bytes += r.blob.size;
            let Some((kind, detail)) = found? else {
                continue;
            };
            let mut found = problem(kind, detail.clone(), Some(r.blob.path.clone()), r.versions.clone());
            if options.repair {
                let repair = Repair::MarkDamaged {
                    sha256: r.blob.sha256.clone(),
                    problem: detail,
                };
                self.catalog.repair(&repair, &self.actor).await?;
                // Marked, not healed: the versions stay unreadable.
                found.repaired = true;
                found.detail.push_str(
                    "; marked damaged: its versions stay unreadable until the same content is stored again or they are removed",
                );
            }
            report.problems.push(found);
        }
        Ok(())
    }

    /// What is wrong with a blob's bytes, if anything.
    async fn check_blob(&self, blob: &BlobRecord, progress: Option<Arc<dyn Progress>>) -> BlobCheck {
        match self.check_hot_copy(blob).await? {
            Some((_, Some(problem))) => return Ok(Some(problem)),
            // Sound, and not on the backend yet: nothing more to check.
            Some((false, None)) => return Ok(None),
            _ => {}
        }
        let size = match self.backend.stat(&blob.path).await? {
            None => return Ok(Some(("missing_blob", format!("blob {} is missing", blob.sha256)))),
            Some(size) => size,
        };
        let expected = crate::crypto::segments::stored_size(blob.data_key.is_some(), blob.size);
        if size != expected {
            return Ok(Some((
                "truncated_blob",
                format!("blob {} has {size} bytes, {expected} expected", blob.sha256),
            )));
        }
        let data_key = blob.data_key.as_deref().map(BlobKey::from_text).transpose()?;
        let what = format!("blob {}", blob.sha256);
        let read = self.read_content(&blob.path, blob.size, data_key.as_ref(), None, &what);
        let body = match read.await {
            // Archived content cannot be read until restored: its size, checked above, is what can be.
            Err(e) if e.kind() == ErrorKind::Archived => return Ok(None),
            other => other?,
        };
        // Read on this task and hash on a thread of its own, so the two overlap.
        let hasher = BackgroundHasher::spawn(false);
        let mut body = hasher.tap(body);
        loop {
            match body.try_next().await {
                Ok(Some(chunk)) => {
                    if let Some(progress) = &progress {
                        progress.advance(chunk.len() as u64);
                    }
                }
                Ok(None) => break,
                // A sealed segment that fails to open: damaged content.
                Err(e) if e.kind() == ErrorKind::IntegrityMismatch => {
                    return Ok(Some(("corrupt_blob", e.message().to_owned())));
                }
                Err(e) => return Err(e),
            }
        }
        drop(body);
        let digests = hasher.finish().await?;
        Ok((digests.sha256 != blob.sha256 || digests.size != blob.size).then(|| {
            (
                "corrupt_blob",
                format!("blob {} hashes to {}", blob.sha256, digests.sha256),
            )
        }))
    }

    /// Every version's manifest must be there and describe it; manifests of
    /// versions the catalog does not hold are orphans. Returns the versions
    /// such orphans describe, by SHA-256, so orphan blobs can be named after them.
    async fn check_manifests(
        &self,
        expected: &HashMap<String, (String, String)>,
        unflushed: &HashSet<String>,
        options: &VerifyOptions,
        report: &mut VerifyReport,
    ) -> Result<HashMap<String, Vec<(String, String)>>> {
        let mut unrecorded: HashMap<String, Vec<(String, String)>> = HashMap::new();
        let listed: Vec<String> = self.backend.list(MANIFESTS_DIR).await?.try_collect().await?;
        let listed_set: HashSet<&String> = listed.iter().collect();
        // Read, many at a time, the manifests of versions in scope and those of no version.
        let in_scope = |path: &String| {
            expected
                .get(path)
                .is_none_or(|(key, _)| key.starts_with(options.prefix.as_str()))
        };
        let mut read: HashMap<&String, Option<Manifest>> = futures::stream::iter(listed.iter().filter(|p| in_scope(p)))
            .map(|path| async move { (path, self.read_manifest(path).await.ok()) })
            .buffer_unordered(16)
            .collect()
            .await;
        let now = Timestamp::now();
        for path in &listed {
            match expected.get(path) {
                // (One the flusher has yet to write may be there half-written.)
                Some((key, version_id)) if key.starts_with(options.prefix.as_str()) && !unflushed.contains(path) => {
                    let readable = read.remove(path).flatten();
                    let sound =
                        matches!(&readable, Some(m) if m.key.as_str() == key && m.version_id.as_str() == version_id);
                    if !sound {
                        let detail = format!("manifest of {key} version {version_id} is unreadable or wrong");
                        self.restore_manifest("bad_manifest", detail, path, key, version_id, options, report)
                            .await?;
                    }
                }
                Some(_) => {}
                None => {
                    // An orphan: attribute it to its key when it can be read.
                    let named = read.remove(path).flatten();
                    if let Some(Manifest {
                        sha256: Some(sha256),
                        key,
                        version_id,
                        ..
                    }) = &named
                    {
                        let pair = (key.to_string(), version_id.to_string());
                        unrecorded.entry(sha256.clone()).or_default().push(pair);
                    }
                    let versions: Vec<(String, String)> = named
                        .iter()
                        .map(|m| (m.key.to_string(), m.version_id.to_string()))
                        .collect();
                    let in_scope = match &named {
                        Some(m) => m.key.as_str().starts_with(options.prefix.as_str()),
                        None => options.prefix.is_empty(),
                    };
                    if in_scope {
                        self.orphan(path, "orphan_manifest", versions, now, options, report)
                            .await?;
                    }
                }
            }
        }
        for (path, (key, version_id)) in expected {
            if key.starts_with(options.prefix.as_str()) && !listed_set.contains(path) && !unflushed.contains(path) {
                let detail = format!("manifest of {key} version {version_id} is missing");
                self.restore_manifest("missing_manifest", detail, path, key, version_id, options, report)
                    .await?;
            }
        }
        Ok(unrecorded)
    }

    #[allow(clippy::too_many_arguments)]
    async fn restore_manifest(
        &self,
        kind: &'static str,
        detail: String,
        path: &str,
        key: &str,
        version_id: &str,
        options: &VerifyOptions,
        report: &mut VerifyReport,
    ) -> Result<()> {
        let mut found = problem(
            kind,
            detail,
            Some(path.to_owned()),
            vec![(key.to_owned(), version_id.to_owned())],
        );
        if options.repair {
            let key = crate::key::ObjectKey::new(key)?;
            let version_id: crate::version::VersionId = version_id.parse()?;
            if let Some(version) = self.catalog.version(&key, Some(&version_id)).await? {
                self.catalog
                    .repair(&Repair::RestoreManifest { key, version_id }, &self.actor)
                    .await?;
                self.rewrite_manifest(&version).await?;
                found.repaired = true;
                found.remains = false;
            }
        }
        report.problems.push(found);
        Ok(())
    }

    /// Report every object under `dir` that `referenced` does not hold, named
    /// after the unrecorded versions whose content it is.
    async fn find_orphans(
        &self,
        dir: &str,
        kind: &'static str,
        referenced: &HashSet<String>,
        unrecorded: &HashMap<String, Vec<(String, String)>>,
        options: &VerifyOptions,
        report: &mut VerifyReport,
    ) -> Result<()> {
        let listed: Vec<String> = self.backend.list(dir).await?.try_collect().await?;
        let now = Timestamp::now();
        for path in listed.into_iter().filter(|p| !referenced.contains(p)) {
            let versions = layout::sha256_in_blob_path(&path)
                .and_then(|sha256| unrecorded.get(sha256))
                .cloned()
                .unwrap_or_default();
            self.orphan(&path, kind, versions, now, options, report).await?;
        }
        Ok(())
    }

    /// The staged parts of multipart uploads in progress: not orphans,
    /// however old.
    async fn staged_parts(&self) -> Result<HashSet<String>> {
        let mut paths = HashSet::new();
        for upload in self.catalog.multipart_uploads("").await? {
            let parts = self.catalog.multipart_parts(&upload.upload_id).await?;
            paths.extend(parts.into_iter().map(|part| part.path));
        }
        Ok(paths)
    }

    /// Multipart uploads never completed (a put cut off by a crash or an
    /// outage) hold parts on some stores; older than the minimum age, they
    /// are reported, and aborted by a repair.
    async fn find_incomplete_uploads(&self, options: &VerifyOptions, report: &mut VerifyReport) -> Result<()> {
        let cutoff = std::time::SystemTime::now()
            .checked_sub(options.min_orphan_age)
            .unwrap_or(std::time::UNIX_EPOCH);
        for upload in self.backend.incomplete_uploads(cutoff).await? {
            let mut found = problem(
                "incomplete_upload",
                format!(
                    "a multipart upload of {} was never completed (its parts take space)",
                    upload.path
                ),
                Some(upload.path.clone()),
                Vec::new(),
            );
            if options.repair {
                self.catalog
                    .repair(
                        &Repair::RemoveOrphan {
                            path: upload.path.clone(),
                        },
                        &self.actor,
                    )
                    .await?;
                self.backend.abort_upload(&upload).await?;
                found.repaired = true;
                found.remains = false;
            }
            report.problems.push(found);
        }
        Ok(())
    }

    async fn orphan(
        &self,
        path: &str,
        kind: &'static str,
        versions: Vec<(String, String)>,
        now: Timestamp,
        options: &VerifyOptions,
        report: &mut VerifyReport,
    ) -> Result<()> {
        // Paths carry the UUIDv7 of the upload or version that made them;
        // a foreign file has none, and is as old as its last modification.
        let made = match layout::id_in_path(path) {
            Some(id) => Some(id.timestamp()),
            None => self.backend.modified(path).await?.map(Timestamp::from_system),
        };
        let age_micros = made.map_or(i64::MAX, |t| now.as_micros().saturating_sub(t.as_micros()));
        let min_age = i64::try_from(options.min_orphan_age.as_micros()).unwrap_or(i64::MAX);
        if age_micros < min_age {
            report.recent_unreferenced += 1;
            return Ok(());
        }
        let mut found = problem(
            kind,
            format!("{path} is referenced by no version"),
            Some(path.to_owned()),
            versions,
        );
        if options.repair && !self.is_referenced_now(path, &found.versions).await? {
            self.catalog
                .repair(&Repair::RemoveOrphan { path: path.to_owned() }, &self.actor)
                .await?;
            self.backend.delete(path).await?;
            found.repaired = true;
            found.remains = false;
        }
        report.problems.push(found);
        Ok(())
    }

    /// Checked again just before a removal, against commits made since the
    /// scan: a blob the catalog now points at, or a manifest of a version it
    /// now holds, is no orphan.
    async fn is_referenced_now(&self, path: &str, versions: &[(String, String)]) -> Result<bool> {
        if let Some(sha256) = layout::sha256_in_blob_path(path) {
            return Ok(self.catalog.blob(sha256).await?.is_some_and(|b| b.path == path));
        }
        if path.starts_with(MANIFESTS_DIR) {
            for (key, version_id) in versions {
                let key = crate::key::ObjectKey::new(key.as_str())?;
                if self.catalog.version(&key, Some(&version_id.parse()?)).await?.is_some() {
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }
}

fn problem(kind: &'static str, detail: String, path: Option<String>, versions: Vec<(String, String)>) -> VerifyProblem {
    VerifyProblem {
        kind,
        detail,
        path,
        versions,
        repaired: false,
        remains: true,
    }
}
