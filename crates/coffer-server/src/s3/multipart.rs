//! Multipart uploads through S3, on the library's: parts are staged on the
//! backend (any server of a scale-out may take any part), and completing
//! makes one version like any put's.

use coffer::access::Scope;
use coffer::{CompletedPart, PutOptions};
use s3s::dto::{self, ETag};
use s3s::{S3ErrorCode, S3Request, S3Response, S3Result};

use super::CofferS3;
use super::auth::S3Caller;
use super::errors::{refused, s3_error, s3_error_as};
use super::objects::{body_of, etag};
use super::{content_md5_hex, key_in};

/// `error`, where a missing thing is the upload.
fn upload_error(error: coffer::Error) -> s3s::S3Error {
    match error.kind() {
        coffer::ErrorKind::InvalidInput => refused(S3ErrorCode::InvalidPart, error.to_string()),
        _ => s3_error_as(error, S3ErrorCode::NoSuchUpload),
    }
}

impl CofferS3 {
    /// The upload a call names, checked to be of `key`.
    async fn upload_of(&self, caller: &S3Caller, upload_id: &str, key: &str, need: Scope) -> S3Result<()> {
        caller.allow(need, Some(key))?;
        let upload = caller.store.multipart_upload(upload_id).await.map_err(upload_error)?;
        if upload.key != key {
            return Err(refused(
                S3ErrorCode::NoSuchUpload,
                format!("upload {upload_id} is not of {key}"),
            ));
        }
        Ok(())
    }

    pub(super) async fn create_multipart_upload(
        &self,
        req: S3Request<dto::CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<dto::CreateMultipartUploadOutput>> {
        let caller = S3Caller::of(&self.store, &self.tokens, req.credentials.as_ref()).await?;
        let input = req.input;
        let key = key_in(&input.bucket, &input.key);
        caller.allow(Scope::Write, Some(&key))?;
        self.require_bucket(&input.bucket).await?;
        let options = PutOptions {
            content_type: input.content_type.map(|t| t.to_string()),
            metadata: input.metadata.unwrap_or_default().into_iter().collect(),
            ..PutOptions::default()
        };
        let upload = caller.store.start_multipart(&key, &options).await.map_err(s3_error)?;
        Ok(S3Response::new(dto::CreateMultipartUploadOutput {
            bucket: Some(input.bucket),
            key: Some(input.key),
            upload_id: Some(upload.upload_id),
            ..Default::default()
        }))
    }

    pub(super) async fn upload_part(
        &self,
        req: S3Request<dto::UploadPartInput>,
    ) -> S3Result<S3Response<dto::UploadPartOutput>> {
        let caller = S3Caller::of(&self.store, &self.tokens, req.credentials.as_ref()).await?;
        let input = req.input;
        let key = key_in(&input.bucket, &input.key);
        self.upload_of(&caller, &input.upload_id, &key, Scope::Write).await?;
        let number = u32::try_from(input.part_number)
            .map_err(|_| refused(S3ErrorCode::InvalidArgument, "the part number is negative"))?;
        let md5 = content_md5_hex(input.content_md5.as_deref())?;
        let part = caller
            .store
            .upload_part(&input.upload_id, number, body_of(input.body, None), md5.as_deref())
            .await
            .map_err(upload_error)?;
        Ok(S3Response::new(dto::UploadPartOutput {
            e_tag: Some(ETag::Strong(part.etag)),
            ..Default::default()
        }))
    }

    pub(super) async fn complete_multipart_upload(
        &self,
        req: S3Request<dto::CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<dto::CompleteMultipartUploadOutput>> {
        let caller = S3Caller::of(&self.store, &self.tokens, req.credentials.as_ref()).await?;
        let input = req.input;
        let key = key_in(&input.bucket, &input.key);
        self.upload_of(&caller, &input.upload_id, &key, Scope::Write).await?;
        let mut parts = Vec::new();
        for part in input.multipart_upload.and_then(|m| m.parts).unwrap_or_default() {
            let (Some(number), Some(etag)) = (part.part_number, part.e_tag) else {
                return Err(refused(
                    S3ErrorCode::InvalidPart,
                    "each part needs a PartNumber and an ETag",
                ));
            };
            parts.push(CompletedPart {
                part_number: u32::try_from(number)
                    .map_err(|_| refused(S3ErrorCode::InvalidPart, "a part number is negative"))?,
                etag: etag.value().to_owned(),
            });
        }
        let version = caller
            .store
            .complete_multipart(&input.upload_id, &parts)
            .await
            .map_err(upload_error)?;
        Ok(S3Response::new(dto::CompleteMultipartUploadOutput {
            bucket: Some(input.bucket),
            key: Some(input.key),
            e_tag: etag(&version),
            version_id: Some(version.version_id.to_string()),
            ..Default::default()
        }))
    }

    pub(super) async fn abort_multipart_upload(
        &self,
        req: S3Request<dto::AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<dto::AbortMultipartUploadOutput>> {
        let caller = S3Caller::of(&self.store, &self.tokens, req.credentials.as_ref()).await?;
        let input = req.input;
        let key = key_in(&input.bucket, &input.key);
        self.upload_of(&caller, &input.upload_id, &key, Scope::Write).await?;
        caller
            .store
            .abort_multipart(&input.upload_id)
            .await
            .map_err(upload_error)?;
        Ok(S3Response::new(dto::AbortMultipartUploadOutput::default()))
    }

    pub(super) async fn list_multipart_uploads(
        &self,
        req: S3Request<dto::ListMultipartUploadsInput>,
    ) -> S3Result<S3Response<dto::ListMultipartUploadsOutput>> {
        let caller = S3Caller::of(&self.store, &self.tokens, req.credentials.as_ref()).await?;
        let input = req.input;
        self.require_bucket(&input.bucket).await?;
        let prefix = caller.narrow_prefix(&key_in(&input.bucket, input.prefix.as_deref().unwrap_or_default()))?;
        let uploads = caller.store.multipart_uploads(&prefix).await.map_err(s3_error)?;
        let bucket_prefix = format!("{}/", input.bucket);
        Ok(S3Response::new(dto::ListMultipartUploadsOutput {
            bucket: Some(input.bucket.clone()),
            prefix: input.prefix,
            is_truncated: Some(false),
            uploads: Some(
                uploads
                    .into_iter()
                    .map(|upload| dto::MultipartUpload {
                        key: Some(
                            upload
                                .key
                                .strip_prefix(&bucket_prefix)
                                .unwrap_or(&upload.key)
                                .to_owned(),
                        ),
                        upload_id: Some(upload.upload_id),
                        initiated: Some(super::locks::s3_time(upload.created_at)),
                        ..Default::default()
                    })
                    .collect(),
            ),
            ..Default::default()
        }))
    }

    pub(super) async fn list_parts(
        &self,
        req: S3Request<dto::ListPartsInput>,
    ) -> S3Result<S3Response<dto::ListPartsOutput>> {
        let caller = S3Caller::of(&self.store, &self.tokens, req.credentials.as_ref()).await?;
        let input = req.input;
        let key = key_in(&input.bucket, &input.key);
        self.upload_of(&caller, &input.upload_id, &key, Scope::Read).await?;
        let after = input.part_number_marker.unwrap_or(0);
        let parts = caller
            .store
            .multipart_parts(&input.upload_id)
            .await
            .map_err(upload_error)?;
        Ok(S3Response::new(dto::ListPartsOutput {
            bucket: Some(input.bucket),
            key: Some(input.key),
            upload_id: Some(input.upload_id),
            is_truncated: Some(false),
            parts: Some(
                parts
                    .into_iter()
                    .filter(|part| i64::from(part.part_number) > i64::from(after))
                    .map(|part| dto::Part {
                        part_number: Some(part.part_number as i32),
                        e_tag: Some(ETag::Strong(part.etag)),
                        size: Some(part.size as i64),
                        last_modified: Some(super::locks::s3_time(part.uploaded_at)),
                        ..Default::default()
                    })
                    .collect(),
            ),
            ..Default::default()
        }))
    }
}
