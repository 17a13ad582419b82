//! The put pipeline: check a put, take in and hash its bytes, write the
//! blob (unless stored already) and the manifest, and commit the version.

use std::sync::Arc;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};

use super::{PutOptions, Store};
use crate::body::ByteStream;
use crate::body::{self, BackgroundHasher, Digests, EtagLater};
use crate::catalog::{NewVersion, ObjectVersion, Precondition, Repair, VersionContent};
use crate::crypto::segments;
use crate::crypto::{BlobKey, DataKey};
use crate::error::{Error, ErrorKind, Result};
use crate::key::{ObjectKey, validate_content_type, validate_metadata, validate_tags};
use crate::layout;
use crate::progress::Progress;
use crate::time::Timestamp;
use crate::version::VersionId;

/// Bodies up to this size are held in memory and written straight to their
/// content address (or not at all, when identical content is stored); larger
/// ones stream through `staging/` and are renamed into place.
const SMALL_OBJECT_LIMIT: usize = body::CHUNK_SIZE;

/// When the bytes a put writes must be durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Durability {
    /// Before each write returns.
    Now,
    /// After the backend's next `sync` (bulk writes sync once for many).
    Deferred,
}

/// A put whose bytes and manifest are written, waiting for its catalog commit.
pub(super) struct Prepared {
    version: NewVersion,
    upload: Upload,
    /// Our copy at its content address, if we wrote one.
    promoted: Option<String>,
    manifest_path: Option<String>,
    /// A damaged stored copy of the same content, replaced once ours commits.
    damaged_copy: Option<String>,
    /// The storage class our copy was given, recorded once it commits.
    class: Option<String>,
    /// The data key our copy is sealed with, in an encrypted store.
    data_key: Option<BlobKey>,
    /// Whether the writes succeeded.
    written: Result<()>,
    /// The hot store takes the bytes (in memory) with the commit.
    hot: bool,
}

impl Prepared {
    fn new(version: NewVersion, upload: Upload, hot: bool) -> Prepared {
        Prepared {
            version,
            upload,
            promoted: None,
            manifest_path: None,
            damaged_copy: None,
            class: None,
            data_key: None,
            written: Ok(()),
            hot,
        }
    }

    /// Whether the put wrote to the backend (the hot store's puts write
    /// nothing there until they are flushed).
    pub(super) fn wrote_to_backend(&self) -> bool {
        !self.hot
    }

    /// Fail the put (its writes are cleaned up when it is finished).
    pub(super) fn fail(&mut self, error: Error) {
        self.written = Err(error);
    }
}

/// A put's key and settings, checked.
pub(super) struct CheckedPut {
    pub(super) key: ObjectKey,
    pub(super) content_type: String,
    pub(super) precondition: Precondition,
}

/// The bytes of a put, until the catalog knows whether it needs them.
pub(super) enum Upload {
    /// Streamed to a staging path (sealed with `sealed`'s data key, in an
    /// encrypted store).
    Staged {
        id: VersionId,
        path: String,
        sealed: Option<BlobKey>,
    },
    /// Held in memory (at most [`SMALL_OBJECT_LIMIT`] bytes).
    InMemory { id: VersionId, bytes: Bytes },
}

/// Content type when neither the caller nor the key's extension says.
const DEFAULT_CONTENT_TYPE: &str = "application/octet-stream";

impl Store {
    /// Everything of a put but the catalog commit: check the input, take in
    /// the bytes, and write the blob (unless stored already) and the manifest.
    /// With `Durability::Deferred` small bodies are durable only after the
    /// backend's next `sync`, which the caller runs before [`finish_upload`](Self::finish_upload).
    pub(super) async fn prepare_put(
        &self,
        key: &str,
        body: ByteStream,
        options: PutOptions,
        durability: Durability,
        etag: Option<EtagLater>,
    ) -> Result<Prepared> {
        let checked = self.check_put(key, &options).await?;
        // Before any byte is written: a store whose key is missing refuses.
        let encryption = self.encryption.require()?.cloned();
        let upload_id = VersionId::generate();
        let (head, rest) = body::split_head(body, SMALL_OBJECT_LIMIT).await?;
        let (digests, upload) = match rest {
            // Small enough to hold: hash it, and write it (if it is new) straight to its address.
            None => {
                let bytes = Bytes::from(head.concat());
                if let Some(progress) = &options.progress {
                    progress.start(Some(bytes.len() as u64));
                    progress.advance(bytes.len() as u64);
                    progress.finish();
                }
                (
                    body::digest(bytes.clone()).await?,
                    Upload::InMemory { id: upload_id, bytes },
                )
            }
            Some(rest) => {
                let body = futures::stream::iter(head.into_iter().map(Ok)).chain(rest).boxed();
                let staging = layout::staging_path(&upload_id);
                let sealing = match &encryption {
                    Some(encryption) => Some(encryption.new_key().await?),
                    None => None,
                };
                let key = sealing.as_ref().map(|(key, _)| key);
                let digests = self.stage(&staging, body, options.progress.clone(), key, etag).await?;
                (
                    digests,
                    Upload::Staged {
                        id: upload_id,
                        path: staging,
                        sealed: sealing.map(|(_, record)| record),
                    },
                )
            }
        };
        let storage_class = options.storage_class.clone();
        let hot = matches!(&upload, Upload::InMemory { bytes, .. } if self.goes_hot(bytes, storage_class.as_deref()));
        let version = self.put_version(checked, digests, options);
        if hot {
            // The commit takes the bytes: nothing is written before it.
            return Ok(Prepared::new(version, upload, true));
        }
        let prepared = self.write_upload(version, upload, durability).await;
        Ok(self.apply_storage_class(prepared, storage_class.as_deref()).await)
    }

    /// Give the blob a put wrote its storage class (content stored before
    /// keeps the class it has). A failure fails the put.
    pub(super) async fn apply_storage_class(&self, mut prepared: Prepared, class: Option<&str>) -> Prepared {
        if let (Some(class), Some(path), Ok(())) = (class, &prepared.promoted, &prepared.written) {
            match self.backend.set_storage_class(path, class).await {
                Ok(()) => prepared.class = Some(class.to_owned()),
                Err(e) => prepared.fail(e),
            }
        }
        prepared
    }

    /// Check a put's key and options, and its precondition against the
    /// current version, before any bytes move.
    pub(super) async fn check_put(&self, key: &str, options: &PutOptions) -> Result<CheckedPut> {
        let key = ObjectKey::new(key)?;
        validate_metadata(&options.metadata)?;
        validate_tags(&options.tags)?;
        let content_type = match &options.content_type {
            Some(content_type) => {
                validate_content_type(content_type)?;
                content_type.clone()
            }
            None => guess_content_type(&key),
        };
        // Before the content is looked up: a put of stored bytes refuses alike.
        if options.storage_class.is_some() && !self.backend.capabilities().storage_classes {
            return Err(crate::backend::no_storage_classes(&*self.backend));
        }
        if let Some(retention) = options.retention {
            retention.check_requested(Timestamp::now())?;
        }
        let precondition = options.precondition()?;
        // The catalog checks the condition again when it commits.
        self.check_precondition(&key, &precondition).await?;
        Ok(CheckedPut {
            key,
            content_type,
            precondition,
        })
    }

    /// Stream a large body to `staging`, hashing it on the way (and sealing
    /// it with `key`, in an encrypted store).
    async fn stage(
        &self,
        staging: &str,
        body: ByteStream,
        progress: Option<Arc<dyn Progress>>,
        key: Option<&DataKey>,
        etag: Option<EtagLater>,
    ) -> Result<Digests> {
        let hasher = match etag {
            Some(told) => BackgroundHasher::spawn_told(told),
            None => BackgroundHasher::spawn(true),
        };
        let mut body = hasher.tap(body);
        if let Some(progress) = progress.clone() {
            progress.start(None);
            body = body
                .inspect_ok(move |chunk| progress.advance(chunk.len() as u64))
                .boxed();
        }
        let written = match key {
            Some(key) => match segments::seal_stream(key, body) {
                Ok(sealed) => self.backend.write(staging, sealed).await,
                Err(e) => Err(e),
            },
            None => self.backend.write(staging, body).await,
        };
        if let Some(progress) = &progress {
            progress.finish();
        }
        let digests = hasher.finish().await;
        let uploaded = match (written, digests) {
            (Ok(written), Ok(digests)) if written == segments::stored_size(key.is_some(), digests.size) => Ok(digests),
            (Ok(_), Ok(_)) => Err(Error::new(
                ErrorKind::Io,
                "the upload's length and hashed length differ",
            )),
            (Err(e), _) | (_, Err(e)) => Err(e),
        };
        if uploaded.is_err() {
            let _ = self.backend.delete(staging).await;
        }
        uploaded
    }

    /// Put an upload's bytes and manifest in place: reuse the stored copy of
    /// identical content if there is one, else move the upload to its content
    /// address. What was written is noted, so that [`finish_upload`](Self::finish_upload)
    /// can remove it if the catalog does not take it.
    pub(super) async fn write_upload(&self, version: NewVersion, upload: Upload, durability: Durability) -> Prepared {
        let mut prepared = Prepared::new(version, upload, false);
        let VersionContent::Blob(blob) = &prepared.version.content else {
            prepared.written = Err(Error::new(ErrorKind::InvalidInput, "an upload needs content"));
            return prepared;
        };
        let sha256 = blob.sha256.clone();
        let stored = match self.catalog.blob(&sha256).await {
            Ok(stored) => stored,
            Err(e) => {
                prepared.written = Err(e);
                return prepared;
            }
        };
        // A damaged stored copy is replaced by ours (the catalog heals the blob).
        prepared.damaged_copy = stored.as_ref().filter(|b| b.damaged.is_some()).map(|b| b.path.clone());
        let needs_blob = stored.is_none() || prepared.damaged_copy.is_some();
        // The data key the manifest names: the one our copy is sealed with,
        // or the stored copy's.
        let (sealing_key, data_key) = match needs_blob {
            true => match self.fresh_blob_key(&prepared.upload).await {
                Ok(fresh) => fresh,
                Err(e) => {
                    prepared.written = Err(e);
                    return prepared;
                }
            },
            false => match stored
                .as_ref()
                .and_then(|b| b.data_key.as_deref())
                .map(BlobKey::from_text)
            {
                Some(Err(e)) => {
                    prepared.written = Err(e);
                    return prepared;
                }
                found => (None, found.and_then(Result::ok)),
            },
        };
        // The blob and the manifest are independent: write both at once.
        let promote = async {
            match needs_blob {
                true => self
                    .promote(&prepared.upload, &sha256, durability, sealing_key.as_ref())
                    .await
                    .map(Some),
                false => Ok(None),
            }
        };
        let manifest = self.write_manifest(&prepared.version, data_key.as_ref(), durability);
        let (blob, manifest) = tokio::join!(promote, manifest);
        if needs_blob {
            prepared.data_key = data_key;
        }
        prepared.promoted = blob.as_ref().ok().cloned().flatten();
        prepared.manifest_path = manifest.as_ref().ok().cloned();
        prepared.written = blob.and(manifest).map(|_| ());
        prepared
    }

    /// Commit a prepared upload to the catalog, then remove whatever the
    /// catalog did not take (our copy of content it already had, or all of it
    /// on failure).
    pub(super) async fn finish_upload(&self, prepared: Prepared) -> Result<ObjectVersion> {
        if let (true, Upload::InMemory { id, bytes }) = (prepared.hot, &prepared.upload) {
            prepared.written?;
            return self.commit_hot(prepared.version, id, bytes.clone()).await;
        }
        let Prepared {
            version,
            upload,
            mut promoted,
            manifest_path,
            damaged_copy,
            class,
            mut data_key,
            written,
            hot: _,
        } = prepared;
        let outcome = async {
            written?;
            match self
                .commit_with_blob(&version, promoted.as_deref(), data_key.as_ref())
                .await
            {
                // The stored copy we meant to reuse was deleted in between: use ours.
                Err(e) if e.kind() == ErrorKind::NotFound && promoted.is_none() => {
                    let VersionContent::Blob(blob) = &version.content else {
                        return Err(e);
                    };
                    let (sealing_key, fresh) = self.fresh_blob_key(&upload).await?;
                    promoted = Some(
                        self.promote(&upload, &blob.sha256, Durability::Now, sealing_key.as_ref())
                            .await?,
                    );
                    if fresh.is_some() {
                        // The manifest named the other copy's data key.
                        self.write_manifest(&version, fresh.as_ref(), Durability::Now).await?;
                    }
                    data_key = fresh;
                    self.commit_with_blob(&version, promoted.as_deref(), data_key.as_ref())
                        .await
                }
                other => other,
            }
        }
        .await;
        // Our upload is unused unless the catalog took our promoted copy.
        let upload_in_use =
            matches!((&outcome, &promoted), (Ok(committed), Some(path)) if committed.blob_path.as_ref() == Some(path));
        if !upload_in_use {
            match (&promoted, &upload) {
                (Some(path), _) | (None, Upload::Staged { path, .. }) => {
                    let _ = self.backend.delete(path).await;
                }
                (None, Upload::InMemory { .. }) => {}
            }
        }
        if let (Err(_), Some(path)) = (&outcome, &manifest_path) {
            let _ = self.backend.delete(path).await;
        }
        if let (true, Some(damaged)) = (upload_in_use, &damaged_copy) {
            let _ = self.backend.delete(damaged).await;
        }
        if let (Ok(committed), true, Some(class)) = (&outcome, upload_in_use, class) {
            // Lifecycle transitions read where content lies: a failure here
            // only means a later transition to this class is tried again.
            let detail = serde_json::json!({ "to": class, "sha256": committed.sha256 });
            let _ = self.record_placement("put", committed, Some(class), detail).await;
        }
        if let Ok(committed) = &outcome {
            self.events_written(&version.key).await;
            self.guard_if_protected(committed).await;
        }
        outcome
    }

    /// Lock a new protected version's objects on a store with a guard. The
    /// version is committed either way: a lock that fails here is set again
    /// by `verify --repair`.
    async fn guard_if_protected(&self, version: &ObjectVersion) {
        if version.protection().is_protected(crate::time::Timestamp::now()) {
            let _ = self.guard(version).await;
        }
    }

    /// Record that `version`'s content now lies in `placement` (`cold`, a
    /// storage class, or `None`: where a put leaves it), audited as `action`
    /// with `detail`.
    pub(super) async fn record_placement(
        &self,
        action: &'static str,
        version: &ObjectVersion,
        placement: Option<String>,
        detail: serde_json::Value,
    ) -> Result<()> {
        let Some(sha256) = version.sha256.clone() else {
            return Ok(());
        };
        let placed = Repair::Placed {
            action,
            detail,
            sha256,
            placement,
            version: (version.key.clone(), version.version_id.clone()),
        };
        self.catalog.repair(&placed, &self.actor).await
    }

    /// Commit a version whose content is already stored (a copy or a delete
    /// marker): its manifest first, then the catalog; the manifest goes again
    /// if the catalog refuses.
    pub(super) async fn commit_described(&self, version: NewVersion) -> Result<ObjectVersion> {
        let data_key = match &version.content {
            VersionContent::Blob(blob) => self.blob_key(&blob.sha256).await?,
            VersionContent::DeleteMarker => None,
        };
        let manifest_path = self
            .write_manifest(&version, data_key.as_ref(), Durability::Now)
            .await?;
        let key = version.key.clone();
        let outcome = self.catalog.commit_version(version).await;
        match &outcome {
            Ok(committed) => {
                self.events_written(&key).await;
                self.guard_if_protected(committed).await;
            }
            Err(_) => {
                let _ = self.backend.delete(&manifest_path).await;
            }
        }
        outcome
    }

    async fn commit_with_blob(
        &self,
        version: &NewVersion,
        new_path: Option<&str>,
        data_key: Option<&BlobKey>,
    ) -> Result<ObjectVersion> {
        let mut version = version.clone();
        if let VersionContent::Blob(blob) = &mut version.content {
            blob.new_path = new_path.map(str::to_owned);
            blob.data_key = new_path.and(data_key).map(BlobKey::to_text);
        }
        self.catalog.commit_version(version).await
    }

    /// The data key a new copy of `upload` is sealed with, in an encrypted
    /// store: a staged upload's own (sealed as it streamed in), or a fresh
    /// one for bytes in memory (with the key itself, to seal them).
    async fn fresh_blob_key(&self, upload: &Upload) -> Result<(Option<DataKey>, Option<BlobKey>)> {
        match upload {
            Upload::Staged { sealed, .. } => Ok((None, sealed.clone())),
            Upload::InMemory { .. } => match self.encryption.require()? {
                Some(encryption) => {
                    let (key, record) = encryption.new_key().await?;
                    Ok((Some(key), Some(record)))
                }
                None => Ok((None, None)),
            },
        }
    }

    /// Put the upload's bytes at their content address (bytes in memory
    /// sealed with `key`, in an encrypted store).
    async fn promote(
        &self,
        upload: &Upload,
        sha256: &str,
        durability: Durability,
        key: Option<&DataKey>,
    ) -> Result<String> {
        let (Upload::Staged { id, .. } | Upload::InMemory { id, .. }) = upload;
        let path = layout::blob_path(sha256, id);
        match upload {
            // A staged upload was written durably; the rename makes its new name durable.
            Upload::Staged { path: staging, .. } => self.backend.rename(staging, &path).await?,
            Upload::InMemory { bytes, .. } => {
                let bytes = match key {
                    Some(key) => Bytes::from(segments::seal_bytes(key, bytes)?),
                    None => bytes.clone(),
                };
                self.write_object(&path, bytes, durability).await?;
            }
        }
        Ok(path)
    }

    pub(super) async fn write_object(&self, path: &str, bytes: Bytes, durability: Durability) -> Result<u64> {
        match durability {
            Durability::Now => self.backend.write(path, body::once(bytes)).await,
            Durability::Deferred => self.backend.write_deferred(path, body::once(bytes)).await,
        }
    }

    async fn check_precondition(&self, key: &ObjectKey, precondition: &Precondition) -> Result<()> {
        if *precondition == Precondition::None {
            return Ok(());
        }
        let live = self.catalog.version(key, None).await?.filter(|v| !v.is_delete_marker);
        precondition.check(key, live.as_ref().map(|v| v.etag.as_deref()))
    }
}

fn guess_content_type(key: &ObjectKey) -> String {
    mime_guess::from_path(key.as_str())
        .first_raw()
        .unwrap_or(DEFAULT_CONTENT_TYPE)
        .to_owned()
}
