//! Two tiers of storage behind one backend: a hot one that takes every
//! write, and a cold one (S3 GLACIER or DEEP_ARCHIVE, Azure Archive, another
//! disk) that blobs are moved to on request. A path is in one tier or the
//! other, under the same name, so moving content changes no version and no
//! catalog row; reads look in the hot tier first, then in the cold one.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use async_trait::async_trait;
use futures::StreamExt;
use futures::stream::BoxStream;

use super::{
    Backend, BlobCheck, Capabilities, IncompleteUpload, PresignRequest, PresignedUrl, RestoreState, RestoreTier,
    copy_blob_verified,
};
use crate::body::ByteStream;
use crate::error::{Error, ErrorKind, Result};
use crate::layout::sha256_in_blob_path;
use crate::retention::Protection;

/// A storage tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    /// The backend every write goes to.
    Hot,
    /// The backend content is moved to for cheaper keeping.
    Cold,
}

impl Tier {
    /// `hot` or `cold`.
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Hot => "hot",
            Tier::Cold => "cold",
        }
    }
}

impl std::str::FromStr for Tier {
    type Err = Error;

    fn from_str(text: &str) -> Result<Tier> {
        match text {
            "hot" => Ok(Tier::Hot),
            "cold" => Ok(Tier::Cold),
            other => Err(Error::invalid_input(format!("a tier is hot or cold, not {other:?}"))),
        }
    }
}

/// A hot and a cold backend as one.
pub struct TieredBackend {
    hot: Arc<dyn Backend>,
    cold: Arc<dyn Backend>,
}

impl TieredBackend {
    /// `hot` for every write, `cold` for content moved there.
    pub fn new(hot: Arc<dyn Backend>, cold: Arc<dyn Backend>) -> TieredBackend {
        TieredBackend { hot, cold }
    }

    fn backend(&self, tier: Tier) -> &dyn Backend {
        match tier {
            Tier::Hot => self.hot.as_ref(),
            Tier::Cold => self.cold.as_ref(),
        }
    }

    /// The tier that holds `path`, if either does.
    pub async fn tier_of(&self, path: &str) -> Result<Option<Tier>> {
        if self.hot.stat(path).await?.is_some() {
            return Ok(Some(Tier::Hot));
        }
        Ok(self.cold.stat(path).await?.is_some().then_some(Tier::Cold))
    }

    /// Move the blob at `path` to `to`: copy it, check what arrived (its
    /// SHA-256, which the path names, computed on the way, unless it is
    /// `sealed`, and its size there), then remove it from the other tier.
    /// Returns its stored size; moving it where it is already does nothing.
    pub async fn move_blob(&self, path: &str, to: Tier, sealed: bool) -> Result<u64> {
        let from = match to {
            Tier::Hot => Tier::Cold,
            Tier::Cold => Tier::Hot,
        };
        let (source, target) = (self.backend(from), self.backend(to));
        let Some(size) = source.stat(path).await? else {
            return match target.stat(path).await? {
                Some(size) => Ok(size),
                None => Err(Error::new(
                    ErrorKind::IntegrityMismatch,
                    format!("{path} is in neither tier"),
                )),
            };
        };
        let sha256 = sha256_in_blob_path(path)
            .ok_or_else(|| Error::invalid_input(format!("{path} is not a blob")))?
            .to_owned();
        let check = match sealed {
            true => BlobCheck::Sealed { size },
            false => BlobCheck::Plain { sha256: &sha256, size },
        };
        copy_blob_verified(source, target, path, check, None)
            .await
            .map_err(|e| match e.kind() {
                ErrorKind::IntegrityMismatch => Error::new(
                    ErrorKind::IntegrityMismatch,
                    format!("{}; left in the {} tier", e.message(), from.as_str()),
                ),
                _ => e,
            })?;
        source.delete(path).await?;
        Ok(size)
    }
}

impl fmt::Display for TieredBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (cold tier {})", self.hot, self.cold)
    }
}

impl fmt::Debug for TieredBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TieredBackend")
            .field("hot", &self.hot)
            .field("cold", &self.cold)
            .finish()
    }
}

#[async_trait]
impl Backend for TieredBackend {
    async fn write(&self, path: &str, body: ByteStream) -> Result<u64> {
        self.hot.write(path, body).await
    }

    async fn write_deferred(&self, path: &str, body: ByteStream) -> Result<u64> {
        self.hot.write_deferred(path, body).await
    }

    async fn sync(&self) -> Result<()> {
        self.hot.sync().await
    }

    async fn read(&self, path: &str, range: Option<Range<u64>>) -> Result<ByteStream> {
        match self.hot.read(path, range.clone()).await {
            Err(e) if e.kind() == ErrorKind::NotFound => self.cold.read(path, range).await,
            other => other,
        }
    }

    async fn stat(&self, path: &str) -> Result<Option<u64>> {
        match self.hot.stat(path).await? {
            Some(size) => Ok(Some(size)),
            None => self.cold.stat(path).await,
        }
    }

    async fn modified(&self, path: &str) -> Result<Option<std::time::SystemTime>> {
        match self.hot.modified(path).await? {
            Some(at) => Ok(Some(at)),
            None => self.cold.modified(path).await,
        }
    }

    async fn delete(&self, path: &str) -> Result<()> {
        self.hot.delete(path).await?;
        self.cold.delete(path).await
    }

    async fn rename(&self, from: &str, to: &str) -> Result<()> {
        self.hot.rename(from, to).await
    }

    async fn list(&self, prefix: &str) -> Result<BoxStream<'static, Result<String>>> {
        let hot = self.hot.list(prefix).await?;
        let cold = self.cold.list(prefix).await?;
        // A path is in one tier; one caught mid-move may show twice, which
        // listings' users (verify, reindex) take as the same path.
        Ok(hot.chain(cold).boxed())
    }

    fn capabilities(&self) -> Capabilities {
        self.hot.capabilities()
    }

    async fn health(&self) -> Result<()> {
        self.hot.health().await?;
        self.cold.health().await
    }

    async fn incomplete_uploads(&self, cutoff: std::time::SystemTime) -> Result<Vec<IncompleteUpload>> {
        let mut uploads = self.hot.incomplete_uploads(cutoff).await?;
        uploads.extend(self.cold.incomplete_uploads(cutoff).await?);
        Ok(uploads)
    }

    async fn abort_upload(&self, upload: &IncompleteUpload) -> Result<()> {
        self.hot.abort_upload(upload).await?;
        self.cold.abort_upload(upload).await
    }

    async fn set_storage_class(&self, path: &str, class: &str) -> Result<()> {
        match self.cold.stat(path).await? {
            Some(_) => self.cold.set_storage_class(path, class).await,
            None => self.hot.set_storage_class(path, class).await,
        }
    }

    async fn presign(&self, request: &PresignRequest<'_>) -> Result<PresignedUrl> {
        match self.cold.stat(request.path).await {
            Ok(Some(_)) => self.cold.presign(request).await,
            _ => self.hot.presign(request).await,
        }
    }

    fn server_side_encryption(&self) -> Option<String> {
        let named = |sse: Option<String>, tier: Tier| sse.map(|s| format!("{s} ({} tier)", tier.as_str()));
        let layers: Vec<String> = [
            named(self.hot.server_side_encryption(), Tier::Hot),
            named(self.cold.server_side_encryption(), Tier::Cold),
        ]
        .into_iter()
        .flatten()
        .collect();
        (!layers.is_empty()).then(|| layers.join("; "))
    }

    async fn native_guard(&self) -> Result<Option<String>> {
        let named = |guard: Option<String>, tier: Tier| guard.map(|g| format!("{g} ({} tier)", tier.as_str()));
        let guards: Vec<String> = [
            named(self.hot.native_guard().await?, Tier::Hot),
            named(self.cold.native_guard().await?, Tier::Cold),
        ]
        .into_iter()
        .flatten()
        .collect();
        Ok((!guards.is_empty()).then(|| guards.join(", ")))
    }

    async fn lock(&self, path: &str, protection: &Protection) -> Result<bool> {
        match self.tier_of(path).await? {
            Some(tier) => self.backend(tier).lock(path, protection).await,
            None => Ok(false),
        }
    }

    async fn restore(&self, path: &str, days: u32, tier: RestoreTier) -> Result<RestoreState> {
        match self.tier_of(path).await? {
            Some(held) => self.backend(held).restore(path, days, tier).await,
            None => Err(Error::not_found(format!("{path} is in neither tier"))),
        }
    }

    async fn restore_status(&self, path: &str) -> Result<RestoreState> {
        match self.tier_of(path).await? {
            Some(held) => self.backend(held).restore_status(path).await,
            None => Err(Error::not_found(format!("{path} is in neither tier"))),
        }
    }
}
