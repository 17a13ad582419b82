//! The `Backend` port: moving bytes to and from an object store.
//!
//! Backends know nothing of keys or versions: the store hands them paths it
//! made itself (`staging/...`, `blobs/...`, `manifests/...`), never a user's
//! key, so nothing a user types can address a path on the backend.
//!
//! For whoever writes or composes a backend: the [`Backend`] trait and its
//! contract, [`Capabilities`], the OpenDAL adapter ([`OpendalBackend`]: local
//! disk, memory, S3, Azure) and the layers over a backend (the spool that
//! takes writes while a store is down, the hot and cold tiers).
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> coffer::Result<()> {
//! use coffer::backend::{Backend, OpendalBackend};
//! use futures::TryStreamExt;
//!
//! let backend = OpendalBackend::memory()?;
//! let body = futures::stream::once(async { Ok(bytes::Bytes::from("hello")) });
//! backend.write("blobs/greeting", Box::pin(body)).await?;
//! let read: Vec<bytes::Bytes> = backend.read("blobs/greeting", None).await?.try_collect().await?;
//! assert_eq!(read.concat(), b"hello");
//! # Ok(())
//! # }
//! ```

use std::fmt::{Debug, Display};
use std::ops::Range;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;

use crate::body::ByteStream;
use crate::error::{Error, ErrorKind, Result};
use crate::retention::Protection;

#[cfg(feature = "backend-azblob")]
mod azure;
mod errors;
mod native;
mod opendal;
mod restore;
#[cfg(feature = "backend-s3")]
mod s3;
mod spool;
mod tiered;

#[cfg(feature = "backend-azblob")]
pub use self::azure::{ACCESS_TIERS, AzureConfig};
pub use self::errors::DEFAULT_BACKEND_WAIT;
pub(crate) use self::errors::parse_wait;
pub use self::opendal::OpendalBackend;
pub use self::restore::{RestoreState, RestoreTier};
#[cfg(all(feature = "backend-s3", any(test, feature = "testkit")))]
pub(crate) use self::s3::xml_text as s3_xml_text;
#[cfg(feature = "backend-s3")]
pub use self::s3::{DEFAULT_PART_CONCURRENCY, DEFAULT_PART_SIZE_MIB, S3Config};
pub use self::spool::{DrainReport, SpoolBackend, SpoolStatus};
pub use self::tiered::{Tier, TieredBackend};
pub use crate::store::open_backend;

/// What a backend can do natively. Code branches on these, never on a backend's name.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Capabilities {
    /// Renames are cheap and atomic (otherwise they are a copy and a delete).
    pub rename: bool,
    /// Bytes survive the process (false for the in-memory backend).
    pub persistent: bool,
    /// The backend can hand out presigned URLs.
    pub presign: bool,
    /// Many [`Backend::write_deferred`] writes and one [`Backend::sync`]
    /// cost less than durable writes one by one (local disks); false where
    /// every write is durable on its own.
    pub batch_sync: bool,
    /// [`Backend::set_storage_class`] works (S3 classes, Azure tiers).
    pub storage_classes: bool,
}

/// A multipart upload that was begun and never completed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct IncompleteUpload {
    /// The backend path it was for.
    pub path: String,
    /// The store's id of the upload.
    pub upload_id: String,
}

/// What a presigned URL lets its holder do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PresignMethod {
    /// Read the object (`GET`).
    Get,
    /// Upload the object (`PUT`).
    Put,
}

impl PresignMethod {
    /// The HTTP method the URL must be used with.
    pub fn as_str(self) -> &'static str {
        match self {
            PresignMethod::Get => "GET",
            PresignMethod::Put => "PUT",
        }
    }
}

/// A presigned request asked of a backend.
#[derive(Debug, Clone)]
pub struct PresignRequest<'a> {
    /// The backend path.
    pub path: &'a str,
    /// Read or upload.
    pub method: PresignMethod,
    /// How long the URL stays valid.
    pub expires: Duration,
    /// For reads: the `Content-Type` the response carries.
    pub content_type: Option<&'a str>,
    /// For reads: the file name a browser saves the download as.
    pub filename: Option<&'a str>,
}

/// A URL that grants one kind of access to one object for a limited time,
/// without credentials.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PresignedUrl {
    /// The HTTP method to use it with.
    pub method: String,
    /// The URL.
    pub url: String,
    /// Headers the request must carry (Azure's `x-ms-blob-type` for uploads ...).
    pub headers: Vec<(String, String)>,
}

/// Moves bytes. Implemented once per kind of storage; the store does the rest.
///
/// # Contract
/// - `write` consumes the whole body and returns its length only once the bytes
///   and the path's directory entry are durable. If the body yields an error, the
///   write fails with that error and the path is left absent or partial; the
///   caller deletes it.
/// - `read` streams the object, or the half-open byte `range` of it. A missing
///   path is an error of kind `NotFound`.
/// - `stat` returns the size of the object, or `None` if it does not exist.
/// - `delete` is idempotent: deleting a missing path succeeds.
/// - `rename` moves an object durably; `to` is replaced if it exists.
/// - `list` yields every object path under `prefix` (which ends in `/`), in any order.
/// - `write_deferred` writes like `write` but need not wait for durability:
///   the bytes and the path's directory entry are durable once a later `sync`
///   returns. Bulk writers (import) write many files this way and sync once.
///   Backends whose writes are durable when acknowledged keep the defaults.
/// - `health` answers whether the storage can be reached right now.
/// - `incomplete_uploads` and `abort_upload` find and free the parts of
///   multipart uploads that never completed (a write cut off by a crash or
///   an outage); backends without such leftovers keep the defaults.
/// - `set_storage_class` changes an object's class or tier in place, or
///   fails with `Unsupported` (the default).
/// - `presign` hands out a URL for one path, or fails with `Unsupported`
///   where the backend cannot (the default; `capabilities().presign` tells).
/// - `native_guard` names the store's own guard against removing locked
///   objects (S3 Object Lock), and `lock` sets it on one object; stores
///   without one keep the defaults (no guard; locking does nothing), and
///   the catalog's protection is all there is.
/// - `restore` starts bringing an archived object back to a readable
///   class, and `restore_status` follows it; objects of stores without
///   archive classes are never archived (the defaults).
#[async_trait]
pub trait Backend: Send + Sync + Debug + Display {
    /// Write `body` to `path`, durably; returns the number of bytes written.
    async fn write(&self, path: &str, body: ByteStream) -> Result<u64>;
    /// Stream the object at `path`, or the byte `range` of it.
    async fn read(&self, path: &str, range: Option<Range<u64>>) -> Result<ByteStream>;
    /// The size of the object at `path`, if it exists.
    async fn stat(&self, path: &str) -> Result<Option<u64>>;
    /// When the object at `path` was last written, if it exists and the
    /// store tells (verify's age check of files without an id in their name).
    async fn modified(&self, path: &str) -> Result<Option<std::time::SystemTime>> {
        let _ = path;
        Ok(None)
    }
    /// Remove the object at `path`; succeeds if it is already gone.
    async fn delete(&self, path: &str) -> Result<()>;
    /// Move the object at `from` to `to`, durably.
    async fn rename(&self, from: &str, to: &str) -> Result<()>;
    /// Write `body` to `path`, durable only after the next [`sync`](Self::sync).
    async fn write_deferred(&self, path: &str, body: ByteStream) -> Result<u64> {
        self.write(path, body).await
    }
    /// Make everything written with [`write_deferred`](Self::write_deferred) so far durable.
    async fn sync(&self) -> Result<()> {
        Ok(())
    }
    /// Every object path under `prefix`.
    async fn list(&self, prefix: &str) -> Result<BoxStream<'static, Result<String>>>;
    /// What this backend can do natively.
    fn capabilities(&self) -> Capabilities;
    /// Check that the storage answers.
    async fn health(&self) -> Result<()>;
    /// Multipart uploads begun before `cutoff` and never finished: their
    /// parts take space on stores that keep them (S3). Empty elsewhere.
    async fn incomplete_uploads(&self, cutoff: std::time::SystemTime) -> Result<Vec<IncompleteUpload>> {
        let _ = cutoff;
        Ok(Vec::new())
    }
    /// Abort an incomplete multipart upload, freeing its parts.
    async fn abort_upload(&self, upload: &IncompleteUpload) -> Result<()> {
        let _ = upload;
        Ok(())
    }
    /// Give the object at `path` a storage class (S3: `STANDARD_IA`,
    /// `GLACIER` ...; Azure: the access tier `Hot`, `Cool`, `Cold`,
    /// `Archive`). Backends without classes refuse with `Unsupported`.
    async fn set_storage_class(&self, path: &str, class: &str) -> Result<()> {
        let _ = (path, class);
        Err(no_storage_classes(self))
    }
    /// A URL for `request.path` that works without credentials until it expires.
    async fn presign(&self, request: &PresignRequest<'_>) -> Result<PresignedUrl> {
        let _ = request;
        Err(cannot_presign(self))
    }
    /// The store's own guard that refuses to remove locked objects, named
    /// for `info` (`S3 Object Lock on bucket b`); `None` where protection is
    /// coffer's alone.
    async fn native_guard(&self) -> Result<Option<String>> {
        Ok(None)
    }
    /// The encryption the store itself applies to what it holds (S3's
    /// server-side encryption, Azure Storage's), described; `None` where it
    /// applies none that coffer knows of (local disk).
    fn server_side_encryption(&self) -> Option<String> {
        None
    }
    /// Make the store itself keep the object at `path` as `protection`
    /// says (a retention until a date, a legal hold), so that a raw client
    /// of the store cannot remove it either. Lowers a lock coffer set before
    /// where the store allows. Does nothing where the store has no guard.
    /// Returns whether anything had to be changed.
    async fn lock(&self, path: &str, protection: &Protection) -> Result<bool> {
        let _ = (path, protection);
        Ok(false)
    }
    /// Start bringing the archived object at `path` back, readable for
    /// `days` (S3's temporary copy) at the speed of `tier`: the caller has
    /// seen it archived (`restore_status`). Returns where it stands then.
    async fn restore(&self, path: &str, days: u32, tier: RestoreTier) -> Result<RestoreState> {
        let _ = (days, tier);
        self.restore_status(path).await
    }
    /// Where the object at `path` stands between its archive class and
    /// being readable.
    async fn restore_status(&self, path: &str) -> Result<RestoreState> {
        let _ = path;
        Ok(RestoreState::NotArchived)
    }
}

/// The whole object at `path`, in memory (for manifests and other small files).
pub(crate) async fn read_all(backend: &dyn Backend, path: &str) -> Result<Vec<u8>> {
    use futures::TryStreamExt;
    let chunks: Vec<Bytes> = backend.read(path, None).await?.try_collect().await?;
    Ok(chunks.concat())
}

/// What a copied blob must be: its content's SHA-256 and length, or, for
/// a sealed (encrypted) blob, only its stored length: its segments
/// authenticate themselves on every read.
#[derive(Debug, Clone, Copy)]
pub(crate) enum BlobCheck<'a> {
    /// Stored as it is.
    Plain {
        /// The content's SHA-256.
        sha256: &'a str,
        /// Its length.
        size: u64,
    },
    /// Sealed: `size` bytes stored.
    Sealed {
        /// The stored length.
        size: u64,
    },
}

/// The bytes `range` of the object at `path`, which must hold them.
pub(crate) async fn read_range(backend: &dyn Backend, path: &str, range: Range<u64>) -> Result<Vec<u8>> {
    use futures::TryStreamExt;
    let chunks: Vec<Bytes> = backend.read(path, Some(range)).await?.try_collect().await?;
    Ok(chunks.concat())
}

/// Copy the blob at `path` from `source` to `target`, checking that the
/// bytes sent hash to the expected SHA-256 (computed on the way; a sealed
/// blob is not hashed) and that the expected length arrived. Archive classes
/// (GLACIER, Azure Archive) cannot be read back at once, hence no read-back.
/// A copy that does not match is removed again.
pub(crate) async fn copy_blob_verified(
    source: &dyn Backend,
    target: &dyn Backend,
    path: &str,
    check: BlobCheck<'_>,
    progress: Option<std::sync::Arc<dyn crate::progress::Progress>>,
) -> Result<()> {
    let (sha256, size) = match check {
        BlobCheck::Plain { sha256, size } => (Some(sha256), size),
        BlobCheck::Sealed { size } => (None, size),
    };
    use futures::{StreamExt, TryStreamExt};
    let hasher = crate::body::BackgroundHasher::spawn(false);
    let mut body = hasher.tap(source.read(path, None).await?);
    if let Some(progress) = progress {
        body = body
            .inspect_ok(move |chunk| progress.advance(chunk.len() as u64))
            .boxed();
    }
    let written = target.write(path, body).await?;
    let digests = hasher.finish().await?;
    let arrived = target.stat(path).await?;
    if sha256.is_some_and(|sha256| digests.sha256 != sha256) || written != size || arrived != Some(size) {
        let _ = target.delete(path).await;
        return Err(Error::new(
            ErrorKind::IntegrityMismatch,
            format!(
                "{path} did not arrive intact on {target} (SHA-256 {} of {written} bytes sent, {arrived:?} there; {} of {size} expected)",
                digests.sha256,
                sha256.unwrap_or("sealed content")
            ),
        ));
    }
    Ok(())
}

/// The HTTP client of the calls remote backends make beside OpenDAL's
/// (bucket creation, multipart cleanup, storage classes, Azure tiers):
/// built on first use, so opening a store does not pay for it, and shared.
#[cfg(any(feature = "backend-s3", feature = "backend-azblob"))]
pub(crate) fn side_http() -> Result<&'static reqwest::Client> {
    static CLIENT: std::sync::OnceLock<reqwest::Client> = std::sync::OnceLock::new();
    if let Some(client) = CLIENT.get() {
        return Ok(client);
    }
    let client = reqwest::Client::builder().build().map_err(|e| {
        Error::new(
            ErrorKind::BackendUnavailable,
            format!("cannot set up an HTTP client: {e}"),
        )
    })?;
    Ok(CLIENT.get_or_init(|| client))
}

/// The error of a backend without storage classes.
pub(crate) fn no_storage_classes(backend: &(impl Display + ?Sized)) -> Error {
    Error::new(
        ErrorKind::Unsupported,
        format!("{backend} has no storage classes: S3 and Azure stores have them"),
    )
}

/// The error of a backend that cannot hand out presigned URLs.
pub(crate) fn cannot_presign(backend: &(impl Display + ?Sized)) -> Error {
    Error::new(
        ErrorKind::Unsupported,
        format!(
            "{backend} cannot hand out presigned URLs: S3 and Azure stores can (`coffer url` links through `coffer serve` instead)"
        ),
    )
}
