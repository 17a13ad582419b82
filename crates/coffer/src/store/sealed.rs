//! Content of an encrypted store: which data key a blob has, and reading a
//! blob's plaintext (or a range of it) through its data key. Bytes that move
//! as they are stored (tier moves, migrations, the spool) stay sealed.

use std::future::Future;
use std::ops::Range;

use futures::StreamExt;

use super::Store;
use crate::body::ByteStream;
use crate::crypto::BlobKey;
use crate::crypto::segments::{self, SealedRange};
use crate::error::{Error, ErrorKind, Result};

impl Store {
    /// The data key of the blob `sha256`, in an encrypted store.
    pub(super) async fn blob_key(&self, sha256: &str) -> Result<Option<BlobKey>> {
        if !self.encryption.is_on() {
            return Ok(None);
        }
        match self.catalog.blob(sha256).await? {
            Some(blob) => blob.data_key.as_deref().map(BlobKey::from_text).transpose(),
            None => Ok(None),
        }
    }

    /// The plaintext bytes `range` (all with `None`) of the blob at `path`
    /// holding `size` bytes, sealed with `key` if it has one; `what` names
    /// the version, for errors.
    pub(super) async fn read_content(
        &self,
        path: &str,
        size: u64,
        key: Option<&BlobKey>,
        range: Option<Range<u64>>,
        what: &str,
    ) -> Result<ByteStream> {
        let Some(key) = key else {
            // A known length lets a remote store fetch parts in parallel.
            let range = range.unwrap_or(0..size);
            if range.is_empty() {
                return Ok(futures::stream::empty().boxed());
            }
            return match self.backend.read(path, Some(range)).await {
                // Shorter than recorded: read what there is, and let the
                // caller's check of the length and hash say so as it streams.
                Err(e) if e.kind() == ErrorKind::IntegrityMismatch => self.backend.read(path, None).await,
                other => other,
            };
        };
        self.open_sealed(size, key, range, what, |stored| self.backend.read(path, Some(stored)))
            .await
    }

    /// The plaintext bytes `range` (all with `None`) of a blob of `size`
    /// bytes sealed with `key`, whose stored bytes `fetch` reads (given the
    /// stored range it needs); `what` names the version, for errors.
    pub(super) async fn open_sealed<F, Fut>(
        &self,
        size: u64,
        key: &BlobKey,
        range: Option<Range<u64>>,
        what: &str,
        fetch: F,
    ) -> Result<ByteStream>
    where
        F: FnOnce(Range<u64>) -> Fut,
        Fut: Future<Output = Result<ByteStream>>,
    {
        let encryption = self.encryption.require()?.ok_or_else(|| {
            Error::new(
                ErrorKind::Catalog,
                format!("{what}: its blob has a data key in a store without encryption"),
            )
        })?;
        let data_key = encryption.open_key(key, what).await?;
        let sealed = SealedRange::of(size, range);
        let stored = fetch(sealed.stored.clone()).await?;
        segments::open_stream(&data_key, sealed, stored, what.to_owned())
    }
}
