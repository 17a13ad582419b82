//! coffer's errors as S3 errors: one code per error kind, as the REST API
//! has one status per kind; the message is the error's one line.

use coffer::ErrorKind;
use s3s::{S3Error, S3ErrorCode};

/// `error` as S3 reports it; a missing thing is a missing key.
pub fn s3_error(error: coffer::Error) -> S3Error {
    s3_error_as(error, S3ErrorCode::NoSuchKey)
}

/// `error` as S3 reports it, with `not_found` for what was not found (a
/// key, a version, an upload or a bucket).
pub fn s3_error_as(error: coffer::Error, not_found: S3ErrorCode) -> S3Error {
    let code = match error.kind() {
        ErrorKind::NotFound => not_found,
        ErrorKind::InvalidKey | ErrorKind::InvalidInput => S3ErrorCode::InvalidArgument,
        ErrorKind::Conflict => S3ErrorCode::PreconditionFailed,
        ErrorKind::Archived => S3ErrorCode::InvalidObjectState,
        ErrorKind::IntegrityMismatch => S3ErrorCode::BadDigest,
        ErrorKind::Unauthorized => S3ErrorCode::InvalidAccessKeyId,
        ErrorKind::Forbidden | ErrorKind::RetentionLocked => S3ErrorCode::AccessDenied,
        ErrorKind::Unsupported => S3ErrorCode::NotImplemented,
        ErrorKind::BackendUnavailable | ErrorKind::Catalog | ErrorKind::NoStore | ErrorKind::KeyUnavailable => {
            S3ErrorCode::ServiceUnavailable
        }
        _ => S3ErrorCode::InternalError,
    };
    S3Error::with_message(code, error.to_string())
}

/// An S3 error with `message`.
pub fn refused(code: S3ErrorCode, message: impl Into<String>) -> S3Error {
    S3Error::with_message(code, message.into())
}
