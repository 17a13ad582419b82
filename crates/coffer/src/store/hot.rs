//! The hot store: a small put is committed with its bytes in the catalog
//! (one transaction, group-committed with others) and acknowledged then;
//! the flusher writes its blob and manifest to the backend later, in
//! batches with one durability step each, and expiry drops hot copies
//! once flushed and old. Reads are served from a hot copy while there is one.

use std::ops::Range;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use serde::Serialize;

use super::Store;
use super::remote::SyncHandle;
use super::write::Durability;
use crate::body::{self, BackgroundHasher, ByteStream};
use crate::catalog::{BlobRecord, HotStats, NewVersion, ObjectVersion, VersionContent};
use crate::crypto::BlobKey;
use crate::crypto::segments;
use crate::error::{Error, ErrorKind, Result};
use crate::hot::{HotConfig, MAX_HOT_OBJECT_SIZE};
use crate::layout;
use crate::time::Timestamp;
use crate::version::VersionId;

/// Versions and contents one flush batch takes.
const FLUSH_BATCH: usize = 512;
/// Backend writes of a flush batch in flight at once.
const FLUSH_JOBS: usize = 32;
/// Hot copies one expiry transaction drops, so the writer is never held long.
const EXPIRE_BATCH: usize = 500;
/// How often a long-running process runs expiry.
const EXPIRE_EVERY: Duration = Duration::from_secs(86_400);

/// What a flush wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FlushReport {
    /// Manifests written.
    pub versions: u64,
    /// Contents written.
    pub blobs: u64,
    /// Bytes of content written (as stored).
    pub bytes: u64,
}

/// The hot store's state, for `coffer hot status`.
#[derive(Debug, Clone, Serialize)]
pub struct HotStatus {
    /// What serves hot copies: the catalog's engine (`sqlite`, `postgres`)
    /// or `clickhouse`.
    pub engine: String,
    /// Puts of at most this many bytes go hot (0: off).
    pub max_object_size: u64,
    /// Days a hot copy is kept.
    pub days: u64,
    /// The totals.
    #[serde(flatten)]
    pub stats: HotStats,
}

/// What an expiry dropped, or with a dry run would drop.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HotExpiry {
    /// The catalog's hot copies: flushed, and older than `hot.days`.
    pub copies: u64,
    /// ClickHouse's day partitions (`YYYY-MM-DD`) before that age, when
    /// ClickHouse is the engine.
    pub clickhouse_days: Vec<String>,
}

impl Store {
    /// The same store with these hot store settings.
    pub fn with_hot(&self, hot: HotConfig) -> Store {
        Store { hot, ..self.clone() }
    }

    /// Whether a put of `bytes` held in memory goes to the hot store.
    pub(super) fn goes_hot(&self, bytes: &Bytes, storage_class: Option<&str>) -> bool {
        // A storage class is the backend's: such a put writes there at once.
        storage_class.is_none() && self.hot.takes(bytes.len() as u64)
    }

    /// Commit `version` with `bytes` (its content, put with upload id `id`)
    /// held hot: nothing is written to the backend before the commit. The
    /// catalog takes this copy unless it stores the content already.
    pub(super) async fn commit_hot(
        &self,
        mut version: NewVersion,
        id: &VersionId,
        bytes: Bytes,
    ) -> Result<ObjectVersion> {
        let VersionContent::Blob(blob) = &mut version.content else {
            return Err(Error::new(ErrorKind::InvalidInput, "a hot put needs content"));
        };
        let (stored, data_key) = match self.encryption.require()? {
            Some(encryption) => {
                let (key, record) = encryption.new_key().await?;
                (Bytes::from(segments::seal_bytes(&key, &bytes)?), Some(record.to_text()))
            }
            None => (bytes, None),
        };
        // A damaged stored copy is replaced by this one (the catalog heals the blob).
        let damaged = self.catalog.blob(&blob.sha256).await?.filter(|b| b.damaged.is_some());
        let path = layout::blob_path(&blob.sha256, id);
        blob.new_path = Some(path.clone());
        blob.data_key = data_key;
        blob.hot = Some(stored);
        let key = version.key.clone();
        let committed = self.catalog.commit_version(version).await?;
        if let (Some(damaged), true) = (damaged, committed.blob_path.as_deref() == Some(path.as_str())) {
            let _ = self.backend.delete(&damaged.path).await;
        }
        self.events_written(&key).await;
        Ok(committed)
    }

    /// The bytes `range` (all with `None`) of content `sha256` of `size`
    /// bytes: from its hot copy if it has one, else from the backend at `path`.
    pub(super) async fn read_stored(
        &self,
        path: &str,
        sha256: &str,
        size: u64,
        key: Option<&BlobKey>,
        range: Option<Range<u64>>,
        what: &str,
    ) -> Result<ByteStream> {
        match self.read_hot(sha256, size, key, range.clone(), what).await? {
            Some(body) => Ok(body),
            None => self.read_content(path, size, key, range, what).await,
        }
    }

    /// The bytes `range` (all with `None`) of content `sha256` of `size`
    /// bytes from its hot copy, if it has one; `key` opens a sealed copy.
    async fn read_hot(
        &self,
        sha256: &str,
        size: u64,
        key: Option<&BlobKey>,
        range: Option<Range<u64>>,
        what: &str,
    ) -> Result<Option<ByteStream>> {
        // Hot content is never larger than this, whatever the settings now.
        if size > MAX_HOT_OBJECT_SIZE {
            return Ok(None);
        }
        let cached = match key {
            None => self.hot_reads.get(sha256),
            Some(_) => None,
        };
        let content = match cached {
            Some(content) => content,
            None => {
                let content = match self.clickhouse_copy(sha256).await {
                    Some(content) => content,
                    None => match self.catalog.hot_copy(sha256).await? {
                        Some(copy) => copy.content,
                        None => return Ok(None),
                    },
                };
                if key.is_none() {
                    self.hot_reads.insert(sha256, &content);
                }
                content
            }
        };
        // Bytes `range` of the copy, as far as it goes.
        let part = |range: Range<u64>| {
            let end = usize::try_from(range.end).unwrap_or(usize::MAX).min(content.len());
            let start = usize::try_from(range.start).unwrap_or(usize::MAX).min(end);
            body::once(content.slice(start..end))
        };
        match key {
            None => Ok(Some(part(range.unwrap_or(0..size)))),
            Some(key) => self
                .open_sealed(size, key, range, what, |stored| async move { Ok(part(stored)) })
                .await
                .map(Some),
        }
    }

    /// Whether content `sha256` waits in the hot store for the flusher (its
    /// hot copy is not on the backend yet).
    pub(super) async fn awaits_flush(&self, sha256: &str) -> Result<bool> {
        Ok(self.catalog.hot_copy(sha256).await?.is_some_and(|copy| !copy.flushed))
    }

    /// Whether `blob` has a hot copy, and if so whether it is flushed and
    /// what is wrong with its bytes (they must hash to the blob's SHA-256).
    pub(super) async fn check_hot_copy(
        &self,
        blob: &BlobRecord,
    ) -> Result<Option<(bool, Option<(&'static str, String)>)>> {
        let Some(copy) = self.catalog.hot_copy(&blob.sha256).await? else {
            return Ok(None);
        };
        let data_key = blob.data_key.as_deref().map(BlobKey::from_text).transpose()?;
        let what = format!("hot copy of blob {}", blob.sha256);
        let stored = body::once(copy.content);
        let body = match &data_key {
            None => stored,
            Some(key) => {
                self.open_sealed(blob.size, key, None, &what, |_| async move { Ok(stored) })
                    .await?
            }
        };
        let problem = match BackgroundHasher::digest_all(body, false).await {
            Ok(digests) if digests.size == blob.size && digests.sha256 == blob.sha256 => None,
            Ok(digests) => Some(("corrupt_blob", format!("the {what} hashes to {}", digests.sha256))),
            Err(e) if e.kind() == ErrorKind::IntegrityMismatch => Some(("corrupt_blob", e.message().to_owned())),
            Err(e) => return Err(e),
        };
        Ok(Some((copy.flushed, problem)))
    }

    /// Write everything the hot store holds that the backend does not yet
    /// (blobs and manifests), batch by batch, each made durable with one
    /// backend sync before the catalog marks it flushed.
    pub async fn flush_hot(&self) -> Result<FlushReport> {
        let mut report = FlushReport::default();
        while let Some(batch) = self.flush_batch().await? {
            report.versions += batch.versions;
            report.blobs += batch.blobs;
            report.bytes += batch.bytes;
        }
        Ok(report)
    }

    /// Flush one batch; `None` when nothing waits.
    async fn flush_batch(&self) -> Result<Option<FlushReport>> {
        let backlog = self.catalog.hot_backlog(FLUSH_BATCH, FLUSH_BATCH).await?;
        if backlog.is_empty() {
            return Ok(None);
        }
        // Owned futures: a task spawned over borrowing closures is not `Send`.
        let blob_writes = futures::stream::iter(backlog.blobs.iter().cloned().map(|blob| {
            let store = self.clone();
            async move { store.write_object(&blob.path, blob.content, Durability::Deferred).await }
        }))
        .buffer_unordered(FLUSH_JOBS)
        .collect::<Vec<Result<u64>>>();
        let manifest_writes = futures::stream::iter(backlog.versions.iter().cloned().map(|version| {
            let store = self.clone();
            async move {
                let data_key = match &version.sha256 {
                    Some(sha256) => store.blob_key(sha256).await?,
                    None => None,
                };
                store
                    .write_version_manifest(&version, data_key, Durability::Deferred)
                    .await
            }
        }))
        .buffer_unordered(FLUSH_JOBS)
        .collect::<Vec<Result<String>>>();
        // Every write ends before the batch does, failed or not: one left
        // running could rewrite an object after a later batch marked it.
        let (written, manifests) = futures::join!(blob_writes, manifest_writes);
        let written = written.into_iter().collect::<Result<Vec<u64>>>()?;
        manifests.into_iter().collect::<Result<Vec<String>>>()?;
        self.backend.sync().await?;
        let versions: Vec<(String, String)> = backlog
            .versions
            .iter()
            .map(|v| (v.key.to_string(), v.version_id.to_string()))
            .collect();
        let blobs: Vec<(String, String)> = backlog
            .blobs
            .iter()
            .map(|b| (b.sha256.clone(), b.path.clone()))
            .collect();
        let leftovers = self.catalog.hot_flushed(&versions, &blobs).await?;
        // Removed while they were written: their objects go again.
        for (key, version_id) in &leftovers.versions {
            if let (Ok(key), Ok(id)) = (crate::key::ObjectKey::new(key), version_id.parse::<VersionId>()) {
                let _ = self.backend.delete(&layout::manifest_path(&key, &id)).await;
            }
        }
        for path in &leftovers.blob_paths {
            let _ = self.backend.delete(path).await;
        }
        // A protected version's objects are locked once they are there (a
        // lock that fails is set again by `verify --repair`).
        let now = Timestamp::now();
        let protected: Vec<&ObjectVersion> = backlog
            .versions
            .iter()
            .filter(|v| v.protection().is_protected(now))
            .collect();
        if !protected.is_empty() && self.has_guard().await.unwrap_or(false) {
            for version in protected {
                let _ = self.lock_objects(version).await;
            }
        }
        Ok(Some(FlushReport {
            versions: versions.len() as u64,
            blobs: blobs.len() as u64,
            bytes: written.iter().sum(),
        }))
    }

    /// Drop the hot copies put before `now` less `hot.days` that are
    /// flushed, in batches, and ClickHouse's day partitions before then;
    /// with `dry_run`, only name them. Reads of their versions then come
    /// from the backend.
    pub async fn expire_hot(&self, now: Timestamp, dry_run: bool) -> Result<HotExpiry> {
        let age = i64::try_from(self.hot.max_age().as_micros()).unwrap_or(i64::MAX);
        let before = Timestamp::from_micros(now.as_micros().saturating_sub(age));
        // ClickHouse's copies go a day partition at a time.
        let clickhouse_days = self.expire_clickhouse(before, dry_run).await?;
        if dry_run {
            let copies = self.catalog.hot_expirable(before).await?;
            return Ok(HotExpiry {
                copies,
                clickhouse_days,
            });
        }
        let mut copies = 0;
        loop {
            let removed = self.catalog.hot_expire(before, EXPIRE_BATCH).await?;
            copies += removed;
            if removed < EXPIRE_BATCH as u64 {
                return Ok(HotExpiry {
                    copies,
                    clickhouse_days,
                });
            }
            tokio::task::yield_now().await;
        }
    }

    /// The hot store's settings and totals.
    pub async fn hot_status(&self) -> Result<HotStatus> {
        Ok(HotStatus {
            engine: match &self.clickhouse {
                Some(_) => "clickhouse",
                None => self.catalog.engine(),
            }
            .to_owned(),
            max_object_size: self.hot.max_object_size,
            days: self.hot.days,
            stats: self.catalog.hot_stats().await?,
        })
    }

    /// Flush every `every`, and expire once a day, in the background for as
    /// long as the handle lives (what every long-running coffer process
    /// runs). A round that fails (the backend is down) waits for the next.
    pub fn spawn_hot(&self, every: Duration) -> SyncHandle {
        let store = self.clone();
        let task = tokio::spawn(async move {
            let mut last_expiry: Option<tokio::time::Instant> = None;
            loop {
                let _ = store.flush_hot().await;
                if last_expiry.is_none_or(|at| at.elapsed() >= EXPIRE_EVERY) {
                    let _ = store.expire_hot(Timestamp::now(), false).await;
                    last_expiry = Some(tokio::time::Instant::now());
                }
                tokio::time::sleep(every).await;
            }
        });
        SyncHandle { task }
    }
}
