//! Objects through S3: put, get, head, delete (one or many), copy, and the
//! listings of keys and of versions. A bucket is a key's first segment, so
//! `s3://invoices/2024/a.pdf` is the coffer key `invoices/2024/a.pdf`.

use axum::http::StatusCode;
use coffer::access::Scope;
use coffer::{ByteRange, CopyOptions, GetOptions, ListOptions, ObjectVersion, PutOptions, VersionId};
use futures::{StreamExt, TryStreamExt};
use md5::{Digest, Md5};
use s3s::dto::{self, ETag, StreamingBlob, Timestamp};
use s3s::{S3ErrorCode, S3Request, S3Response, S3Result};

use super::auth::S3Caller;
use super::errors::{refused, s3_error, s3_error_as};
use super::{CofferS3, content_md5_hex, key_in, missing, version_id};
use crate::api::objects::{precondition_status, system_time};

/// The S3 form of a version's time.
pub fn timestamp(version: &ObjectVersion) -> Timestamp {
    Timestamp::from(system_time(version))
}

/// The S3 form of a version's ETag.
pub fn etag(version: &ObjectVersion) -> Option<ETag> {
    version.etag.clone().map(ETag::Strong)
}

/// A request body as the stream a put takes; with `expected_md5` (hex)
/// bytes that do not match it fail the stream at its end, so nothing is
/// committed.
pub fn body_of(body: Option<StreamingBlob>, expected_md5: Option<String>) -> coffer::body::ByteStream {
    let stream = match body {
        Some(body) => body
            .map_err(|e| coffer::Error::new(coffer::ErrorKind::Io, format!("the request body broke off: {e}")))
            .boxed(),
        None => futures::stream::empty().boxed(),
    };
    let Some(expected) = expected_md5 else {
        return stream;
    };
    let mut md5 = Some(Md5::new());
    let checked = stream
        .map(Some)
        .chain(futures::stream::once(async { None }))
        .filter_map(move |item| {
            let out = match item {
                Some(Ok(chunk)) => {
                    if let Some(md5) = md5.as_mut() {
                        md5.update(&chunk);
                    }
                    Some(Ok(chunk))
                }
                Some(Err(e)) => Some(Err(e)),
                None => match md5.take().map(|md5| hex::encode(md5.finalize())) {
                    Some(actual) if actual != expected => Some(Err(coffer::Error::new(
                        coffer::ErrorKind::IntegrityMismatch,
                        "the body does not match its Content-MD5",
                    ))),
                    _ => None,
                },
            };
            futures::future::ready(out)
        });
    checked.boxed()
}

/// The metadata of a request, as coffer keeps it.
fn metadata_of(metadata: Option<dto::Metadata>) -> coffer::Metadata {
    metadata.unwrap_or_default().into_iter().collect()
}

/// The metadata of a version, as S3 answers it.
fn metadata_out(version: &ObjectVersion) -> Option<dto::Metadata> {
    (!version.metadata.is_empty()).then(|| version.metadata.clone().into_iter().collect())
}

impl CofferS3 {
    pub(super) async fn put_object(
        &self,
        req: S3Request<dto::PutObjectInput>,
    ) -> S3Result<S3Response<dto::PutObjectOutput>> {
        let caller = S3Caller::of(&self.store, &self.tokens, req.credentials.as_ref()).await?;
        let input = req.input;
        let key = key_in(&input.bucket, &input.key);
        caller.allow(Scope::Write, Some(&key))?;
        self.require_bucket(&input.bucket).await?;
        let retention = super::locks::retention_of(
            input.object_lock_mode.as_ref(),
            input.object_lock_retain_until_date.as_ref(),
        )?;
        let options = PutOptions {
            content_type: input.content_type.map(|t| t.to_string()),
            metadata: metadata_of(input.metadata),
            tags: super::tagging::tags_of_header(input.tagging.as_deref())?,
            if_match: input
                .if_match
                .as_ref()
                .and_then(|c| c.as_etag())
                .map(|e| e.value().to_owned()),
            if_none_match: input.if_none_match.as_ref().is_some_and(|c| c.is_any()),
            storage_class: None,
            retention,
            legal_hold: super::locks::legal_hold_on(input.object_lock_legal_hold_status.as_ref()),
            ..PutOptions::default()
        };
        let body = body_of(input.body, content_md5_hex(input.content_md5.as_deref())?);
        let version = caller.store.put_stream(&key, body, options).await.map_err(s3_error)?;
        Ok(S3Response::new(dto::PutObjectOutput {
            e_tag: etag(&version),
            version_id: Some(version.version_id.to_string()),
            size: Some(version.size as i64),
            ..Default::default()
        }))
    }

    pub(super) async fn get_object(
        &self,
        req: S3Request<dto::GetObjectInput>,
    ) -> S3Result<S3Response<dto::GetObjectOutput>> {
        let caller = S3Caller::of(&self.store, &self.tokens, req.credentials.as_ref()).await?;
        let input = req.input;
        let key = key_in(&input.bucket, &input.key);
        caller.allow(Scope::Read, Some(&key))?;
        let wanted = version_id(input.version_id.as_deref())?;
        let version = self.readable(&caller, &key, wanted.as_ref()).await?;
        check_preconditions(&req.headers, &version)?;
        let range = input.range.map(|range| match range {
            dto::Range::Int {
                first,
                last: Some(last),
            } => ByteRange::Inclusive { first, last },
            dto::Range::Int { first, last: None } => ByteRange::From(first),
            dto::Range::Suffix { length } => ByteRange::Suffix(length),
        });
        let span = match range {
            Some(range) => Some(range.resolve(version.size).map_err(|_| {
                refused(
                    S3ErrorCode::InvalidRange,
                    format!("the range is not satisfiable: the object has {} bytes", version.size),
                )
            })?),
            None => None,
        };
        let options = GetOptions {
            range,
            ..GetOptions::default()
        };
        let read = caller
            .store
            .open_version(version.clone(), options)
            .await
            .map_err(s3_error)?;
        let body = sync_wrapper::SyncStream::new(read.body);
        let length = read.range.end - read.range.start;
        let mut output = dto::GetObjectOutput {
            body: Some(StreamingBlob::wrap(body)),
            content_length: Some(length as i64),
            content_type: version.content_type.as_deref().and_then(|t| t.parse().ok()),
            e_tag: etag(&version),
            last_modified: Some(timestamp(&version)),
            metadata: metadata_out(&version),
            version_id: Some(version.version_id.to_string()),
            accept_ranges: Some("bytes".into()),
            tag_count: (!version.tags.is_empty()).then_some(version.tags.len() as i32),
            ..Default::default()
        };
        super::locks::describe(
            &version,
            &mut output.object_lock_mode,
            &mut output.object_lock_retain_until_date,
            &mut output.object_lock_legal_hold_status,
        );
        if let Some(span) = span {
            output.content_range = Some(format!("bytes {}-{}/{}", span.start, span.end - 1, version.size));
        }
        Ok(S3Response::new(output))
    }

    pub(super) async fn head_object(
        &self,
        req: S3Request<dto::HeadObjectInput>,
    ) -> S3Result<S3Response<dto::HeadObjectOutput>> {
        let caller = S3Caller::of(&self.store, &self.tokens, req.credentials.as_ref()).await?;
        let input = req.input;
        let key = key_in(&input.bucket, &input.key);
        caller.allow(Scope::Read, Some(&key))?;
        let wanted = version_id(input.version_id.as_deref())?;
        let version = self.readable(&caller, &key, wanted.as_ref()).await?;
        check_preconditions(&req.headers, &version)?;
        let mut output = dto::HeadObjectOutput {
            content_length: Some(version.size as i64),
            content_type: version.content_type.as_deref().and_then(|t| t.parse().ok()),
            e_tag: etag(&version),
            last_modified: Some(timestamp(&version)),
            metadata: metadata_out(&version),
            version_id: Some(version.version_id.to_string()),
            accept_ranges: Some("bytes".into()),
            ..Default::default()
        };
        super::locks::describe(
            &version,
            &mut output.object_lock_mode,
            &mut output.object_lock_retain_until_date,
            &mut output.object_lock_legal_hold_status,
        );
        Ok(S3Response::new(output))
    }

    /// The version a read names: the latest unless `wanted`; a key whose
    /// latest version is a delete marker is missing, as S3 has it.
    async fn readable(&self, caller: &S3Caller, key: &str, wanted: Option<&VersionId>) -> S3Result<ObjectVersion> {
        let not_found = missing(wanted);
        let version = caller
            .store
            .head(key, wanted)
            .await
            .map_err(|e| s3_error_as(e, not_found.clone()))?;
        if version.is_delete_marker {
            let mut error = refused(
                match wanted {
                    Some(_) => S3ErrorCode::MethodNotAllowed,
                    None => S3ErrorCode::NoSuchKey,
                },
                format!(
                    "{key} is deleted (its version {} is a delete marker)",
                    version.version_id
                ),
            );
            let mut headers = axum::http::HeaderMap::new();
            headers.insert("x-amz-delete-marker", axum::http::HeaderValue::from_static("true"));
            if let Ok(value) = version.version_id.as_str().parse() {
                headers.insert("x-amz-version-id", value);
            }
            error.set_headers(headers);
            return Err(error);
        }
        Ok(version)
    }

    pub(super) async fn delete_object(
        &self,
        req: S3Request<dto::DeleteObjectInput>,
    ) -> S3Result<S3Response<dto::DeleteObjectOutput>> {
        let caller = S3Caller::of(&self.store, &self.tokens, req.credentials.as_ref()).await?;
        let input = req.input;
        let key = key_in(&input.bucket, &input.key);
        let bypass = input.bypass_governance_retention.unwrap_or(false);
        let removed = delete_one(&caller, &key, input.version_id.as_deref(), bypass).await?;
        Ok(S3Response::new(removed))
    }

    pub(super) async fn delete_objects(
        &self,
        req: S3Request<dto::DeleteObjectsInput>,
    ) -> S3Result<S3Response<dto::DeleteObjectsOutput>> {
        let caller = S3Caller::of(&self.store, &self.tokens, req.credentials.as_ref()).await?;
        let input = req.input;
        let bypass = input.bypass_governance_retention.unwrap_or(false);
        let quiet = input.delete.quiet.unwrap_or(false);
        let (mut deleted, mut errors) = (Vec::new(), Vec::new());
        for object in input.delete.objects {
            let key = key_in(&input.bucket, &object.key);
            match delete_one(&caller, &key, object.version_id.as_deref(), bypass).await {
                Ok(removed) => {
                    if !quiet {
                        deleted.push(dto::DeletedObject {
                            key: Some(object.key),
                            version_id: object.version_id.clone(),
                            delete_marker: removed.delete_marker,
                            delete_marker_version_id: removed.delete_marker.filter(|m| *m).and(removed.version_id),
                        });
                    }
                }
                Err(e) => errors.push(dto::Error {
                    code: Some(e.code().as_str().to_owned()),
                    key: Some(object.key),
                    message: e.message().map(str::to_owned),
                    version_id: object.version_id,
                }),
            }
        }
        Ok(S3Response::new(dto::DeleteObjectsOutput {
            deleted: Some(deleted),
            errors: Some(errors),
            ..Default::default()
        }))
    }

    pub(super) async fn copy_object(
        &self,
        req: S3Request<dto::CopyObjectInput>,
    ) -> S3Result<S3Response<dto::CopyObjectOutput>> {
        let caller = S3Caller::of(&self.store, &self.tokens, req.credentials.as_ref()).await?;
        let input = req.input;
        let dto::CopySource::Bucket {
            bucket,
            key,
            version_id: source_version,
        } = &input.copy_source
        else {
            return Err(refused(
                S3ErrorCode::NotImplemented,
                "copies from access points are not supported: name a bucket and key",
            ));
        };
        let source = key_in(bucket, key);
        let destination = key_in(&input.bucket, &input.key);
        caller.allow(Scope::Read, Some(&source))?;
        caller.allow(Scope::Write, Some(&destination))?;
        self.require_bucket(&input.bucket).await?;
        let replace = input
            .metadata_directive
            .as_ref()
            .is_some_and(|d| d.as_str() == dto::MetadataDirective::REPLACE);
        let options = CopyOptions {
            source_version: version_id(source_version.as_deref())?,
            metadata: replace.then(|| metadata_of(input.metadata)),
            content_type: if replace {
                input.content_type.map(|t| t.to_string())
            } else {
                None
            },
        };
        let version = caller
            .store
            .copy(&source, &destination, options)
            .await
            .map_err(s3_error)?;
        Ok(S3Response::new(dto::CopyObjectOutput {
            copy_object_result: Some(dto::CopyObjectResult {
                e_tag: etag(&version),
                last_modified: Some(timestamp(&version)),
                ..Default::default()
            }),
            version_id: Some(version.version_id.to_string()),
            copy_source_version_id: source_version.as_deref().map(str::to_owned),
            ..Default::default()
        }))
    }

    pub(super) async fn list_objects_v2(
        &self,
        req: S3Request<dto::ListObjectsV2Input>,
    ) -> S3Result<S3Response<dto::ListObjectsV2Output>> {
        let caller = S3Caller::of(&self.store, &self.tokens, req.credentials.as_ref()).await?;
        let input = req.input;
        let start_after = input.continuation_token.clone().or(input.start_after.clone());
        let page = self
            .list_page(
                &caller,
                &input.bucket,
                input.prefix.as_deref(),
                input.delimiter.as_deref(),
                input.max_keys,
                start_after,
            )
            .await?;
        Ok(S3Response::new(dto::ListObjectsV2Output {
            name: Some(input.bucket.clone()),
            prefix: input.prefix,
            delimiter: input.delimiter,
            max_keys: input.max_keys,
            key_count: Some((page.objects.len() + page.common_prefixes.len()) as i32),
            continuation_token: input.continuation_token,
            start_after: input.start_after,
            is_truncated: Some(page.is_truncated),
            next_continuation_token: page.next,
            contents: Some(page.objects),
            common_prefixes: Some(page.common_prefixes),
            ..Default::default()
        }))
    }

    pub(super) async fn list_objects(
        &self,
        req: S3Request<dto::ListObjectsInput>,
    ) -> S3Result<S3Response<dto::ListObjectsOutput>> {
        let caller = S3Caller::of(&self.store, &self.tokens, req.credentials.as_ref()).await?;
        let input = req.input;
        let page = self
            .list_page(
                &caller,
                &input.bucket,
                input.prefix.as_deref(),
                input.delimiter.as_deref(),
                input.max_keys,
                input.marker.clone(),
            )
            .await?;
        Ok(S3Response::new(dto::ListObjectsOutput {
            name: Some(input.bucket.clone()),
            prefix: input.prefix,
            delimiter: input.delimiter,
            max_keys: input.max_keys,
            marker: input.marker,
            is_truncated: Some(page.is_truncated),
            next_marker: page.next,
            contents: Some(page.objects),
            common_prefixes: Some(page.common_prefixes),
            ..Default::default()
        }))
    }

    pub(super) async fn list_object_versions(
        &self,
        req: S3Request<dto::ListObjectVersionsInput>,
    ) -> S3Result<S3Response<dto::ListObjectVersionsOutput>> {
        let caller = S3Caller::of(&self.store, &self.tokens, req.credentials.as_ref()).await?;
        let input = req.input;
        let options = self
            .list_options(
                &caller,
                &input.bucket,
                input.prefix.as_deref(),
                None,
                input.max_keys,
                input.key_marker.clone(),
            )
            .await?;
        let page = caller.store.list_versions(&options).await.map_err(s3_error)?;
        let (mut versions, mut markers) = (Vec::new(), Vec::new());
        for version in page.objects {
            let key = Some(strip_bucket(&input.bucket, version.key.as_str()));
            if version.is_delete_marker {
                markers.push(dto::DeleteMarkerEntry {
                    is_latest: Some(version.is_latest),
                    key,
                    last_modified: Some(timestamp(&version)),
                    version_id: Some(version.version_id.to_string()),
                    owner: None,
                });
            } else {
                versions.push(dto::ObjectVersion {
                    e_tag: etag(&version),
                    is_latest: Some(version.is_latest),
                    key,
                    last_modified: Some(timestamp(&version)),
                    size: Some(version.size as i64),
                    version_id: Some(version.version_id.to_string()),
                    storage_class: Some(dto::ObjectVersionStorageClass::from_static(
                        dto::ObjectVersionStorageClass::STANDARD,
                    )),
                    ..Default::default()
                });
            }
        }
        Ok(S3Response::new(dto::ListObjectVersionsOutput {
            name: Some(input.bucket.clone()),
            prefix: input.prefix,
            max_keys: input.max_keys,
            key_marker: input.key_marker,
            is_truncated: Some(page.is_truncated),
            next_key_marker: page.next_start_after.map(|k| strip_bucket(&input.bucket, &k)),
            versions: Some(versions),
            delete_markers: Some(markers),
            ..Default::default()
        }))
    }

    /// The listing options of a request in `bucket`: its prefix narrowed to
    /// what the token may see, and `start_after` made a full key.
    async fn list_options(
        &self,
        caller: &S3Caller,
        bucket: &str,
        prefix: Option<&str>,
        delimiter: Option<&str>,
        max_keys: Option<i32>,
        start_after: Option<String>,
    ) -> S3Result<ListOptions> {
        self.require_bucket(bucket).await?;
        let prefix = caller.narrow_prefix(&key_in(bucket, prefix.unwrap_or_default()))?;
        let max_keys = match max_keys {
            Some(n) if n < 0 => return Err(refused(S3ErrorCode::InvalidArgument, "max-keys is negative")),
            Some(n) => (n as usize).min(coffer::MAX_LIST_KEYS),
            None => 1000,
        };
        Ok(ListOptions {
            prefix,
            delimiter: delimiter.filter(|d| !d.is_empty()).map(str::to_owned),
            max_keys,
            start_after: start_after.map(|after| key_in(bucket, &after)),
        })
    }

    async fn list_page(
        &self,
        caller: &S3Caller,
        bucket: &str,
        prefix: Option<&str>,
        delimiter: Option<&str>,
        max_keys: Option<i32>,
        start_after: Option<String>,
    ) -> S3Result<KeysPage> {
        let options = self
            .list_options(caller, bucket, prefix, delimiter, max_keys, start_after)
            .await?;
        if options.max_keys == 0 {
            return Ok(KeysPage::default());
        }
        let page = caller.store.list(&options).await.map_err(s3_error)?;
        Ok(KeysPage {
            objects: page
                .objects
                .iter()
                .map(|version| dto::Object {
                    key: Some(strip_bucket(bucket, version.key.as_str())),
                    e_tag: etag(version),
                    last_modified: Some(timestamp(version)),
                    size: Some(version.size as i64),
                    storage_class: Some(dto::ObjectStorageClass::from_static(dto::ObjectStorageClass::STANDARD)),
                    ..Default::default()
                })
                .collect(),
            common_prefixes: page
                .common_prefixes
                .iter()
                .map(|prefix| dto::CommonPrefix {
                    prefix: Some(strip_bucket(bucket, prefix)),
                })
                .collect(),
            is_truncated: page.is_truncated,
            next: page.next_start_after.map(|k| strip_bucket(bucket, &k)),
        })
    }
}

/// One page of keys, in S3's terms.
#[derive(Default)]
struct KeysPage {
    objects: Vec<dto::Object>,
    common_prefixes: Vec<dto::CommonPrefix>,
    is_truncated: bool,
    next: Option<String>,
}

/// `key` without its bucket segment.
fn strip_bucket(bucket: &str, key: &str) -> String {
    key.strip_prefix(bucket)
        .and_then(|k| k.strip_prefix('/'))
        .unwrap_or(key)
        .to_owned()
}

/// Delete a key (a delete marker) or, with `version`, one version for good.
async fn delete_one(
    caller: &S3Caller,
    key: &str,
    version: Option<&str>,
    bypass_governance: bool,
) -> S3Result<dto::DeleteObjectOutput> {
    caller.allow(Scope::Write, Some(key))?;
    let Some(version) = version_id(version)? else {
        let marker = caller.store.delete(key).await.map_err(s3_error)?;
        return Ok(dto::DeleteObjectOutput {
            delete_marker: Some(true),
            version_id: Some(marker.version_id.to_string()),
            ..Default::default()
        });
    };
    let removed = match bypass_governance {
        false => caller.store.delete_version(key, &version).await,
        true => {
            caller.allow(Scope::Admin, Some(key))?;
            caller.store.delete_version_bypassing_governance(key, &version).await
        }
    };
    // Deleting a version that is not there succeeds, as S3 has it.
    let removed = match removed {
        Err(e) if e.kind() == coffer::ErrorKind::NotFound => None,
        other => Some(other.map_err(s3_error)?),
    };
    Ok(dto::DeleteObjectOutput {
        delete_marker: removed.as_ref().map(|v| v.is_delete_marker),
        version_id: Some(version.to_string()),
        ..Default::default()
    })
}

/// 304 or 412 as the request's conditional headers make of `version`.
fn check_preconditions(headers: &axum::http::HeaderMap, version: &ObjectVersion) -> S3Result<()> {
    match precondition_status(headers, version) {
        Some(StatusCode::NOT_MODIFIED) => {
            let mut error = refused(S3ErrorCode::NotModified, "not modified");
            error.set_status_code(StatusCode::NOT_MODIFIED);
            Err(error)
        }
        Some(_) => Err(refused(
            S3ErrorCode::PreconditionFailed,
            "a condition of the request does not hold",
        )),
        None => Ok(()),
    }
}
