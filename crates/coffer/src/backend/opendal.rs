//! The `Backend` implementation over OpenDAL services (fs and memory today).

use std::collections::HashSet;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use opendal::Operator;

use super::errors::Place;
use super::{
    Backend, ByteStream, Capabilities, IncompleteUpload, PresignMethod, PresignRequest, PresignedUrl, RestoreState,
    RestoreTier, cannot_presign,
};
use crate::body::WriteBehind;
use crate::error::{Error, ErrorKind, Result};
use crate::retention::Protection;

/// Chunk size for reads: large enough for throughput, small enough for bounded memory.
const READ_CHUNK: usize = 1 << 20;

/// Largest body `write_deferred` holds in memory to write in one go.
const DEFERRED_WRITE_LIMIT: usize = 8 << 20;

/// A backend on an OpenDAL operator.
pub struct OpendalBackend {
    op: Operator,
    description: String,
    /// The store's kind and address, for errors.
    place: Place,
    /// Remote stores: large bodies go up in parts of this size, this many at once.
    multipart: Option<(usize, usize)>,
    /// Set for the local filesystem, where we fsync directories ourselves.
    local_root: Option<LocalRoot>,
    /// Azure only: what OpenDAL's azblob service lacks (SAS URLs from the
    /// account key, access tiers).
    #[cfg(feature = "backend-azblob")]
    pub(super) azure: Option<super::azure::AzureExtras>,
    /// S3 only: the calls OpenDAL does not make (multipart cleanup, Object Lock, restores).
    #[cfg(feature = "backend-s3")]
    pub(super) s3: Option<Arc<super::s3::S3Extras>>,
}

/// OpenDAL's fs service fsyncs files on close but not the directories that name
/// them; a new file's directory entry is only durable once its directory is
/// fsynced too, so the adapter does that with std.
struct LocalRoot {
    root: PathBuf,
    /// Directories already fsynced (with their ancestors) by this process.
    durable_dirs: Arc<Mutex<HashSet<PathBuf>>>,
}

impl OpendalBackend {
    /// A backend on a local directory (created if missing).
    #[cfg(feature = "backend-fs")]
    pub fn fs(root: &Path) -> Result<Self> {
        std::fs::create_dir_all(root).map_err(|e| Error::io(&format!("cannot create {}", root.display()), e))?;
        let root = std::fs::canonicalize(root).map_err(|e| Error::io(&format!("cannot open {}", root.display()), e))?;
        let root_str = root
            .to_str()
            .ok_or_else(|| Error::invalid_input(format!("store path {} is not UTF-8", root.display())))?;
        let place = Place::local("fs", root.display().to_string());
        let op = Operator::new(opendal::services::Fs::default().root(root_str)).map_err(|e| place.error(e))?;
        Ok(OpendalBackend {
            op,
            place,
            description: format!("fs:{}", root.display()),
            multipart: None,
            local_root: Some(LocalRoot {
                root,
                durable_dirs: Arc::default(),
            }),
            #[cfg(feature = "backend-azblob")]
            azure: None,
            #[cfg(feature = "backend-s3")]
            s3: None,
        })
    }

    /// A backend in memory: fast, and gone with the process. For tests and caches.
    #[cfg(feature = "backend-memory")]
    pub fn memory() -> Result<Self> {
        let place = Place::local("memory", String::new());
        let op = Operator::new(opendal::services::Memory::default()).map_err(|e| place.error(e))?;
        Ok(OpendalBackend {
            op,
            place,
            description: "memory".into(),
            multipart: None,
            local_root: None,
            #[cfg(feature = "backend-azblob")]
            azure: None,
            #[cfg(feature = "backend-s3")]
            s3: None,
        })
    }

    /// A backend on a remote store's operator, uploading large bodies in
    /// parts of `part_size` bytes, `concurrency` at once.
    #[cfg(any(feature = "backend-s3", feature = "backend-azblob"))]
    pub(super) fn remote(
        op: Operator,
        description: String,
        place: Place,
        part_size: usize,
        concurrency: usize,
    ) -> Self {
        OpendalBackend {
            op,
            place,
            description,
            multipart: Some((part_size, concurrency)),
            local_root: None,
            #[cfg(feature = "backend-azblob")]
            azure: None,
            #[cfg(feature = "backend-s3")]
            s3: None,
        }
    }

    /// The same backend with Azure's extras.
    #[cfg(feature = "backend-azblob")]
    pub(super) fn with_azure(mut self, extras: super::azure::AzureExtras) -> Self {
        self.azure = Some(extras);
        self
    }

    /// The same backend with S3's settings at hand.
    #[cfg(feature = "backend-s3")]
    pub(super) fn with_s3(mut self, extras: Arc<super::s3::S3Extras>) -> Self {
        self.s3 = Some(extras);
        self
    }

    /// After a write or rename to `path`: Azure blobs get their access tier.
    async fn placed(&self, path: &str) -> Result<()> {
        #[cfg(feature = "backend-azblob")]
        if let Some(azure) = &self.azure {
            return azure.placed(path).await;
        }
        let _ = path;
        Ok(())
    }

    /// Write bytes already in memory in one call, durably.
    async fn write_whole(&self, path: &str, bytes: Bytes) -> Result<u64> {
        let length = bytes.len() as u64;
        self.op.write(path, bytes).await.map_err(|e| self.place.error(e))?;
        self.sync_parent_dir(path).await?;
        self.placed(path).await?;
        Ok(length)
    }

    /// Make the directory entry of `path` durable (local filesystem only).
    async fn sync_parent_dir(&self, path: &str) -> Result<()> {
        let Some(local) = &self.local_root else {
            return Ok(());
        };
        let Some(dir) = local.root.join(path).parent().map(Path::to_path_buf) else {
            return Ok(());
        };
        let root = local.root.clone();
        let durable_dirs = local.durable_dirs.clone();
        tokio::task::spawn_blocking(move || sync_dir_chain(&root, &dir, &durable_dirs))
            .await
            .map_err(|e| Error::new(ErrorKind::BackendUnavailable, format!("fsync task failed: {e}")))?
    }
}

/// Fsync `dir`; the first time, also every ancestor up to `root`, since a
/// freshly created directory is itself an entry in its parent.
fn sync_dir_chain(root: &Path, dir: &Path, durable_dirs: &Mutex<HashSet<PathBuf>>) -> Result<()> {
    let known = durable_dirs.lock().map(|d| d.contains(dir)).unwrap_or(false);
    let mut current = Some(dir);
    while let Some(d) = current {
        fsync_dir(d)?;
        if known || d == root || !d.starts_with(root) {
            break;
        }
        current = d.parent();
    }
    if !known && let Ok(mut dirs) = durable_dirs.lock() {
        dirs.insert(dir.to_path_buf());
    }
    Ok(())
}

/// Numbers the files [`write_file_now`] writes beside their path, within this process.
static WRITES_BESIDE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Write `chunks` to a file at `path` (creating its directories if needed)
/// without fsyncing; on failure nothing is left at `path`.
fn write_file_now(path: &Path, chunks: &[Bytes]) -> Result<u64> {
    use std::io::Write;
    let failed = |e: std::io::Error| {
        Error::new(
            ErrorKind::BackendUnavailable,
            format!("cannot write {}: {e}", path.display()),
        )
        .with_source(e)
    };
    // Written beside and renamed into place: two writers of one path (two
    // flushers of the same content) never leave it half-written, whenever
    // either is killed.
    let beside = path.with_file_name(format!(
        ".{}.{}-{}.tmp",
        path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default(),
        std::process::id(),
        WRITES_BESIDE.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    let mut file = match std::fs::File::create(&beside) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(failed)?;
            }
            std::fs::File::create(&beside)
        }
        other => other,
    }
    .map_err(failed)?;
    let written = chunks.iter().try_for_each(|chunk| file.write_all(chunk));
    if let Err(e) = written.and_then(|()| std::fs::rename(&beside, path)) {
        let _ = std::fs::remove_file(&beside);
        return Err(failed(e));
    }
    Ok(chunks.iter().map(|c| c.len() as u64).sum())
}

/// Flush the filesystem holding `root`, data and metadata, in one call: what
/// `sync` does, for one filesystem.
fn sync_filesystem(root: &Path) -> Result<()> {
    let failed = |e: std::io::Error| {
        Error::new(
            ErrorKind::BackendUnavailable,
            format!("cannot sync {}: {e}", root.display()),
        )
        .with_source(e)
    };
    let dir = std::fs::File::open(root).map_err(failed)?;
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        nix::unistd::syncfs(dir.as_raw_fd()).map_err(|e| failed(e.into()))
    }
    #[cfg(not(target_os = "linux"))]
    {
        drop(dir);
        nix::unistd::sync();
        Ok(())
    }
}

fn fsync_dir(dir: &Path) -> Result<()> {
    std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(|e| {
        Error::new(
            ErrorKind::BackendUnavailable,
            format!("cannot fsync {}: {e}", dir.display()),
        )
        .with_source(e)
    })
}

/// A `Content-Disposition` that saves a download as `filename` (RFC 6266,
/// with an ASCII fallback and the UTF-8 name percent-encoded).
pub(super) fn content_disposition(filename: &str) -> String {
    let ascii: String = filename
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let encoded: String = filename
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'.' | b'-' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

/// An error in the middle of a read's stream: OpenDAL's own error inside
/// the I/O error becomes the store's one line.
fn read_error(place: &Place, err: std::io::Error) -> Error {
    let kind = err.kind();
    match err.into_inner().map(|inner| inner.downcast::<opendal::Error>()) {
        Some(Ok(opendal)) => place.error(*opendal),
        Some(Err(other)) => Error::new(
            ErrorKind::BackendUnavailable,
            format!("reading from {place} failed: {other}"),
        ),
        None if kind == std::io::ErrorKind::NotFound => {
            Error::new(ErrorKind::NotFound, format!("not found on {place}"))
        }
        None => Error::new(
            ErrorKind::BackendUnavailable,
            format!("reading from {place} failed: {kind}"),
        ),
    }
}

impl fmt::Display for OpendalBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.description)
    }
}

impl fmt::Debug for OpendalBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpendalBackend")
            .field("backend", &self.description)
            .finish()
    }
}

#[async_trait]
impl Backend for OpendalBackend {
    async fn write(&self, path: &str, mut body: ByteStream) -> Result<u64> {
        let Some(first) = body.next().await.transpose()? else {
            return self.write_whole(path, Bytes::new()).await;
        };
        let Some(second) = body.next().await.transpose()? else {
            // The whole body in one piece (small objects, manifests): one call instead of a writer.
            return self.write_whole(path, first).await;
        };
        let mut body = futures::stream::iter([Ok(first), Ok(second)]).chain(body).boxed();
        let mut writer = match self.multipart {
            Some((part_size, concurrency)) => self.op.writer_with(path).chunk(part_size).concurrent(concurrency).await,
            None => self.op.writer(path).await,
        }
        .map_err(|e| self.place.error(e))?;
        let mut written = 0u64;
        let mut write_behind = self
            .local_root
            .as_ref()
            .map(|local| WriteBehind::new(local.root.join(path)));
        while let Some(chunk) = body.next().await {
            let result = match chunk {
                Ok(bytes) => {
                    let length = bytes.len();
                    written += length as u64;
                    let result = writer.write(bytes).await.map_err(|e| self.place.error(e));
                    if let Some(write_behind) = write_behind.as_mut() {
                        write_behind.wrote(length);
                    }
                    result
                }
                Err(err) => Err(err),
            };
            if let Err(err) = result {
                // Abort frees a multipart upload's parts; if the store cannot be
                // reached now, `verify --repair` aborts it later.
                let _ = writer.abort().await;
                let _ = self.op.delete(path).await;
                return Err(err);
            }
        }
        if let Some(write_behind) = write_behind {
            write_behind.finish().await;
        }
        if let Err(err) = writer.close().await {
            let _ = writer.abort().await;
            return Err(self.place.error(err));
        }
        self.sync_parent_dir(path).await?;
        self.placed(path).await?;
        Ok(written)
    }

    async fn write_deferred(&self, path: &str, mut body: ByteStream) -> Result<u64> {
        // OpenDAL's fs writer fsyncs every file on close; deferring that is the
        // point here, so local files are written with std directly, each in one
        // blocking task (bulk imports write many small files).
        let Some(local) = &self.local_root else {
            return self.write(path, body).await;
        };
        let mut chunks = Vec::new();
        let mut held = 0;
        while let Some(chunk) = body.next().await {
            let chunk = chunk?;
            held += chunk.len();
            chunks.push(chunk);
            if held > DEFERRED_WRITE_LIMIT {
                // Too big to hold: write it durably now, which is more than asked.
                let body = futures::stream::iter(chunks.into_iter().map(Ok)).chain(body).boxed();
                return self.write(path, body).await;
            }
        }
        let file_path = local.root.join(path);
        tokio::task::spawn_blocking(move || write_file_now(&file_path, &chunks))
            .await
            .map_err(|e| Error::new(ErrorKind::BackendUnavailable, format!("write task failed: {e}")))?
    }

    async fn sync(&self) -> Result<()> {
        let Some(local) = &self.local_root else {
            return Ok(());
        };
        let root = local.root.clone();
        tokio::task::spawn_blocking(move || sync_filesystem(&root))
            .await
            .map_err(|e| Error::new(ErrorKind::BackendUnavailable, format!("sync task failed: {e}")))?
    }

    async fn read(&self, path: &str, range: Option<Range<u64>>) -> Result<ByteStream> {
        // Remote stores: one streamed request; or, for a range of two parts
        // or more, ranged requests of a part each, several at once (as
        // rclone's multi-thread download does), so the transfer is not bound
        // by one connection; they arrive in order. (Only for a known range:
        // an open one would need a HEAD first, whose refusal says less.)
        let reader = match (self.multipart, &range) {
            (Some((part_size, concurrency)), Some(range)) if range.end - range.start >= 2 * part_size as u64 => {
                self.op.reader_with(path).chunk(part_size).concurrent(concurrency)
            }
            (Some(_), _) => self.op.reader_with(path),
            (None, _) => self.op.reader_with(path).chunk(READ_CHUNK),
        }
        .await
        .map_err(|e| self.place.error(e))?;
        let range = range.unwrap_or(0..u64::MAX);
        let stream = if range.end == u64::MAX {
            reader.into_bytes_stream(range.start..).await
        } else {
            reader.into_bytes_stream(range).await
        }
        .map_err(|e| self.place.error(e))?;
        let place = self.place.clone();
        let mut stream = stream.map_err(move |e| read_error(&place, e)).boxed();
        // A remote read starts lazily: a missing object shows with its first
        // bytes, and is this call's error, as the contract says.
        let stream = match stream.next().await {
            None => futures::stream::empty().boxed(),
            Some(Err(e)) => return Err(e),
            Some(Ok(first)) => futures::stream::iter([Ok(first)]).chain(stream).boxed(),
        };
        Ok(match self.multipart {
            Some(_) => crate::body::coalesce(stream, READ_CHUNK),
            None => stream,
        })
    }

    async fn stat(&self, path: &str) -> Result<Option<u64>> {
        match self.op.stat(path).await {
            Ok(meta) => Ok(Some(meta.content_length())),
            Err(e) if e.kind() == opendal::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.place.error(e)),
        }
    }

    async fn modified(&self, path: &str) -> Result<Option<std::time::SystemTime>> {
        match self.op.stat(path).await {
            Ok(meta) => Ok(meta.last_modified().map(std::time::SystemTime::from)),
            Err(e) if e.kind() == opendal::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.place.error(e)),
        }
    }

    async fn delete(&self, path: &str) -> Result<()> {
        if self.delete_every_version(path).await? {
            return Ok(());
        }
        self.op.delete(path).await.map_err(|e| self.place.error(e))
    }

    async fn rename(&self, from: &str, to: &str) -> Result<()> {
        if self.op.info().capability().rename {
            self.op.rename(from, to).await.map_err(|e| self.place.error(e))?;
            return self.sync_parent_dir(to).await;
        }
        // No native rename: a copy inside the store where it can (S3), else a
        // streamed copy (the memory service); then drop the source.
        if self.op.info().capability().copy {
            self.op.copy(from, to).await.map_err(|e| self.place.error(e))?;
            self.placed(to).await?;
            return self.delete(from).await;
        }
        let body = self.read(from, None).await?;
        self.write(to, body).await?;
        self.delete(from).await
    }

    async fn list(&self, prefix: &str) -> Result<BoxStream<'static, Result<String>>> {
        let place = self.place.clone();
        let lister = match self.op.lister_with(prefix).recursive(true).await {
            Ok(lister) => lister,
            Err(e) if e.kind() == opendal::ErrorKind::NotFound => {
                return Ok(futures::stream::empty().boxed());
            }
            Err(e) => return Err(self.place.error(e)),
        };
        Ok(lister
            .try_filter_map(|entry| async move { Ok(entry.metadata().is_file().then(|| entry.path().to_owned())) })
            .map_err(move |e| place.error(e))
            .boxed())
    }

    fn capabilities(&self) -> Capabilities {
        let cap = self.op.info().capability();
        Capabilities {
            rename: cap.rename,
            // Local disks and remote stores keep bytes; the memory service does not.
            persistent: self.local_root.is_some() || self.multipart.is_some(),
            batch_sync: self.local_root.is_some(),
            presign: cap.presign || self.presigns_itself(),
            storage_classes: self.has_storage_classes(),
        }
    }

    async fn health(&self) -> Result<()> {
        self.op.check().await.map_err(|e| self.place.error(e))
    }

    async fn incomplete_uploads(&self, cutoff: std::time::SystemTime) -> Result<Vec<IncompleteUpload>> {
        self.native_incomplete_uploads(cutoff).await
    }

    async fn abort_upload(&self, upload: &IncompleteUpload) -> Result<()> {
        self.native_abort_upload(upload).await
    }

    async fn set_storage_class(&self, path: &str, class: &str) -> Result<()> {
        self.native_set_storage_class(path, class).await
    }

    async fn native_guard(&self) -> Result<Option<String>> {
        self.native_guard_named().await
    }

    fn server_side_encryption(&self) -> Option<String> {
        self.server_side_encryption_named()
    }

    async fn lock(&self, path: &str, protection: &Protection) -> Result<bool> {
        self.native_lock(path, protection).await
    }

    async fn restore(&self, path: &str, days: u32, tier: RestoreTier) -> Result<RestoreState> {
        self.native_restore(path, days, tier).await
    }

    async fn restore_status(&self, path: &str) -> Result<RestoreState> {
        self.native_restore_status(path).await
    }

    async fn presign(&self, request: &PresignRequest<'_>) -> Result<PresignedUrl> {
        #[cfg(feature = "backend-azblob")]
        if let Some(azure) = &self.azure {
            return azure.presign(request);
        }
        if !self.op.info().capability().presign {
            return Err(cannot_presign(self));
        }
        let presigned = match request.method {
            PresignMethod::Get => {
                let mut read = self.op.presign_read_with(request.path, request.expires);
                if let Some(content_type) = request.content_type {
                    read = read.override_content_type(content_type);
                }
                if let Some(filename) = request.filename {
                    read = read.override_content_disposition(&content_disposition(filename));
                }
                read.await
            }
            PresignMethod::Put => self.op.presign_write(request.path, request.expires).await,
        }
        .map_err(|e| self.place.error(e))?;
        Ok(PresignedUrl {
            method: presigned.method().to_string(),
            url: presigned.uri().to_string(),
            headers: presigned
                .header()
                .iter()
                .filter_map(|(name, value)| Some((name.to_string(), value.to_str().ok()?.to_owned())))
                .collect(),
        })
    }
}
