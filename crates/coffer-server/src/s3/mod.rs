//! The S3-compatible endpoint (`--s3-listen`), built on s3s: it parses S3
//! requests and checks their signatures (SigV4 headers and presigned URLs,
//! SigV2) against the access keys `coffer token create --s3` issues; each
//! operation here checks the token's scope and prefix and makes one `Store`
//! call, so every write is a coffer version with its audit row and events,
//! and every read is verified.
//!
//! Buckets are keys' first segments: `s3://invoices/2024/a.pdf` is the key
//! `invoices/2024/a.pdf`, the same object the CLI and the REST API see.

mod auth;
mod buckets;
mod errors;
mod locks;
mod multipart;
mod objects;
mod tagging;

use std::convert::Infallible;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use coffer::{Store, VersionId};
use s3s::dto;
use s3s::service::S3ServiceBuilder;
use s3s::{S3, S3ErrorCode, S3Request, S3Response, S3Result};

use self::errors::refused;
use crate::AppState;

/// The S3 operations, over a store.
pub struct CofferS3 {
    store: Store,
    tokens: Arc<crate::auth::TokenCache>,
}

/// The coffer key of `key` in `bucket`.
fn key_in(bucket: &str, key: &str) -> String {
    format!("{bucket}/{key}")
}

/// A request's version id, parsed (`null`, S3's id of an unversioned
/// object, names none).
fn version_id(text: Option<&str>) -> S3Result<Option<VersionId>> {
    match text {
        None | Some("null") => Ok(None),
        Some(text) => text.parse().map(Some).map_err(|_| {
            refused(
                S3ErrorCode::NoSuchVersion,
                format!("no version {text}: not a coffer version id"),
            )
        }),
    }
}

/// The error code of a missing version: the key's when none was named.
fn missing(wanted: Option<&VersionId>) -> S3ErrorCode {
    match wanted {
        Some(_) => S3ErrorCode::NoSuchVersion,
        None => S3ErrorCode::NoSuchKey,
    }
}

/// A `Content-MD5` header (base64) as hex, refused unless it is an MD5.
fn content_md5_hex(header: Option<&str>) -> S3Result<Option<String>> {
    use base64::Engine;
    header
        .map(|b64| {
            base64::engine::general_purpose::STANDARD
                .decode(b64)
                .ok()
                .filter(|md5| md5.len() == 16)
                .map(hex::encode)
                .ok_or_else(|| refused(S3ErrorCode::InvalidDigest, "Content-MD5 is not a base64 MD5"))
        })
        .transpose()
}

/// Bucket names are key segments, which S3's own rules (3 to 63 lowercase
/// characters) would not all allow; the store checks them.
struct SegmentNames;

impl s3s::validation::NameValidation for SegmentNames {
    fn validate_bucket_name(&self, name: &str) -> bool {
        !name.is_empty() && !name.contains('/')
    }
}

/// The endpoint's routes: every request goes to s3s, logged and counted
/// like the REST API's (under the route `s3`).
pub fn router(state: AppState) -> Router {
    let mut builder = S3ServiceBuilder::new(CofferS3 {
        store: state.store.clone(),
        tokens: state.tokens.clone(),
    });
    builder.set_auth(auth::AccessKeys {
        store: state.store.clone(),
        tokens: state.tokens.clone(),
    });
    builder.set_validation(SegmentNames);
    let service = builder.build();
    let handler = tower::service_fn(move |request: Request| {
        let mut service = service.clone();
        async move {
            let answered = tower::Service::call(&mut service, request).await;
            Ok::<Response, Infallible>(match answered {
                Ok(response) => response.map(Body::new),
                Err(e) => {
                    tracing::warn!(error = ?e, "the S3 request failed");
                    StatusCode::INTERNAL_SERVER_ERROR.into_response()
                }
            })
        }
    });
    Router::new()
        .route_service("/", handler.clone())
        .route_service("/{*path}", handler)
        .layer(DefaultBodyLimit::disable())
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::observe::observe,
        ))
        .with_state(state)
}

use axum::extract::DefaultBodyLimit;

/// Each operation coffer has; s3s answers NotImplemented for the others.
#[async_trait::async_trait]
impl S3 for CofferS3 {
    async fn list_buckets(
        &self,
        req: S3Request<dto::ListBucketsInput>,
    ) -> S3Result<S3Response<dto::ListBucketsOutput>> {
        CofferS3::list_buckets(self, req).await
    }
    async fn create_bucket(
        &self,
        req: S3Request<dto::CreateBucketInput>,
    ) -> S3Result<S3Response<dto::CreateBucketOutput>> {
        CofferS3::create_bucket(self, req).await
    }
    async fn delete_bucket(
        &self,
        req: S3Request<dto::DeleteBucketInput>,
    ) -> S3Result<S3Response<dto::DeleteBucketOutput>> {
        CofferS3::delete_bucket(self, req).await
    }
    async fn head_bucket(&self, req: S3Request<dto::HeadBucketInput>) -> S3Result<S3Response<dto::HeadBucketOutput>> {
        CofferS3::head_bucket(self, req).await
    }
    async fn get_bucket_location(
        &self,
        req: S3Request<dto::GetBucketLocationInput>,
    ) -> S3Result<S3Response<dto::GetBucketLocationOutput>> {
        CofferS3::get_bucket_location(self, req).await
    }
    async fn get_bucket_versioning(
        &self,
        req: S3Request<dto::GetBucketVersioningInput>,
    ) -> S3Result<S3Response<dto::GetBucketVersioningOutput>> {
        CofferS3::get_bucket_versioning(self, req).await
    }
    async fn put_bucket_versioning(
        &self,
        req: S3Request<dto::PutBucketVersioningInput>,
    ) -> S3Result<S3Response<dto::PutBucketVersioningOutput>> {
        CofferS3::put_bucket_versioning(self, req).await
    }
    async fn get_object_lock_configuration(
        &self,
        req: S3Request<dto::GetObjectLockConfigurationInput>,
    ) -> S3Result<S3Response<dto::GetObjectLockConfigurationOutput>> {
        CofferS3::get_object_lock_configuration(self, req).await
    }
    async fn put_object(&self, req: S3Request<dto::PutObjectInput>) -> S3Result<S3Response<dto::PutObjectOutput>> {
        CofferS3::put_object(self, req).await
    }
    async fn get_object(&self, req: S3Request<dto::GetObjectInput>) -> S3Result<S3Response<dto::GetObjectOutput>> {
        CofferS3::get_object(self, req).await
    }
    async fn head_object(&self, req: S3Request<dto::HeadObjectInput>) -> S3Result<S3Response<dto::HeadObjectOutput>> {
        CofferS3::head_object(self, req).await
    }
    async fn delete_object(
        &self,
        req: S3Request<dto::DeleteObjectInput>,
    ) -> S3Result<S3Response<dto::DeleteObjectOutput>> {
        CofferS3::delete_object(self, req).await
    }
    async fn delete_objects(
        &self,
        req: S3Request<dto::DeleteObjectsInput>,
    ) -> S3Result<S3Response<dto::DeleteObjectsOutput>> {
        CofferS3::delete_objects(self, req).await
    }
    async fn copy_object(&self, req: S3Request<dto::CopyObjectInput>) -> S3Result<S3Response<dto::CopyObjectOutput>> {
        CofferS3::copy_object(self, req).await
    }
    async fn list_objects(
        &self,
        req: S3Request<dto::ListObjectsInput>,
    ) -> S3Result<S3Response<dto::ListObjectsOutput>> {
        CofferS3::list_objects(self, req).await
    }
    async fn list_objects_v2(
        &self,
        req: S3Request<dto::ListObjectsV2Input>,
    ) -> S3Result<S3Response<dto::ListObjectsV2Output>> {
        CofferS3::list_objects_v2(self, req).await
    }
    async fn list_object_versions(
        &self,
        req: S3Request<dto::ListObjectVersionsInput>,
    ) -> S3Result<S3Response<dto::ListObjectVersionsOutput>> {
        CofferS3::list_object_versions(self, req).await
    }
    async fn create_multipart_upload(
        &self,
        req: S3Request<dto::CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<dto::CreateMultipartUploadOutput>> {
        CofferS3::create_multipart_upload(self, req).await
    }
    async fn upload_part(&self, req: S3Request<dto::UploadPartInput>) -> S3Result<S3Response<dto::UploadPartOutput>> {
        CofferS3::upload_part(self, req).await
    }
    async fn complete_multipart_upload(
        &self,
        req: S3Request<dto::CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<dto::CompleteMultipartUploadOutput>> {
        CofferS3::complete_multipart_upload(self, req).await
    }
    async fn abort_multipart_upload(
        &self,
        req: S3Request<dto::AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<dto::AbortMultipartUploadOutput>> {
        CofferS3::abort_multipart_upload(self, req).await
    }
    async fn list_multipart_uploads(
        &self,
        req: S3Request<dto::ListMultipartUploadsInput>,
    ) -> S3Result<S3Response<dto::ListMultipartUploadsOutput>> {
        CofferS3::list_multipart_uploads(self, req).await
    }
    async fn list_parts(&self, req: S3Request<dto::ListPartsInput>) -> S3Result<S3Response<dto::ListPartsOutput>> {
        CofferS3::list_parts(self, req).await
    }
    async fn put_object_tagging(
        &self,
        req: S3Request<dto::PutObjectTaggingInput>,
    ) -> S3Result<S3Response<dto::PutObjectTaggingOutput>> {
        CofferS3::put_object_tagging(self, req).await
    }
    async fn get_object_tagging(
        &self,
        req: S3Request<dto::GetObjectTaggingInput>,
    ) -> S3Result<S3Response<dto::GetObjectTaggingOutput>> {
        CofferS3::get_object_tagging(self, req).await
    }
    async fn delete_object_tagging(
        &self,
        req: S3Request<dto::DeleteObjectTaggingInput>,
    ) -> S3Result<S3Response<dto::DeleteObjectTaggingOutput>> {
        CofferS3::delete_object_tagging(self, req).await
    }
    async fn put_object_retention(
        &self,
        req: S3Request<dto::PutObjectRetentionInput>,
    ) -> S3Result<S3Response<dto::PutObjectRetentionOutput>> {
        CofferS3::put_object_retention(self, req).await
    }
    async fn get_object_retention(
        &self,
        req: S3Request<dto::GetObjectRetentionInput>,
    ) -> S3Result<S3Response<dto::GetObjectRetentionOutput>> {
        CofferS3::get_object_retention(self, req).await
    }
    async fn put_object_legal_hold(
        &self,
        req: S3Request<dto::PutObjectLegalHoldInput>,
    ) -> S3Result<S3Response<dto::PutObjectLegalHoldOutput>> {
        CofferS3::put_object_legal_hold(self, req).await
    }
    async fn get_object_legal_hold(
        &self,
        req: S3Request<dto::GetObjectLegalHoldInput>,
    ) -> S3Result<S3Response<dto::GetObjectLegalHoldOutput>> {
        CofferS3::get_object_legal_hold(self, req).await
    }
}
