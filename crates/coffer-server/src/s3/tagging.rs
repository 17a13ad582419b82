//! Object tagging through S3, on coffer's tags: a version's tags are its
//! tag set (PutObjectTagging replaces it, DeleteObjectTagging empties it),
//! and a put's `x-amz-tagging` header gives the new version's tags.

use coffer::Tags;
use coffer::access::Scope;
use s3s::dto;
use s3s::{S3ErrorCode, S3Request, S3Response, S3Result};

use super::auth::S3Caller;
use super::errors::{refused, s3_error_as};
use super::{CofferS3, key_in, missing, version_id};

/// The tags of an `x-amz-tagging` header (`k1=v1&k2=v2`, URL-encoded).
pub fn tags_of_header(header: Option<&str>) -> S3Result<Tags> {
    let Some(header) = header.filter(|h| !h.is_empty()) else {
        return Ok(Tags::new());
    };
    serde_urlencoded::from_str::<Vec<(String, String)>>(header)
        .map(|pairs| pairs.into_iter().collect())
        .map_err(|e| refused(S3ErrorCode::InvalidArgument, format!("x-amz-tagging: {e}")))
}

impl CofferS3 {
    /// Replace the tags of the version a call names with `set`.
    async fn retag(
        &self,
        caller: &S3Caller,
        key: &str,
        version: Option<&str>,
        set: Tags,
    ) -> S3Result<coffer::ObjectVersion> {
        caller.allow(Scope::Write, Some(key))?;
        let wanted = version_id(version)?;
        let not_found = missing(wanted.as_ref());
        let current = caller
            .store
            .head(key, wanted.as_ref())
            .await
            .map_err(|e| s3_error_as(e, not_found.clone()))?;
        let remove: Vec<String> = current.tags.keys().filter(|k| !set.contains_key(*k)).cloned().collect();
        caller
            .store
            .tag(key, &current.version_id, set, &remove)
            .await
            .map_err(|e| s3_error_as(e, not_found))
    }

    pub(super) async fn put_object_tagging(
        &self,
        req: S3Request<dto::PutObjectTaggingInput>,
    ) -> S3Result<S3Response<dto::PutObjectTaggingOutput>> {
        let caller = S3Caller::of(&self.store, &self.tokens, req.credentials.as_ref()).await?;
        let input = req.input;
        let key = key_in(&input.bucket, &input.key);
        let mut set = Tags::new();
        for tag in input.tagging.tag_set {
            let (Some(name), Some(value)) = (tag.key, tag.value) else {
                return Err(refused(S3ErrorCode::InvalidTag, "a tag needs a Key and a Value"));
            };
            set.insert(name, value);
        }
        let version = self.retag(&caller, &key, input.version_id.as_deref(), set).await?;
        Ok(S3Response::new(dto::PutObjectTaggingOutput {
            version_id: Some(version.version_id.to_string()),
        }))
    }

    pub(super) async fn get_object_tagging(
        &self,
        req: S3Request<dto::GetObjectTaggingInput>,
    ) -> S3Result<S3Response<dto::GetObjectTaggingOutput>> {
        let caller = S3Caller::of(&self.store, &self.tokens, req.credentials.as_ref()).await?;
        let input = req.input;
        let key = key_in(&input.bucket, &input.key);
        caller.allow(Scope::Read, Some(&key))?;
        let wanted = version_id(input.version_id.as_deref())?;
        let not_found = missing(wanted.as_ref());
        let version = caller
            .store
            .head(&key, wanted.as_ref())
            .await
            .map_err(|e| s3_error_as(e, not_found))?;
        Ok(S3Response::new(dto::GetObjectTaggingOutput {
            tag_set: version
                .tags
                .iter()
                .map(|(k, v)| dto::Tag {
                    key: Some(k.clone()),
                    value: Some(v.clone()),
                })
                .collect(),
            version_id: Some(version.version_id.to_string()),
        }))
    }

    pub(super) async fn delete_object_tagging(
        &self,
        req: S3Request<dto::DeleteObjectTaggingInput>,
    ) -> S3Result<S3Response<dto::DeleteObjectTaggingOutput>> {
        let caller = S3Caller::of(&self.store, &self.tokens, req.credentials.as_ref()).await?;
        let input = req.input;
        let key = key_in(&input.bucket, &input.key);
        let version = self
            .retag(&caller, &key, input.version_id.as_deref(), Tags::new())
            .await?;
        Ok(S3Response::new(dto::DeleteObjectTaggingOutput {
            version_id: Some(version.version_id.to_string()),
        }))
    }
}
