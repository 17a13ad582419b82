//! What only object stores give meaning to: presigned URLs (and committing
//! what was uploaded through one), the fallback spool, the cold tier, and
//! asking the backend whether it answers.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::Store;
use super::write::{Durability, Upload};
use crate::backend::{
    Capabilities, DrainReport, PresignMethod, PresignRequest, PresignedUrl, SpoolBackend, SpoolStatus, Tier,
    TieredBackend,
};
use crate::body::BackgroundHasher;
use crate::catalog::ObjectVersion;
use crate::error::{Error, Result};
use crate::layout;
use crate::store::PutOptions;
use crate::time::Timestamp;
use crate::version::VersionId;

/// The longest a presigned URL may stay valid: 7 days, S3's limit, on every backend.
pub const MAX_PRESIGN_EXPIRY: Duration = Duration::from_secs(7 * 24 * 3600);

/// A URL to upload the next version of a key, and the upload's id, which
/// [`Store::commit_upload`] turns into the version once the bytes are there.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PresignedUpload {
    /// The key the upload is for.
    pub key: String,
    /// The upload's id.
    pub upload_id: VersionId,
    /// The URL, its method and the headers it needs.
    #[serde(flatten)]
    pub url: PresignedUrl,
    /// When the URL stops working.
    pub expires_at: Timestamp,
}

/// Whether the backend answers, and what it is.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Health {
    /// The backend, by name (never with secrets).
    pub backend: String,
    /// What it can do natively.
    pub capabilities: Capabilities,
    /// Whether it answered.
    pub ok: bool,
    /// Why not, when it did not.
    pub error: Option<String>,
    /// The kind of that error: an outage (`BackendUnavailable`), refused
    /// credentials (`Unauthorized`), a missing bucket (`InvalidInput`) ...
    #[serde(skip)]
    pub error_kind: Option<crate::ErrorKind>,
    /// How long it took to answer (or fail), in milliseconds.
    pub latency_ms: f64,
}

/// What a tier move did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TierMove {
    /// The key.
    pub key: String,
    /// The version (unchanged).
    pub version_id: VersionId,
    /// Where its content is now.
    pub tier: Tier,
    /// False when it was there already.
    pub moved: bool,
    /// Bytes moved.
    pub size: u64,
}

/// A background task of the store (a spool drain, a poll of pending
/// restores); dropping it stops the task.
#[derive(Debug)]
pub struct SyncHandle {
    pub(super) task: tokio::task::JoinHandle<()>,
}

impl Drop for SyncHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub(super) fn check_expiry(expires: Duration) -> Result<()> {
    if expires < Duration::from_secs(1) || expires > MAX_PRESIGN_EXPIRY {
        return Err(Error::invalid_input(format!(
            "a presigned URL must expire in 1 to {} seconds (7 days)",
            MAX_PRESIGN_EXPIRY.as_secs()
        )));
    }
    Ok(())
}

impl Store {
    /// A URL that reads a version of `key` (the latest when `version_id` is
    /// `None`) without credentials for `expires`, with the version's content
    /// type and its key's last segment as the download's name where the
    /// backend can set them. Refused with `Unsupported` by backends that
    /// cannot presign (local disk). With read auditing on, handing out the
    /// URL is recorded as a read.
    pub async fn presign_get(
        &self,
        key: &str,
        version_id: Option<&VersionId>,
        expires: Duration,
    ) -> Result<PresignedUrl> {
        check_expiry(expires)?;
        self.refuse_presign_if_encrypted()?;
        let version = self.head(key, version_id).await?;
        // The URL reads the backend's copy: the hot store's goes there first.
        self.flush_hot().await?;
        let path = super::stored_content(&version)?.0.to_owned();
        let filename = version.key.as_str().rsplit('/').next().unwrap_or_default().to_owned();
        let url = self
            .backend
            .presign(&PresignRequest {
                path: &path,
                method: PresignMethod::Get,
                expires,
                content_type: version.content_type.as_deref(),
                filename: Some(&filename),
            })
            .await?;
        if self.audit_reads {
            let detail =
                serde_json::json!({ "size": version.size, "presigned": true, "expires_in": expires.as_secs() });
            self.catalog
                .record_read(&version.key, &version.version_id, &self.actor, detail)
                .await?;
        }
        Ok(url)
    }

    /// A URL to upload the bytes of the next version of `key` for
    /// `expires`. The bytes land in the store's staging area; they become a
    /// version (hashed, deduplicated, audited, with events) only when
    /// [`commit_upload`](Self::commit_upload) is called with the upload id.
    /// An upload never committed is an orphan that `verify --repair` removes
    /// once it is older than its `--min-age`.
    pub async fn presign_put(&self, key: &str, expires: Duration) -> Result<PresignedUpload> {
        check_expiry(expires)?;
        self.refuse_presign_if_encrypted()?;
        let key = crate::key::ObjectKey::new(key)?;
        let upload_id = VersionId::generate();
        let path = layout::staging_path(&upload_id);
        let url = self
            .backend
            .presign(&PresignRequest {
                path: &path,
                method: PresignMethod::Put,
                expires,
                content_type: None,
                filename: None,
            })
            .await?;
        let expires_at = Timestamp::from_micros(Timestamp::now().as_micros() + expires.as_micros() as i64);
        Ok(PresignedUpload {
            key: key.to_string(),
            upload_id,
            url,
            expires_at,
        })
    }

    /// Make the bytes uploaded through [`presign_put`](Self::presign_put)'s
    /// URL the new version of `key`: they are read back and hashed, then
    /// stored like any put's (once, by content) and committed with `options`.
    /// An upload id with nothing uploaded is `NotFound`.
    pub async fn commit_upload(&self, key: &str, upload_id: &VersionId, options: PutOptions) -> Result<ObjectVersion> {
        self.refuse_presign_if_encrypted()?;
        let checked = self.check_put(key, &options).await?;
        let staging = layout::staging_path(upload_id);
        let Some(size) = self.backend.stat(&staging).await? else {
            return Err(Error::not_found(format!(
                "nothing was uploaded with id {upload_id} (or it was committed or removed already)"
            )));
        };
        let digests = BackgroundHasher::digest_all(self.backend.read(&staging, None).await?, true).await?;
        if digests.size != size {
            return Err(Error::new(
                crate::error::ErrorKind::IntegrityMismatch,
                format!(
                    "upload {upload_id} changed while it was read ({size} bytes, then {})",
                    digests.size
                ),
            ));
        }
        let storage_class = options.storage_class.clone();
        let version = self.put_version(checked, digests, options);
        let upload = Upload::Staged {
            id: upload_id.clone(),
            path: staging,
            sealed: None,
        };
        let prepared = self.write_upload(version, upload, Durability::Now).await;
        let prepared = self.apply_storage_class(prepared, storage_class.as_deref()).await;
        let committed = self.finish_upload(prepared).await?;
        self.apply_max_versions(&committed.key).await?;
        Ok(committed)
    }

    /// Presigned URLs reach the stored bytes directly: in an encrypted store
    /// a download would be ciphertext, and an upload would put plaintext on
    /// the store, so both are refused.
    fn refuse_presign_if_encrypted(&self) -> Result<()> {
        match self.encryption.is_on() {
            true => Err(Error::new(
                crate::error::ErrorKind::Unsupported,
                "this store encrypts its content, and a presigned URL would hand out (or take in) \
                 the stored bytes themselves: read and write through coffer instead",
            )),
            false => Ok(()),
        }
    }

    /// The same store, writing to `spool` (which wraps the backend) and
    /// reporting and draining what it holds.
    pub fn with_spool(&self, spool: Arc<SpoolBackend>) -> Store {
        Store {
            backend: spool.clone(),
            spool: Some(spool),
            ..self.clone()
        }
    }

    /// What waits in the spool for the backend (`None` without a spool).
    pub async fn spool_status(&self) -> Result<Option<SpoolStatus>> {
        match (&self.spool, &self.absent_spool) {
            (Some(spool), _) => spool.status().await.map(Some),
            (None, Some(path)) => Ok(Some(SpoolStatus {
                path: path.clone(),
                ..SpoolStatus::default()
            })),
            (None, None) => Ok(None),
        }
    }

    /// Whether a version's content waits in the spool for the backend.
    pub async fn is_spooled(&self, version: &ObjectVersion) -> bool {
        match (&self.spool, &version.blob_path) {
            (Some(spool), Some(path)) => spool.holds(path).await,
            _ => false,
        }
    }

    /// Move what the spool holds to the backend, verifying each file before
    /// its spooled copy goes (see [`SpoolBackend::drain`]). Fails with
    /// `BackendUnavailable` while the backend does not answer, and with
    /// `InvalidInput` when no spool is configured.
    pub async fn sync(&self) -> Result<DrainReport> {
        match &self.spool {
            Some(spool) => spool.drain().await,
            // A spool whose directory was never made holds nothing to move.
            None if self.absent_spool.is_some() => Ok(DrainReport::default()),
            None => Err(Error::invalid_input(
                "no spool is configured (spool = \"DIR\" in the config, COFFER_SPOOL or --spool)",
            )),
        }
    }

    /// Drain the spool every `every` in the background, for as long as the
    /// handle lives (a long-running process does this; `coffer sync --watch`
    /// is one). Rounds while the backend is down just wait for the next.
    pub fn spawn_sync(&self, every: Duration) -> SyncHandle {
        let store = self.clone();
        let task = tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let waiting = matches!(store.spool_status().await, Ok(Some(status)) if status.files > 0);
                if waiting {
                    let _ = store.sync().await;
                }
            }
        });
        SyncHandle { task }
    }

    /// The same store with a cold tier: `tiers` wraps the backend.
    pub fn with_tiers(&self, tiers: Arc<TieredBackend>) -> Store {
        Store {
            backend: tiers.clone(),
            tiers: Some(tiers),
            ..self.clone()
        }
    }

    fn tiers(&self) -> Result<&TieredBackend> {
        self.tiers.as_deref().ok_or_else(|| {
            Error::invalid_input(
                "this store has no cold tier (cold_store = \"NAME\" in the config names one of its [stores])",
            )
        })
    }

    /// The tier that holds a version's content.
    pub async fn tier_of(&self, key: &str, version_id: Option<&VersionId>) -> Result<Tier> {
        let version = self.head(key, version_id).await?;
        let path = version.blob_path.as_deref().unwrap_or_default();
        if let Some(tier) = self.tiers()?.tier_of(path).await? {
            return Ok(tier);
        }
        // Content the hot store holds goes to the hot tier when flushed.
        let unflushed = match version.sha256.as_deref() {
            Some(sha256) => self.awaits_flush(sha256).await?,
            None => false,
        };
        match unflushed {
            true => Ok(Tier::Hot),
            false => Err(Error::new(
                crate::error::ErrorKind::IntegrityMismatch,
                format!("the content of {key} version {} is in neither tier", version.version_id),
            )),
        }
    }

    /// Move a version's content to `to` (hot or cold) without changing its
    /// id or any other version: the copy is checked by its SHA-256 and size
    /// before the other tier's copy goes. Every version sharing the content
    /// (copies, rollbacks, identical puts) moves with it. Audited as `tier`.
    pub async fn move_to_tier(&self, key: &str, version_id: &VersionId, to: Tier) -> Result<TierMove> {
        let tiers = self.tiers()?;
        let version = self.head(key, Some(version_id)).await?;
        // Content is moved between the backend's tiers: the hot store's goes there first.
        self.flush_hot().await?;
        let (path, sha256) = super::stored_content(&version)?;
        let (path, sha256) = (path.to_owned(), sha256.to_owned());
        let from = tiers.tier_of(&path).await?;
        let sealed = self.blob_key(&sha256).await?.is_some();
        let size = tiers
            .move_blob(&path, to, sealed)
            .await
            .map_err(|e| super::archived_version(e, &format!("{} version {}", version.key, version.version_id)))?;
        let moved = from != Some(to);
        if moved {
            let placement = (to == Tier::Cold).then(|| to.as_str().to_owned());
            let detail = serde_json::json!({ "to": to.as_str(), "sha256": sha256, "size": size });
            self.record_placement("tier", &version, placement, detail).await?;
            // The tier it reached locks it too, where it has a guard.
            let _ = self.guard(&version).await;
        }
        Ok(TierMove {
            key: version.key.to_string(),
            version_id: version.version_id,
            tier: to,
            moved,
            size,
        })
    }

    /// Ask the backend whether it answers, and how fast.
    pub async fn health(&self) -> Health {
        let started = Instant::now();
        let outcome = self.backend.health().await;
        Health {
            backend: self.backend.to_string(),
            capabilities: self.backend.capabilities(),
            ok: outcome.is_ok(),
            error_kind: outcome.as_ref().err().map(crate::Error::kind),
            error: outcome.err().map(|e| e.message().to_owned()),
            latency_ms: started.elapsed().as_secs_f64() * 1000.0,
        }
    }
}
