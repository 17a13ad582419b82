//! Multipart uploads, as S3 has them: parts uploaded separately (in any
//! order, from any process sharing the catalog and backend) are staged on
//! the backend, sealed in an encrypted store; completing the upload streams
//! the chosen parts, in order, through an ordinary put, so the version is
//! hashed, stored once by content, audited and announced like any other.
//! Usually most of them went into that put while they arrived (`assembly`).

use std::sync::{Arc, Mutex};

use futures::{StreamExt, TryStreamExt};
use md5::{Digest, Md5};

use super::Store;
use super::options::PutOptions;
use crate::body::{self, ByteStream};
use crate::catalog::{MultipartChange, MultipartUpload, ObjectVersion, UploadedPart};
use crate::crypto::{BlobKey, segments};
use crate::error::{Error, ErrorKind, Result};
use crate::etag;
use crate::key::ObjectKey;
use crate::layout;
use crate::time::Timestamp;
use crate::version::VersionId;

/// The highest part number.
pub const MAX_PART_NUMBER: u32 = 10_000;
/// The smallest part but the last, as S3 requires.
pub const MIN_PART_SIZE: u64 = 5 << 20;

/// A part named by CompleteMultipartUpload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompletedPart {
    /// Its number.
    pub part_number: u32,
    /// The ETag its upload answered (quotes are ignored).
    pub etag: String,
}

impl Store {
    /// Start a multipart upload of the next version of `key`, which will
    /// have `options`' content type and metadata.
    pub async fn start_multipart(&self, key: &str, options: &PutOptions) -> Result<MultipartUpload> {
        self.check_put(key, options).await?;
        self.encryption.require()?;
        let upload = MultipartUpload {
            upload_id: VersionId::generate().to_string(),
            key: ObjectKey::new(key)?.to_string(),
            content_type: options.content_type.clone(),
            metadata: options.metadata.clone(),
            created_at: Timestamp::now(),
            created_by: self.actor.clone(),
        };
        self.catalog
            .multipart_change(MultipartChange::Start(upload.clone()))
            .await?;
        Ok(upload)
    }

    /// The upload `upload_id`, while it is in progress.
    pub async fn multipart_upload(&self, upload_id: &str) -> Result<MultipartUpload> {
        self.catalog
            .multipart_upload(upload_id)
            .await?
            .ok_or_else(|| no_upload(upload_id))
    }

    /// The uploads in progress of keys under `prefix`.
    pub async fn multipart_uploads(&self, prefix: &str) -> Result<Vec<MultipartUpload>> {
        self.catalog.multipart_uploads(prefix).await
    }

    /// The parts uploaded so far.
    pub async fn multipart_parts(&self, upload_id: &str) -> Result<Vec<UploadedPart>> {
        self.multipart_upload(upload_id).await?;
        self.catalog.multipart_parts(upload_id).await
    }

    /// Stage part `part_number` of an upload (replacing an earlier upload
    /// of that number). With `content_md5` (hex), bytes that do not match
    /// are refused and nothing is kept.
    pub async fn upload_part(
        &self,
        upload_id: &str,
        part_number: u32,
        body: ByteStream,
        content_md5: Option<&str>,
    ) -> Result<UploadedPart> {
        if !(1..=MAX_PART_NUMBER).contains(&part_number) {
            return Err(Error::invalid_input(format!(
                "part number {part_number} is outside 1 to {MAX_PART_NUMBER}"
            )));
        }
        let upload = self.multipart_upload(upload_id).await?;
        let encryption = self.encryption.require()?.cloned();
        let path = layout::part_path(upload_id, part_number, &VersionId::generate());
        let md5 = Arc::new(Mutex::new((Md5::new(), 0u64)));
        let tapped = {
            let md5 = md5.clone();
            body.inspect_ok(move |chunk| {
                let mut md5 = md5.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                md5.0.update(chunk);
                md5.1 += chunk.len() as u64;
            })
            .boxed()
        };
        let (written, data_key) = match &encryption {
            Some(encryption) => {
                let (key, record) = encryption.new_key().await?;
                let written = match segments::seal_stream(&key, tapped) {
                    Ok(sealed) => self.backend.write(&path, sealed).await,
                    Err(e) => Err(e),
                };
                (written, Some(record.to_text()))
            }
            None => (self.backend.write(&path, tapped).await, None),
        };
        let (md5, size) = std::mem::take(&mut *md5.lock().unwrap_or_else(|poisoned| poisoned.into_inner()));
        let etag = hex::encode(md5.finalize());
        let checked = written.and_then(|stored| {
            if stored != segments::stored_size(data_key.is_some(), size) {
                return Err(Error::new(ErrorKind::Io, "the part's stored and hashed lengths differ"));
            }
            match content_md5 {
                Some(expected) if !expected.eq_ignore_ascii_case(&etag) => Err(Error::new(
                    ErrorKind::IntegrityMismatch,
                    format!("part {part_number}: its bytes have MD5 {etag}, not the {expected} sent with them"),
                )),
                _ => Ok(()),
            }
        });
        let part = UploadedPart {
            part_number,
            size,
            etag,
            path: path.clone(),
            data_key,
            uploaded_at: Timestamp::now(),
        };
        let recorded = match checked {
            Ok(()) => {
                self.catalog
                    .multipart_change(MultipartChange::Part {
                        upload_id: upload_id.to_owned(),
                        part: part.clone(),
                    })
                    .await
            }
            Err(e) => Err(e),
        };
        match recorded {
            Ok(replaced) => {
                self.remove_staged(&replaced).await;
                self.assemblies.part_uploaded(self, &upload, part.clone());
                Ok(part)
            }
            Err(e) => {
                self.remove_staged(&[path]).await;
                Err(e)
            }
        }
    }

    /// Make `parts` (in ascending order, each with the ETag its upload
    /// answered) the next version of the upload's key, and end the upload.
    pub async fn complete_multipart(&self, upload_id: &str, parts: &[CompletedPart]) -> Result<ObjectVersion> {
        let upload = self.multipart_upload(upload_id).await?;
        let staged = self.catalog.multipart_parts(upload_id).await?;
        let chosen = choose_parts(&staged, parts)?;
        if let Some(assembled) = self.assemblies.complete(upload_id, &chosen, &self.actor).await {
            let version = assembled?;
            self.end_multipart(upload_id, &staged).await?;
            return Ok(version);
        }
        // Parts cut as the ETag's tell it: no need to hash the whole with MD5 again.
        let told = told_etag(&chosen).map(|etag| {
            let (tell, told) = tokio::sync::oneshot::channel();
            let _ = tell.send(etag);
            told
        });
        let store = self.clone();
        let body = futures::stream::iter(chosen)
            .then(move |part| {
                let store = store.clone();
                async move { store.read_part(&part).await }
            })
            .try_flatten()
            .boxed();
        let version = self
            .put_stream_with_etag(&upload.key, body, version_options(&upload), told)
            .await?;
        self.end_multipart(upload_id, &staged).await?;
        Ok(version)
    }

    /// Abort an upload: its parts are removed.
    pub async fn abort_multipart(&self, upload_id: &str) -> Result<()> {
        self.multipart_upload(upload_id).await?;
        self.assemblies.abandon(upload_id).await;
        let staged = self.catalog.multipart_parts(upload_id).await?;
        self.end_multipart(upload_id, &staged).await
    }

    async fn end_multipart(&self, upload_id: &str, staged: &[UploadedPart]) -> Result<()> {
        self.catalog
            .multipart_change(MultipartChange::End {
                upload_id: upload_id.to_owned(),
            })
            .await?;
        let paths: Vec<String> = staged.iter().map(|part| part.path.clone()).collect();
        self.remove_staged(&paths).await;
        Ok(())
    }

    /// The bytes of a staged part, its length checked.
    pub(super) async fn read_part(&self, part: &UploadedPart) -> Result<ByteStream> {
        let what = format!("part {} of upload {}", part.part_number, part.path);
        let key = part.data_key.as_deref().map(BlobKey::from_text).transpose()?;
        let stream = self
            .read_content(&part.path, part.size, key.as_ref(), None, &what)
            .await?;
        Ok(body::check_length(stream, part.size, what))
    }

    /// Remove staged parts no row names; one left behind is an orphan that
    /// `verify --repair` removes.
    async fn remove_staged(&self, paths: &[String]) {
        for path in paths {
            let _ = self.backend.delete(path).await;
        }
    }
}

/// The options of the version an upload makes.
pub(super) fn version_options(upload: &MultipartUpload) -> PutOptions {
    PutOptions {
        content_type: upload.content_type.clone(),
        metadata: upload.metadata.clone(),
        ..PutOptions::default()
    }
}

/// The ETag of the content `parts` make, when their MD5s tell it ([`etag::of_parts`]).
pub(super) fn told_etag(parts: &[UploadedPart]) -> Option<String> {
    etag::of_parts(parts.iter().map(|part| (part.size, part.etag.as_str())))
}

fn no_upload(upload_id: &str) -> Error {
    Error::not_found(format!("no multipart upload {upload_id} is in progress"))
}

/// The staged parts `wanted` names, checked as S3 checks them: at least
/// one, in ascending order, each uploaded with that ETag, and every one but
/// the last at least [`MIN_PART_SIZE`].
fn choose_parts(staged: &[UploadedPart], wanted: &[CompletedPart]) -> Result<Vec<UploadedPart>> {
    if wanted.is_empty() {
        return Err(Error::invalid_input(
            "a multipart upload is completed with at least one part",
        ));
    }
    let mut chosen: Vec<UploadedPart> = Vec::with_capacity(wanted.len());
    for want in wanted {
        if chosen.last().is_some_and(|last| last.part_number >= want.part_number) {
            return Err(Error::invalid_input(format!(
                "part {} is out of order: parts are listed in ascending order",
                want.part_number
            )));
        }
        let etag = want.etag.trim_matches('"');
        let part = staged
            .iter()
            .find(|part| part.part_number == want.part_number && part.etag.eq_ignore_ascii_case(etag))
            .ok_or_else(|| {
                Error::invalid_input(format!(
                    "part {} with ETag {etag} was not uploaded (or was replaced)",
                    want.part_number
                ))
            })?;
        chosen.push(part.clone());
    }
    if let Some(small) = chosen[..chosen.len() - 1].iter().find(|p| p.size < MIN_PART_SIZE) {
        return Err(Error::invalid_input(format!(
            "part {} has {} bytes: every part but the last needs at least 5 MiB",
            small.part_number, small.size
        )));
    }
    Ok(chosen)
}
