//! Buckets made empty and multipart uploads in progress, written once for
//! both engines: what an S3 client keeps beside its objects.

use serde::Serialize;

use super::rows::{Param, prefix_upper_bound};
use super::sql::Conn;
use super::writes::write_audit;
use crate::error::{Error, Result};
use crate::key::Metadata;
use crate::time::Timestamp;

/// A bucket recorded by CreateBucket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BucketRecord {
    /// Its name: the first segment of its keys.
    pub name: String,
    /// When it was made.
    pub created_at: Timestamp,
    /// Who made it.
    pub created_by: String,
}

/// A multipart upload in progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MultipartUpload {
    /// Its id.
    pub upload_id: String,
    /// The key it will make a version of.
    pub key: String,
    /// The content type the version will have.
    pub content_type: Option<String>,
    /// The metadata the version will have.
    pub metadata: Metadata,
    /// When it started.
    pub created_at: Timestamp,
    /// Who started it.
    pub created_by: String,
}

/// One part of a multipart upload, staged on the backend.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UploadedPart {
    /// Its number, from 1.
    pub part_number: u32,
    /// Its length in bytes.
    pub size: u64,
    /// Hex MD5 of its bytes.
    pub etag: String,
    /// Where it is staged.
    pub path: String,
    /// Its wrapped data key, in an encrypted store.
    pub data_key: Option<String>,
    /// When it was uploaded.
    pub uploaded_at: Timestamp,
}

/// A change to buckets or multipart uploads, in one transaction.
#[derive(Debug, Clone)]
pub enum MultipartChange {
    /// Record an empty bucket, with its audit row (`Conflict` if recorded).
    CreateBucket {
        /// Its name.
        name: String,
        /// When.
        at: Timestamp,
        /// Who.
        actor: String,
    },
    /// Forget a recorded bucket, with its audit row (`NotFound` if not recorded).
    DeleteBucket {
        /// Its name.
        name: String,
        /// When.
        at: Timestamp,
        /// Who.
        actor: String,
    },
    /// Record a new upload.
    Start(MultipartUpload),
    /// Record a staged part, replacing the part of that number (`NotFound`
    /// when the upload is not in progress).
    Part {
        /// The upload.
        upload_id: String,
        /// The part.
        part: UploadedPart,
    },
    /// Forget an upload and its parts (completed or aborted; `NotFound`
    /// when it is not in progress).
    End {
        /// The upload.
        upload_id: String,
    },
}

/// Apply `change` in the caller's transaction; a refused change writes
/// nothing. Returns the staged paths no row names any more (a replaced
/// part's), for the caller to remove.
pub(super) async fn apply(mut conn: Conn<'_>, change: &MultipartChange) -> Result<Vec<String>> {
    match change {
        MultipartChange::CreateBucket { name, at, actor } => {
            if bucket(&mut conn, name).await?.is_some() {
                return Err(Error::conflict(format!("bucket {name} exists already")));
            }
            conn.execute(
                "recording a bucket",
                "INSERT INTO buckets (name, created_at, created_by) VALUES (?, ?, ?)",
                vec![
                    Param::Text(name.clone()),
                    Param::Int(at.as_micros()),
                    Param::Text(actor.clone()),
                ],
            )
            .await?;
            let detail = serde_json::json!({ "bucket": name });
            write_audit(&mut conn, *at, actor, "bucket_create", detail).await?;
            Ok(Vec::new())
        }
        MultipartChange::DeleteBucket { name, at, actor } => {
            let deleted = conn
                .execute(
                    "removing a bucket",
                    "DELETE FROM buckets WHERE name = ?",
                    vec![Param::Text(name.clone())],
                )
                .await?;
            if deleted == 0 {
                return Err(Error::not_found(format!("no bucket {name}")));
            }
            let detail = serde_json::json!({ "bucket": name });
            write_audit(&mut conn, *at, actor, "bucket_delete", detail).await?;
            Ok(Vec::new())
        }
        MultipartChange::Start(upload) => {
            let metadata = serde_json::to_string(&upload.metadata)
                .map_err(|e| Error::new(crate::error::ErrorKind::Catalog, format!("upload metadata: {e}")))?;
            conn.execute(
                "recording an upload",
                "INSERT INTO multipart_uploads (upload_id, key, content_type, metadata, created_at, created_by) \
                 VALUES (?, ?, ?, ?, ?, ?)",
                vec![
                    Param::Text(upload.upload_id.clone()),
                    Param::Text(upload.key.clone()),
                    upload.content_type.clone().map_or(Param::Null, Param::Text),
                    Param::Text(metadata),
                    Param::Int(upload.created_at.as_micros()),
                    Param::Text(upload.created_by.clone()),
                ],
            )
            .await?;
            Ok(Vec::new())
        }
        MultipartChange::Part { upload_id, part } => {
            if upload_row(&mut conn, upload_id).await?.is_none() {
                return Err(no_upload(upload_id));
            }
            let replaced: Option<(String,)> = conn
                .optional(
                    "reading a part",
                    "SELECT path FROM multipart_parts WHERE upload_id = ? AND part_number = ?",
                    vec![Param::Text(upload_id.clone()), Param::Int(part.part_number.into())],
                )
                .await?;
            conn.execute(
                "replacing a part",
                "DELETE FROM multipart_parts WHERE upload_id = ? AND part_number = ?",
                vec![Param::Text(upload_id.clone()), Param::Int(part.part_number.into())],
            )
            .await?;
            conn.execute(
                "recording a part",
                "INSERT INTO multipart_parts (upload_id, part_number, size, etag, path, data_key, uploaded_at) \
                 VALUES (?, ?, ?, ?, ?, ?, ?)",
                vec![
                    Param::Text(upload_id.clone()),
                    Param::Int(part.part_number.into()),
                    Param::Int(part.size as i64),
                    Param::Text(part.etag.clone()),
                    Param::Text(part.path.clone()),
                    part.data_key.clone().map_or(Param::Null, Param::Text),
                    Param::Int(part.uploaded_at.as_micros()),
                ],
            )
            .await?;
            Ok(replaced.map(|(path,)| path).into_iter().collect())
        }
        MultipartChange::End { upload_id } => {
            let removed = conn
                .execute(
                    "ending an upload",
                    "DELETE FROM multipart_uploads WHERE upload_id = ?",
                    vec![Param::Text(upload_id.clone())],
                )
                .await?;
            if removed == 0 {
                return Err(no_upload(upload_id));
            }
            // The engines cascade the parts' rows.
            Ok(Vec::new())
        }
    }
}

fn no_upload(upload_id: &str) -> Error {
    Error::not_found(format!("no multipart upload {upload_id} is in progress"))
}

async fn bucket(conn: &mut Conn<'_>, name: &str) -> Result<Option<BucketRecord>> {
    let row: Option<(String, i64, String)> = conn
        .optional(
            "reading a bucket",
            "SELECT name, created_at, created_by FROM buckets WHERE name = ?",
            vec![Param::Text(name.to_owned())],
        )
        .await?;
    Ok(row.map(bucket_of))
}

fn bucket_of((name, created, by): (String, i64, String)) -> BucketRecord {
    BucketRecord {
        name,
        created_at: Timestamp::from_micros(created),
        created_by: by,
    }
}

/// Every recorded bucket, by name.
pub(super) async fn buckets(mut conn: Conn<'_>) -> Result<Vec<BucketRecord>> {
    let rows: Vec<(String, i64, String)> = conn
        .all(
            "listing buckets",
            "SELECT name, created_at, created_by FROM buckets ORDER BY name",
            vec![],
        )
        .await?;
    Ok(rows.into_iter().map(bucket_of).collect())
}

const UPLOAD_COLUMNS: &str = "upload_id, key, content_type, metadata, created_at, created_by";
type UploadRow = (String, String, Option<String>, String, i64, String);

fn upload_of((upload_id, key, content_type, metadata, created, by): UploadRow) -> Result<MultipartUpload> {
    let metadata = serde_json::from_str(&metadata).map_err(|e| {
        Error::new(
            crate::error::ErrorKind::Catalog,
            format!("upload {upload_id}: metadata: {e}"),
        )
    })?;
    Ok(MultipartUpload {
        upload_id,
        key,
        content_type,
        metadata,
        created_at: Timestamp::from_micros(created),
        created_by: by,
    })
}

async fn upload_row(conn: &mut Conn<'_>, upload_id: &str) -> Result<Option<UploadRow>> {
    conn.optional(
        "reading an upload",
        &format!("SELECT {UPLOAD_COLUMNS} FROM multipart_uploads WHERE upload_id = ?"),
        vec![Param::Text(upload_id.to_owned())],
    )
    .await
}

/// The upload `upload_id`, if it is in progress.
pub(super) async fn upload(mut conn: Conn<'_>, upload_id: &str) -> Result<Option<MultipartUpload>> {
    upload_row(&mut conn, upload_id).await?.map(upload_of).transpose()
}

/// The uploads in progress of keys under `prefix`, by key then id.
pub(super) async fn uploads(mut conn: Conn<'_>, prefix: &str) -> Result<Vec<MultipartUpload>> {
    let mut filters = vec!["key >= ?"];
    let mut params = vec![Param::Text(prefix.to_owned())];
    if let Some(upper) = prefix_upper_bound(prefix) {
        filters.push("key < ?");
        params.push(Param::Text(upper));
    }
    let sql = format!(
        "SELECT {UPLOAD_COLUMNS} FROM multipart_uploads WHERE {} ORDER BY key, upload_id",
        filters.join(" AND ")
    );
    let rows: Vec<UploadRow> = conn.all("listing uploads", &sql, params).await?;
    rows.into_iter().map(upload_of).collect()
}

/// An upload's parts, by number.
pub(super) async fn parts(mut conn: Conn<'_>, upload_id: &str) -> Result<Vec<UploadedPart>> {
    let rows: Vec<(i64, i64, String, String, Option<String>, i64)> = conn
        .all(
            "listing parts",
            "SELECT part_number, size, etag, path, data_key, uploaded_at FROM multipart_parts \
             WHERE upload_id = ? ORDER BY part_number",
            vec![Param::Text(upload_id.to_owned())],
        )
        .await?;
    Ok(rows
        .into_iter()
        .map(|(number, size, etag, path, data_key, at)| UploadedPart {
            part_number: number as u32,
            size: size as u64,
            etag,
            path,
            data_key,
            uploaded_at: Timestamp::from_micros(at),
        })
        .collect())
}
