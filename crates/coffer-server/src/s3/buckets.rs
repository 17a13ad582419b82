//! Buckets through S3: list, create (recorded empty), delete (when empty),
//! head, location, and versioning (always on: every write is a version).

use coffer::access::Scope;
use s3s::dto;
use s3s::{S3ErrorCode, S3Request, S3Response, S3Result};

use super::CofferS3;
use super::auth::S3Caller;
use super::errors::{refused, s3_error, s3_error_as};

impl CofferS3 {
    /// Refuse (NoSuchBucket) a bucket that was neither made nor holds keys.
    pub(super) async fn require_bucket(&self, bucket: &str) -> S3Result<()> {
        match self.store.bucket_exists(bucket).await {
            Ok(true) => Ok(()),
            Ok(false) => Err(refused(S3ErrorCode::NoSuchBucket, format!("no bucket {bucket}"))),
            Err(e) => Err(s3_error_as(e, S3ErrorCode::NoSuchBucket)),
        }
    }

    pub(super) async fn list_buckets(
        &self,
        req: S3Request<dto::ListBucketsInput>,
    ) -> S3Result<S3Response<dto::ListBucketsOutput>> {
        let caller = S3Caller::of(&self.store, &self.tokens, req.credentials.as_ref()).await?;
        let buckets = caller.store.buckets().await.map_err(s3_error)?;
        let buckets = buckets
            .into_iter()
            // A token with a prefix sees the buckets it reaches.
            .filter(|bucket| caller.narrow_prefix(&format!("{}/", bucket.name)).is_ok())
            .map(|bucket| dto::Bucket {
                name: Some(bucket.name),
                creation_date: bucket.created_at.map(super::locks::s3_time),
                bucket_region: None,
            })
            .collect();
        Ok(S3Response::new(dto::ListBucketsOutput {
            buckets: Some(buckets),
            owner: Some(dto::Owner {
                display_name: Some("coffer".into()),
                id: Some("coffer".into()),
            }),
            ..Default::default()
        }))
    }

    pub(super) async fn create_bucket(
        &self,
        req: S3Request<dto::CreateBucketInput>,
    ) -> S3Result<S3Response<dto::CreateBucketOutput>> {
        let caller = S3Caller::of(&self.store, &self.tokens, req.credentials.as_ref()).await?;
        let bucket = req.input.bucket;
        caller.allow(Scope::Write, Some(&format!("{bucket}/")))?;
        caller.store.create_bucket(&bucket).await.map_err(|e| match e.kind() {
            coffer::ErrorKind::Conflict => refused(S3ErrorCode::BucketAlreadyOwnedByYou, e.to_string()),
            _ => s3_error(e),
        })?;
        Ok(S3Response::new(dto::CreateBucketOutput {
            location: Some(format!("/{bucket}")),
        }))
    }

    pub(super) async fn delete_bucket(
        &self,
        req: S3Request<dto::DeleteBucketInput>,
    ) -> S3Result<S3Response<dto::DeleteBucketOutput>> {
        let caller = S3Caller::of(&self.store, &self.tokens, req.credentials.as_ref()).await?;
        let bucket = req.input.bucket;
        caller.allow(Scope::Write, Some(&format!("{bucket}/")))?;
        caller.store.delete_bucket(&bucket).await.map_err(|e| match e.kind() {
            coffer::ErrorKind::Conflict => refused(S3ErrorCode::BucketNotEmpty, e.to_string()),
            _ => s3_error_as(e, S3ErrorCode::NoSuchBucket),
        })?;
        Ok(S3Response::new(dto::DeleteBucketOutput {}))
    }

    pub(super) async fn head_bucket(
        &self,
        req: S3Request<dto::HeadBucketInput>,
    ) -> S3Result<S3Response<dto::HeadBucketOutput>> {
        S3Caller::of(&self.store, &self.tokens, req.credentials.as_ref()).await?;
        self.require_bucket(&req.input.bucket).await?;
        Ok(S3Response::new(dto::HeadBucketOutput::default()))
    }

    pub(super) async fn get_bucket_location(
        &self,
        req: S3Request<dto::GetBucketLocationInput>,
    ) -> S3Result<S3Response<dto::GetBucketLocationOutput>> {
        S3Caller::of(&self.store, &self.tokens, req.credentials.as_ref()).await?;
        self.require_bucket(&req.input.bucket).await?;
        Ok(S3Response::new(dto::GetBucketLocationOutput::default()))
    }

    pub(super) async fn get_bucket_versioning(
        &self,
        req: S3Request<dto::GetBucketVersioningInput>,
    ) -> S3Result<S3Response<dto::GetBucketVersioningOutput>> {
        S3Caller::of(&self.store, &self.tokens, req.credentials.as_ref()).await?;
        self.require_bucket(&req.input.bucket).await?;
        Ok(S3Response::new(dto::GetBucketVersioningOutput {
            status: Some(dto::BucketVersioningStatus::from_static(
                dto::BucketVersioningStatus::ENABLED,
            )),
            mfa_delete: None,
        }))
    }

    pub(super) async fn put_bucket_versioning(
        &self,
        req: S3Request<dto::PutBucketVersioningInput>,
    ) -> S3Result<S3Response<dto::PutBucketVersioningOutput>> {
        S3Caller::of(&self.store, &self.tokens, req.credentials.as_ref()).await?;
        self.require_bucket(&req.input.bucket).await?;
        let status = req.input.versioning_configuration.status;
        match status.as_ref().map(|s| s.as_str()) {
            Some(dto::BucketVersioningStatus::ENABLED) => Ok(S3Response::new(dto::PutBucketVersioningOutput {})),
            _ => Err(refused(
                S3ErrorCode::InvalidArgument,
                "versioning is always enabled in coffer: every write is a version",
            )),
        }
    }
}
