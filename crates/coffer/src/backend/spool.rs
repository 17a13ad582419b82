//! Graceful degradation: a local spool in front of a remote backend.
//!
//! While the primary backend answers, everything goes to it. When it stops
//! answering (a connection error, a timeout or a 5xx after the retries), writes
//! land in the spool, a local directory with the same layout, and reads of
//! what is spooled are served from there; paths are the same on both, so no
//! version id or catalog row changes. [`SpoolBackend::drain`] later copies the
//! spooled files to the primary, reads each back and checks its hash (blobs:
//! the SHA-256 in their name; manifests: the bytes), and only then removes
//! the spooled copy.

use std::collections::BTreeSet;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};

use super::{
    Backend, Capabilities, OpendalBackend, PresignRequest, PresignedUrl, RestoreState, RestoreTier, read_all,
    read_range,
};
use crate::body::{BackgroundHasher, ByteStream};
use crate::error::{Error, ErrorKind, Result};
use crate::layout::{BLOBS_DIR, MANIFESTS_DIR, STAGING_DIR, sha256_in_blob_path};
use crate::retention::Protection;

/// After the primary fails to answer, writes go straight to the spool for
/// this long, in this process and in others using the same spool.
const DOWN_FOR: Duration = Duration::from_secs(30);
/// The file in the spool directory that tells other processes until when
/// (seconds since the Unix epoch) the primary counts as down.
const DOWN_MARKER: &str = "backend-down";
/// Locks asked for files still in the spool (`locks/<path>`, the
/// protection as JSON): set on the primary once the file is there.
const LOCKS_DIR: &str = "locks/";
/// Bodies up to this size are held so that a write the primary drops can go to the spool.
const REPLAYABLE: usize = 8 << 20;
/// Spooled files moved to the primary at once.
const DRAIN_CONCURRENCY: usize = 4;

/// A remote backend with a local spool to fall back on.
pub struct SpoolBackend {
    primary: Arc<dyn Backend>,
    spool: OpendalBackend,
    spool_root: String,
    /// Where the outage is remembered across processes.
    marker: PathBuf,
    /// Until when the primary counts as down.
    down_until: Mutex<Option<Instant>>,
}

/// What is waiting in the spool.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct SpoolStatus {
    /// The spool's directory.
    pub path: String,
    /// Files waiting for the primary (blobs and manifests).
    pub files: u64,
    /// Their bytes.
    pub bytes: u64,
}

/// What a drain did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct DrainReport {
    /// Files copied to the primary, verified, and removed from the spool.
    pub moved: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Files that could not be moved, with why; they stay in the spool.
    pub failed: Vec<(String, String)>,
}

/// Whether `err` says the backend did not answer (rather than refused).
fn unreachable(err: &Error) -> bool {
    err.kind() == ErrorKind::BackendUnavailable && err.is_retryable()
}

impl SpoolBackend {
    /// `primary`, falling back on a spool in the local directory `dir`.
    pub fn new(primary: Arc<dyn Backend>, dir: &Path) -> Result<SpoolBackend> {
        let spool = OpendalBackend::fs(dir)?;
        let marker = dir.join(DOWN_MARKER);
        Ok(SpoolBackend {
            primary,
            spool_root: dir.display().to_string(),
            spool,
            down_until: Mutex::new(down_until_marked(&marker)),
            marker,
        })
    }

    fn primary_down(&self) -> bool {
        self.down_until
            .lock()
            .map(|until| until.is_some_and(|t| Instant::now() < t))
            .unwrap_or(false)
    }

    /// Count the primary as down for [`DOWN_FOR`], here and (through the
    /// marker; a hint, so failing to write it is no error) in other processes.
    fn mark_down(&self) {
        if let Ok(mut until) = self.down_until.lock() {
            *until = Some(Instant::now() + DOWN_FOR);
        }
        let until = SystemTime::now() + DOWN_FOR;
        if let Ok(since_epoch) = until.duration_since(UNIX_EPOCH) {
            let _ = std::fs::write(&self.marker, since_epoch.as_secs().to_string());
        }
    }

    fn mark_up(&self) {
        if let Ok(mut until) = self.down_until.lock() {
            *until = None;
        }
        let _ = std::fs::remove_file(&self.marker);
    }

    /// Whether `path` is in the spool (waiting for the primary).
    pub async fn holds(&self, path: &str) -> bool {
        matches!(self.spool.stat(path).await, Ok(Some(_)))
    }

    /// The files waiting in the spool.
    pub async fn status(&self) -> Result<SpoolStatus> {
        let mut status = SpoolStatus {
            path: self.spool_root.clone(),
            ..SpoolStatus::default()
        };
        for dir in [BLOBS_DIR, MANIFESTS_DIR] {
            let mut paths = self.spool.list(dir).await?;
            while let Some(path) = paths.try_next().await? {
                status.files += 1;
                status.bytes += self.spool.stat(&path).await?.unwrap_or(0);
            }
        }
        Ok(status)
    }

    /// Move every spooled blob, then every spooled manifest, to the primary:
    /// copy, read back and check, then remove the spooled copy. Stops early
    /// with `BackendUnavailable` if the primary does not answer.
    pub async fn drain(&self) -> Result<DrainReport> {
        self.primary.health().await?;
        self.mark_up();
        let mut report = DrainReport::default();
        // Blobs first: a manifest must never reach the primary before its content.
        for dir in [BLOBS_DIR, MANIFESTS_DIR] {
            let paths: Vec<String> = self.spool.list(dir).await?.try_collect().await?;
            let outcomes: Vec<(String, Result<u64>)> = futures::stream::iter(paths)
                .map(|path| async move {
                    let outcome = self.move_to_primary(&path).await;
                    (path, outcome)
                })
                .buffer_unordered(DRAIN_CONCURRENCY)
                .collect()
                .await;
            for (path, outcome) in outcomes {
                match outcome {
                    Ok(bytes) => {
                        report.moved += 1;
                        report.bytes += bytes;
                    }
                    Err(e) if unreachable(&e) => return Err(e),
                    Err(e) => report.failed.push((path, e.message().to_owned())),
                }
            }
        }
        self.apply_kept_locks().await?;
        Ok(report)
    }

    /// Keep the lock asked for the spooled `path` until it reaches the primary.
    async fn keep_lock(&self, path: &str, protection: &Protection) -> Result<()> {
        let json = serde_json::to_vec(protection)
            .map_err(|e| Error::new(ErrorKind::InvalidInput, format!("cannot record a lock: {e}")))?;
        self.spool
            .write(&format!("{LOCKS_DIR}{path}"), crate::body::once(Bytes::from(json)))
            .await
            .map(|_| ())
    }

    /// Set on the primary the kept locks of files that have reached it.
    async fn apply_kept_locks(&self) -> Result<()> {
        let kept: Vec<String> = self.spool.list(LOCKS_DIR).await?.try_collect().await?;
        for lock_path in kept {
            let path = lock_path.strip_prefix(LOCKS_DIR).unwrap_or(&lock_path);
            if self.holds(path).await {
                continue;
            }
            let protection: Protection = serde_json::from_slice(&read_all(&self.spool, &lock_path).await?)
                .map_err(|e| Error::new(ErrorKind::IntegrityMismatch, format!("{lock_path}: {e}")))?;
            self.primary.lock(path, &protection).await?;
            self.spool.delete(&lock_path).await?;
        }
        Ok(())
    }

    async fn move_to_primary(&self, path: &str) -> Result<u64> {
        let size = self.spool.stat(path).await?.unwrap_or(0);
        let named = sha256_in_blob_path(path);
        // An encrypted store's blob is sealed: its stored bytes do not hash
        // to the name, so the hash of the bytes sent is what must come back.
        let sealed = named.is_some()
            && size >= 16
            && crate::crypto::segments::is_sealed(&read_range(&self.spool, path, 0..16).await?);
        let sent = sealed.then(|| BackgroundHasher::spawn(false));
        let mut body = self.spool.read(path, None).await?;
        if let Some(hasher) = &sent {
            body = hasher.tap(body);
        }
        let written = self.primary.write(path, body).await?;
        let expected = match (named, sent) {
            (Some(_), Some(hasher)) => Expected::Sha256(hasher.finish().await?.sha256),
            (Some(sha256), None) => Expected::Sha256(sha256.to_owned()),
            (None, _) => Expected::Bytes(read_all(&self.spool, path).await?),
        };
        if written != size {
            return Err(Error::new(
                ErrorKind::IntegrityMismatch,
                format!("{path}: {written} bytes reached the primary, {size} spooled"),
            ));
        }
        // Read back what the primary holds before the spooled copy goes.
        let matches = match &expected {
            Expected::Sha256(sha256) => {
                let digests = BackgroundHasher::digest_all(self.primary.read(path, None).await?, false).await?;
                &digests.sha256 == sha256 && digests.size == size
            }
            Expected::Bytes(bytes) => read_all(self.primary.as_ref(), path).await? == *bytes,
        };
        if !matches {
            return Err(Error::new(
                ErrorKind::IntegrityMismatch,
                format!("{path}: the primary's copy differs from the spooled one; kept in the spool"),
            ));
        }
        self.spool.delete(path).await?;
        Ok(size)
    }

    /// Write to the primary unless it is down; fall back on the spool when it
    /// does not answer and the body can still be replayed.
    async fn write_either(&self, path: &str, body: ByteStream) -> Result<u64> {
        if self.primary_down() {
            return self.spool.write(path, body).await;
        }
        let (head, rest) = crate::body::split_head(body, REPLAYABLE).await?;
        let Some(rest) = rest else {
            let bytes = Bytes::from(head.concat());
            return match self.primary.write(path, crate::body::once(bytes.clone())).await {
                Err(e) if unreachable(&e) => {
                    self.mark_down();
                    self.spool.write(path, crate::body::once(bytes)).await
                }
                other => other,
            };
        };
        // Too large to hold: ask first, since a body half sent cannot be replayed.
        let body = futures::stream::iter(head.into_iter().map(Ok)).chain(rest).boxed();
        match self.primary.health().await {
            Err(e) if unreachable(&e) => {
                self.mark_down();
                self.spool.write(path, body).await
            }
            _ => self.primary.write(path, body).await,
        }
    }
}

/// Until when another process found the primary down, from the marker at `path`.
fn down_until_marked(path: &Path) -> Option<Instant> {
    let text = std::fs::read_to_string(path).ok()?;
    let until = UNIX_EPOCH + Duration::from_secs(text.trim().parse().ok()?);
    let left = until.duration_since(SystemTime::now()).ok()?;
    Some(Instant::now() + left.min(DOWN_FOR))
}

enum Expected {
    Sha256(String),
    Bytes(Vec<u8>),
}

impl fmt::Display for SpoolBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (spool {})", self.primary, self.spool_root)
    }
}

impl fmt::Debug for SpoolBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SpoolBackend")
            .field("primary", &self.primary)
            .field("spool", &self.spool_root)
            .finish()
    }
}

#[async_trait]
impl Backend for SpoolBackend {
    async fn write(&self, path: &str, body: ByteStream) -> Result<u64> {
        self.write_either(path, body).await
    }

    async fn read(&self, path: &str, range: Option<Range<u64>>) -> Result<ByteStream> {
        if self.holds(path).await {
            match self.spool.read(path, range.clone()).await {
                // Drained in between: the primary has it now.
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                other => return other,
            }
        }
        self.primary.read(path, range).await
    }

    async fn stat(&self, path: &str) -> Result<Option<u64>> {
        match self.spool.stat(path).await? {
            Some(size) => Ok(Some(size)),
            None => self.primary.stat(path).await,
        }
    }

    async fn modified(&self, path: &str) -> Result<Option<std::time::SystemTime>> {
        match self.spool.modified(path).await? {
            Some(at) => Ok(Some(at)),
            None => self.primary.modified(path).await,
        }
    }

    async fn delete(&self, path: &str) -> Result<()> {
        self.spool.delete(path).await?;
        self.primary.delete(path).await
    }

    async fn rename(&self, from: &str, to: &str) -> Result<()> {
        if self.holds(from).await {
            return self.spool.rename(from, to).await;
        }
        self.primary.rename(from, to).await
    }

    async fn list(&self, prefix: &str) -> Result<BoxStream<'static, Result<String>>> {
        // Both sides, each path once: the spool holds few files, so they are
        // gathered first and the primary's listing streams past them.
        let spooled: BTreeSet<String> = self.spool.list(prefix).await?.try_collect().await?;
        let primary = self.primary.list(prefix).await?;
        let spooled = Arc::new(spooled);
        let also_spooled = spooled.clone();
        let from_primary = primary.try_filter(move |path| futures::future::ready(!also_spooled.contains(path)));
        let from_spool = futures::stream::iter((*spooled).clone().into_iter().map(Ok));
        Ok(from_primary.chain(from_spool).boxed())
    }

    fn capabilities(&self) -> Capabilities {
        self.primary.capabilities()
    }

    async fn incomplete_uploads(&self, cutoff: std::time::SystemTime) -> Result<Vec<super::IncompleteUpload>> {
        self.primary.incomplete_uploads(cutoff).await
    }

    async fn abort_upload(&self, upload: &super::IncompleteUpload) -> Result<()> {
        self.primary.abort_upload(upload).await
    }

    async fn set_storage_class(&self, path: &str, class: &str) -> Result<()> {
        if self.holds(path).await {
            return Err(Error::new(
                ErrorKind::BackendUnavailable,
                "the content is in the local spool until the backend answers again: its storage class cannot be set yet",
            ));
        }
        self.primary.set_storage_class(path, class).await
    }

    async fn health(&self) -> Result<()> {
        self.primary.health().await
    }

    async fn presign(&self, request: &PresignRequest<'_>) -> Result<PresignedUrl> {
        if request.path.starts_with(STAGING_DIR) || !self.holds(request.path).await {
            return self.primary.presign(request).await;
        }
        Err(Error::new(
            ErrorKind::BackendUnavailable,
            "this version is in the local spool until the primary backend answers again (`coffer sync`): no URL can be signed for it yet",
        ))
    }

    async fn native_guard(&self) -> Result<Option<String>> {
        self.primary.native_guard().await
    }

    fn server_side_encryption(&self) -> Option<String> {
        self.primary.server_side_encryption()
    }

    /// A spooled file is locked when it reaches the primary.
    async fn lock(&self, path: &str, protection: &Protection) -> Result<bool> {
        if self.holds(path).await {
            return self.keep_lock(path, protection).await.map(|()| true);
        }
        match self.primary.lock(path, protection).await {
            Err(e) if unreachable(&e) => {
                self.mark_down();
                self.keep_lock(path, protection).await.map(|()| true)
            }
            other => other,
        }
    }

    async fn restore(&self, path: &str, days: u32, tier: RestoreTier) -> Result<RestoreState> {
        match self.holds(path).await {
            true => Ok(RestoreState::NotArchived),
            false => self.primary.restore(path, days, tier).await,
        }
    }

    async fn restore_status(&self, path: &str) -> Result<RestoreState> {
        match self.holds(path).await {
            true => Ok(RestoreState::NotArchived),
            false => self.primary.restore_status(path).await,
        }
    }
}
