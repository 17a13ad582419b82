//! Moving a store to another backend, and bringing a plain bucket's objects
//! into coffer.

use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};

use super::{PutOptions, Store};
use crate::backend::{Backend, BlobCheck, copy_blob_verified, read_all};
use crate::catalog::{BlobRecord, Repair};
use crate::error::{Error, ErrorKind, Result};
use crate::layout;
use crate::progress::Progress;

/// Options of [`Store::migrate_to`].
#[derive(Clone)]
pub struct MigrateOptions {
    /// Files copied at once.
    pub jobs: usize,
    /// Told the total bytes first, then about bytes as they are copied.
    pub progress: Option<Arc<dyn Progress>>,
}

impl Default for MigrateOptions {
    fn default() -> Self {
        MigrateOptions {
            jobs: 4,
            progress: None,
        }
    }
}

/// What a migration did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct MigrateReport {
    /// The backend copied to, by name.
    pub target: String,
    /// Blobs copied and verified in this run.
    pub blobs_copied: u64,
    /// Blobs already on the target with the right size (an earlier run's).
    pub blobs_present: u64,
    /// Bytes copied in this run.
    pub bytes_copied: u64,
    /// Manifests copied (every version's, delete markers included).
    pub manifests_copied: u64,
    /// Manifests already on the target, byte for byte.
    pub manifests_present: u64,
    /// What could not be copied, with why; run again to retry them.
    pub failed: Vec<(String, String)>,
}

impl MigrateReport {
    /// True when everything is on the target.
    pub fn is_complete(&self) -> bool {
        self.failed.is_empty()
    }
}

/// Options of [`Store::import_backend`].
#[derive(Clone, Default)]
pub struct ImportBackendOptions {
    /// Only the source's objects under this folder (`a/b/`), which is left out of the keys.
    pub source_prefix: String,
    /// Put before each object's path to make its key.
    pub prefix: String,
    /// Objects stored at once (at least 1).
    pub jobs: usize,
}

impl Store {
    /// Copy everything the catalog references (every version's content and
    /// manifest, so every version with its metadata, tags, comments and
    /// hashes) to `target`, under the same paths. Each blob's SHA-256 is
    /// computed as it is copied and must match its address, and its size on
    /// the target must match; each manifest is read back. What the target
    /// holds already is skipped, so a run after an interruption resumes.
    /// The store itself is unchanged: point it at the target afterwards
    /// (the CLI's `migrate --switch`). Audited as `migrate`.
    pub async fn migrate_to(&self, target: &dyn Backend, options: &MigrateOptions) -> Result<MigrateReport> {
        target.health().await?;
        // Every version's objects are copied from the backend: the hot store's go there first.
        self.flush_hot().await?;
        let mut report = MigrateReport {
            target: target.to_string(),
            ..MigrateReport::default()
        };
        let blobs = self.catalog.blobs().await?;
        if let Some(progress) = &options.progress {
            progress.start(Some(blobs.iter().map(|b| b.size).sum()));
        }
        let copies = futures::stream::iter(blobs)
            .map(|blob| async move {
                let outcome = self.migrate_blob(&blob, target, options.progress.clone()).await;
                (blob, outcome)
            })
            .buffer_unordered(options.jobs.max(1));
        let outcomes: Vec<(BlobRecord, Result<bool>)> = copies.collect().await;
        for (blob, outcome) in outcomes {
            match outcome {
                Ok(true) => {
                    report.blobs_copied += 1;
                    report.bytes_copied += blob.size;
                }
                Ok(false) => report.blobs_present += 1,
                Err(e) if e.kind() == ErrorKind::BackendUnavailable => return Err(e),
                Err(e) => report.failed.push((blob.path.clone(), e.message().to_owned())),
            }
        }
        if let Some(progress) = &options.progress {
            progress.finish();
        }
        // Manifests after their blobs, as on any put.
        let refs = self.catalog.version_refs("").await?;
        let copies = futures::stream::iter(refs)
            .map(|r| async move {
                let path = layout::manifest_path(&r.key, &r.version_id);
                let outcome = self.migrate_manifest(&path, target).await;
                (path, outcome)
            })
            .buffer_unordered(options.jobs.max(1) * 4);
        let outcomes: Vec<(String, Result<bool>)> = copies.collect().await;
        for (path, outcome) in outcomes {
            match outcome {
                Ok(true) => report.manifests_copied += 1,
                Ok(false) => report.manifests_present += 1,
                Err(e) if e.kind() == ErrorKind::BackendUnavailable => return Err(e),
                Err(e) => report.failed.push((path, e.message().to_owned())),
            }
        }
        self.catalog
            .repair(
                &Repair::BytesMoved {
                    action: "migrate",
                    version: None,
                    detail: serde_json::json!({
                        "to": report.target, "blobs_copied": report.blobs_copied,
                        "bytes_copied": report.bytes_copied, "manifests_copied": report.manifests_copied,
                        "failed": report.failed.len(),
                    }),
                },
                &self.actor,
            )
            .await?;
        Ok(report)
    }

    /// Copy one blob unless the target has it; true when copied.
    async fn migrate_blob(
        &self,
        blob: &BlobRecord,
        target: &dyn Backend,
        progress: Option<Arc<dyn Progress>>,
    ) -> Result<bool> {
        let check = match blob.data_key {
            Some(_) => BlobCheck::Sealed {
                size: crate::crypto::segments::sealed_size(blob.size),
            },
            None => BlobCheck::Plain {
                sha256: &blob.sha256,
                size: blob.size,
            },
        };
        let stored_size = crate::crypto::segments::stored_size(blob.data_key.is_some(), blob.size);
        if target.stat(&blob.path).await? == Some(stored_size) {
            if let Some(progress) = &progress {
                progress.advance(blob.size);
            }
            return Ok(false);
        }
        copy_blob_verified(self.backend.as_ref(), target, &blob.path, check, progress).await?;
        Ok(true)
    }

    /// Copy one manifest unless the target has the same bytes; true when copied.
    async fn migrate_manifest(&self, path: &str, target: &dyn Backend) -> Result<bool> {
        let source = read_all(self.backend.as_ref(), path)
            .await
            .map_err(|e| match e.kind() {
                ErrorKind::NotFound => Error::new(
                    ErrorKind::IntegrityMismatch,
                    format!("{path} is missing (run verify --repair to write it again, then migrate again)"),
                ),
                _ => e,
            })?;
        match read_all(target, path).await {
            Ok(there) if there == source => return Ok(false),
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        target.write(path, crate::body::once(source.clone().into())).await?;
        if read_all(target, path).await? != source {
            return Err(Error::new(
                ErrorKind::IntegrityMismatch,
                format!("{path} reads back different from the target"),
            ));
        }
        Ok(true)
    }

    /// Store every object under `options.source_prefix` of `source` (any
    /// backend read as plain objects: a bucket another tool filled) as a new
    /// version of `options.prefix` + its path below the source prefix. An
    /// object whose path is no valid key, or that fails, is listed and the
    /// rest go on.
    pub async fn import_backend(
        &self,
        source: &dyn Backend,
        options: &ImportBackendOptions,
    ) -> Result<super::ImportReport> {
        let folder = options.source_prefix.trim_matches('/');
        let listing = if folder.is_empty() {
            "/".to_owned()
        } else {
            format!("{folder}/")
        };
        let paths: Vec<String> = source.list(&listing).await?.try_collect().await?;
        let outcomes: Vec<(String, Result<u64>)> = futures::stream::iter(paths)
            .map(|path| {
                let listing = &listing;
                async move {
                    let relative = path.trim_start_matches('/');
                    let relative = relative
                        .strip_prefix(listing.trim_start_matches('/'))
                        .unwrap_or(relative);
                    let key = format!("{}{relative}", options.prefix);
                    let outcome = async {
                        let body = source.read(&path, None).await?;
                        self.put_stream(&key, body, PutOptions::default()).await.map(|v| v.size)
                    }
                    .await;
                    (path, outcome)
                }
            })
            .buffer_unordered(options.jobs.max(1))
            .collect()
            .await;
        let mut report = super::ImportReport::default();
        for (path, outcome) in outcomes {
            match outcome {
                Ok(size) => {
                    report.files += 1;
                    report.bytes += size;
                }
                Err(e) => report.failed.push((path, e.message().to_owned())),
            }
        }
        Ok(report)
    }
}
