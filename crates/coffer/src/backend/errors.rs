//! What a user reads when a store fails: one line that names the store (its
//! kind and address, never credentials) and the cause, in words (`connection
//! refused`, `bucket ... does not exist`, `archived: restore it first`). The
//! storage library's own text (request context, response headers, the
//! service's error body) stays in the error's source, which the CLI prints
//! only when asked (`-v` or `RUST_LOG`).

use std::fmt;
use std::time::Duration;

use crate::error::{Error, ErrorKind, Result};

/// How long remote calls retry a store that does not answer, by default.
pub const DEFAULT_BACKEND_WAIT: Duration = Duration::from_secs(3);

/// Retries of a remote call before it gives up.
#[cfg(any(feature = "backend-s3", feature = "backend-azblob"))]
const RETRIES: u32 = 4;

/// Retries of remote calls that wait at most `wait` in all: four, each
/// after twice the pause before (with up to as much again of jitter), so a
/// store that is down is known to be down within `wait` (and a put can fall
/// back on the spool), while a passing 503 or reset is ridden out. A zero
/// wait tries once.
#[cfg(any(feature = "backend-s3", feature = "backend-azblob"))]
pub(super) fn retry_layer(wait: Duration) -> opendal::layers::RetryLayer {
    // The pauses are d, 2d, 4d, 8d: 15d, and at most 30d with jitter.
    let first = wait / (2 * ((1 << RETRIES) - 1));
    let layer = opendal::layers::RetryLayer::new()
        .with_jitter()
        .with_min_delay(first)
        .with_max_delay(wait.max(first));
    match first.is_zero() {
        true => layer.with_max_times(0),
        false => layer.with_max_times(RETRIES as usize),
    }
}

/// Parse a wait as `setting` gives it (`3s`, `500ms`, `0s`).
pub(crate) fn parse_wait(setting: &str, text: &str) -> Result<Duration> {
    humantime::parse_duration(text.trim())
        .map_err(|e| Error::invalid_input(format!("{setting} {text:?}: {e}; expected a span like 3s or 500ms")))
}

/// Where a store is, for messages: `s3 http://127.0.0.1:3900`, `fs /srv/blobs`.
#[derive(Debug, Clone)]
pub(crate) struct Place {
    service: &'static str,
    address: String,
    /// The bucket or container, for the message of a missing one.
    container: Option<(&'static str, String)>,
}

impl Place {
    /// A local store, or one in memory, at `address`.
    pub(crate) fn local(service: &'static str, address: String) -> Place {
        Place {
            service,
            address,
            container: None,
        }
    }

    /// A remote store at `endpoint` (a URL, shown without credentials),
    /// holding its objects in the `noun` (bucket, container) `name`.
    #[cfg(any(feature = "backend-s3", feature = "backend-azblob"))]
    pub(crate) fn remote(service: &'static str, endpoint: &str, noun: &'static str, name: &str) -> Place {
        Place {
            service,
            address: crate::redact::redact_url(endpoint.trim_end_matches('/')),
            container: Some((noun, name.to_owned())),
        }
    }

    /// The one-line error of a failed OpenDAL call, with OpenDAL's full
    /// text kept as its source.
    pub(crate) fn error(&self, err: opendal::Error) -> Error {
        let code = service_code(err.message());
        let (kind, message) = match (err.kind(), code) {
            // S3 GLACIER and DEEP_ARCHIVE objects, Azure Archive blobs: not readable until restored.
            (_, Some("InvalidObjectState" | "BlobArchived")) => (
                ErrorKind::Archived,
                format!("archived: restore it first (it is in an archive storage class on {self})"),
            ),
            (_, Some("NoSuchBucket" | "ContainerNotFound")) => (ErrorKind::InvalidInput, self.no_container()),
            _ if err.message() == "signing http request" => (ErrorKind::Unauthorized, self.no_credentials()),
            (kind, code) if kind == opendal::ErrorKind::PermissionDenied || code.is_some_and(is_auth_code) => (
                ErrorKind::Unauthorized,
                self.refused(code.unwrap_or("permission denied"), err.message()),
            ),
            (opendal::ErrorKind::NotFound, _) => (ErrorKind::NotFound, format!("not found on {self}")),
            // Coffer reads only ranges it recorded: an object shorter than that is damaged.
            (opendal::ErrorKind::RangeNotSatisfied, _) => (
                ErrorKind::IntegrityMismatch,
                format!("the object on {self} is shorter than recorded"),
            ),
            (opendal::ErrorKind::Unsupported, _) => (
                ErrorKind::Unsupported,
                format!("{self} cannot do this ({})", one_line(err.message())),
            ),
            (opendal::ErrorKind::ConfigInvalid, _) => (
                ErrorKind::InvalidInput,
                format!("{self}: invalid settings ({})", one_line(err.message())),
            ),
            (_, code) => (
                ErrorKind::BackendUnavailable,
                format!("backend unavailable: {self} ({})", cause(&err, code)),
            ),
        };
        // Network failures, timeouts and 5xx stay retryable after the retry
        // layer gave up on them: the store did not answer, rather than refused.
        let retryable = kind == ErrorKind::BackendUnavailable
            && (err.is_temporary() || err.kind() == opendal::ErrorKind::Unexpected);
        let error = Error::new(kind, message).with_source(err);
        if retryable { error.retryable() } else { error }
    }

    /// The error of a call made beside OpenDAL (bucket creation, storage
    /// classes, tiers) that got no answer.
    #[cfg(any(feature = "backend-s3", feature = "backend-azblob"))]
    pub(crate) fn unreachable(&self, err: reqwest::Error) -> Error {
        let cause = transport_cause(&err).unwrap_or_else(|| innermost(&err));
        Error::new(
            ErrorKind::BackendUnavailable,
            format!("backend unavailable: {self} ({cause})"),
        )
        .with_source(err)
        .retryable()
    }

    /// The one line for a store that refused a request's credentials or
    /// authorization, from the service's error `code` and its text (which
    /// names the expected region of a request signed for another one).
    pub(crate) fn refused(&self, code: &str, text: &str) -> String {
        match code {
            "AuthorizationHeaderMalformed" | "IncorrectEndpoint" | "PermanentRedirect" => match expected_region(text) {
                Some(region) => format!(
                    "wrong region: {self} expects requests signed for region {region} \
                     (set region in the config, COFFER_S3_REGION or --region)"
                ),
                None => format!("{self} refused the request ({code}): check the region and the credentials"),
            },
            _ => format!("{self} refused access ({code}): check the credentials"),
        }
    }

    /// The one line for a request that could not be signed: no credentials found.
    pub(crate) fn no_credentials(&self) -> String {
        format!(
            "no credentials for {self}: set access_key_id and secret_access_key in the config \
             (or the AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY variables, or an AWS profile)"
        )
    }

    /// The error of a side call (one coffer signs itself) answered with
    /// `status` and the error `body`, when the store refused its
    /// credentials or authorization.
    #[cfg(feature = "backend-s3")]
    pub(crate) fn refusal(&self, status: u16, body: &str) -> Option<Error> {
        let code = body
            .split_once("<Code>")
            .and_then(|(_, rest)| rest.split_once("</Code>"))
            .map(|(code, _)| code.trim());
        let refused = matches!(status, 401 | 403) || code.is_some_and(is_auth_code);
        refused.then(|| {
            Error::new(
                ErrorKind::Unauthorized,
                self.refused(code.unwrap_or("permission denied"), body),
            )
        })
    }

    /// The one line for a bucket or container that does not exist.
    pub(crate) fn no_container(&self) -> String {
        let (noun, name) = match &self.container {
            Some((noun, name)) => (*noun, name.as_str()),
            None => ("bucket", ""),
        };
        let setting = match noun {
            "container" => "create_container",
            _ => "create_bucket",
        };
        format!(
            "{noun} {name} does not exist on {self}: create it with --create-bucket ({setting} = true in the config)"
        )
    }
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.address.is_empty() {
            true => f.write_str(self.service),
            false => write!(f, "{} {}", self.service, self.address),
        }
    }
}

/// The error code a service's error body names (`NoSuchBucket`,
/// `InvalidObjectState`, `BlobArchived` ...): OpenDAL's message for an
/// error response is the parsed body, `S3Error { code: "...", ... }`.
fn service_code(message: &str) -> Option<&str> {
    let start = message.find("code: \"")? + "code: \"".len();
    let code = &message[start..];
    let code = &code[..code.find('"')?];
    (!code.is_empty()).then_some(code)
}

/// Whether a service's error code says the request's credentials or
/// authorization were refused (rather than that the store failed).
fn is_auth_code(code: &str) -> bool {
    matches!(
        code,
        "AccessDenied"
            | "AuthorizationHeaderMalformed"
            | "AuthorizationQueryParametersError"
            | "ExpiredToken"
            | "IncorrectEndpoint"
            | "InvalidAccessKeyId"
            | "InvalidToken"
            | "PermanentRedirect"
            | "SignatureDoesNotMatch"
            | "AuthenticationFailed"
            | "AuthorizationFailure"
            | "AuthorizationPermissionMismatch"
            | "InvalidAuthenticationInfo"
    )
}

/// The region a store says it expects of a request signed for another
/// one: AWS's `... expecting 'eu-west-1'` or `<Region>eu-west-1</Region>`,
/// Garage's `... expected: '20261130/garage/s3/aws4_request'`.
fn expected_region(text: &str) -> Option<&str> {
    let region = if let Some((_, rest)) = text.split_once("expecting '") {
        rest.split('\'').next()?
    } else if let Some((_, rest)) = text.split_once("<Region>") {
        rest.split("</Region>").next()?
    } else {
        let (_, rest) = text.split_once("expected: '")?;
        let scope = rest.split('\'').next()?;
        scope.split('/').nth(1)?
    };
    let region = region.trim();
    let plain = !region.is_empty()
        && region
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    plain.then_some(region)
}

/// Why a call got no answer, in a few words.
fn cause(err: &opendal::Error, code: Option<&str>) -> String {
    if let Some(cause) = transport_cause(err) {
        return cause;
    }
    if let Some(code) = code {
        return code.to_owned();
    }
    match err.message() {
        // OpenDAL's words for a transport failure without an I/O cause.
        "send http request" | "read data from http response" => innermost(err),
        message if message.contains("timeout") => "timed out".to_owned(),
        message => one_line(message),
    }
}

/// The cause of a failure to reach a server, from the I/O error in
/// `err`'s chain: `connection refused`, `timed out` ...
fn transport_cause(err: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(error) = current {
        if let Some(words) = error.downcast_ref::<std::io::Error>().and_then(io_words) {
            return Some(words.to_owned());
        }
        if error.to_string().contains("dns error") {
            return Some("name not resolved".to_owned());
        }
        current = error.source();
    }
    None
}

fn io_words(err: &std::io::Error) -> Option<&'static str> {
    use std::io::ErrorKind as Io;
    Some(match err.kind() {
        Io::ConnectionRefused => "connection refused",
        Io::ConnectionReset | Io::ConnectionAborted | Io::BrokenPipe | Io::UnexpectedEof => "connection reset",
        Io::TimedOut => "timed out",
        Io::HostUnreachable | Io::NetworkUnreachable => "unreachable",
        _ => return None,
    })
}

/// The deepest cause's text, on one line.
fn innermost(err: &(dyn std::error::Error + 'static)) -> String {
    let mut deepest = err;
    while let Some(source) = deepest.source() {
        deepest = source;
    }
    one_line(&deepest.to_string())
}

/// `text` on one line, at most 160 characters.
fn one_line(text: &str) -> String {
    let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match line.char_indices().nth(160) {
        Some((cut, _)) => format!("{}...", &line[..cut]),
        None => line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s3() -> Place {
        Place {
            service: "s3",
            address: "http://127.0.0.1:1".into(),
            container: Some(("bucket", "archive".into())),
        }
    }

    #[test]
    fn service_errors_become_one_line_kinds() {
        let body = |code: &str| {
            opendal::Error::new(
                opendal::ErrorKind::PermissionDenied,
                format!(
                    "S3Error {{ code: \"{code}\", message: \"The operation is not valid\", resource: \"\", request_id: \"1\" }}"
                ),
            )
        };
        let archived = s3().error(body("InvalidObjectState"));
        assert_eq!(archived.kind(), ErrorKind::Archived);
        assert_eq!(
            archived.message(),
            "archived: restore it first (it is in an archive storage class on s3 http://127.0.0.1:1)"
        );
        let missing = s3().error(opendal::Error::new(
            opendal::ErrorKind::ConfigInvalid,
            "S3Error { code: \"NoSuchBucket\", message: \"\", resource: \"\", request_id: \"\" }",
        ));
        assert_eq!(missing.kind(), ErrorKind::InvalidInput);
        assert_eq!(
            missing.message(),
            "bucket archive does not exist on s3 http://127.0.0.1:1: create it with --create-bucket (create_bucket = true in the config)"
        );
        let denied = s3().error(body("AccessDenied"));
        assert_eq!(
            denied.message(),
            "s3 http://127.0.0.1:1 refused access (AccessDenied): check the credentials"
        );
        assert_eq!(denied.kind(), ErrorKind::Unauthorized);
        assert!(!denied.is_retryable());
        let garage = opendal::Error::new(
            opendal::ErrorKind::Unexpected,
            "S3Error { code: \"AuthorizationHeaderMalformed\", message: \"Authorization header malformed, \
             unexpected scope: '20261130/us-east-1/s3/aws4_request', expected: '20261130/garage/s3/aws4_request'\" }",
        );
        let region = s3().error(garage);
        assert_eq!(region.kind(), ErrorKind::Unauthorized);
        assert_eq!(
            region.message(),
            "wrong region: s3 http://127.0.0.1:1 expects requests signed for region garage \
             (set region in the config, COFFER_S3_REGION or --region)"
        );
        assert_eq!(
            expected_region("the region 'us-east-1' is wrong; expecting 'eu-west-1'"),
            Some("eu-west-1")
        );
        let unsigned = s3().error(opendal::Error::new(
            opendal::ErrorKind::Unexpected,
            "signing http request",
        ));
        assert_eq!(unsigned.kind(), ErrorKind::Unauthorized);
        assert!(
            unsigned
                .message()
                .starts_with("no credentials for s3 http://127.0.0.1:1: set access_key_id")
        );
    }

    #[test]
    fn transport_failures_name_their_cause() {
        let refused = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "os error 111");
        let err = opendal::Error::new(opendal::ErrorKind::Unexpected, "send http request")
            .set_source(refused)
            .set_temporary();
        let error = s3().error(err);
        assert_eq!(error.kind(), ErrorKind::BackendUnavailable);
        assert_eq!(
            error.message(),
            "backend unavailable: s3 http://127.0.0.1:1 (connection refused)"
        );
        assert!(error.is_retryable());
        let odd = opendal::Error::new(opendal::ErrorKind::Unexpected, "send http request")
            .set_source(std::io::Error::other("tls handshake eof"));
        assert_eq!(
            s3().error(odd).message(),
            "backend unavailable: s3 http://127.0.0.1:1 (tls handshake eof)"
        );
        let timeout = opendal::Error::new(opendal::ErrorKind::Unexpected, "io operation timeout reached");
        assert_eq!(
            s3().error(timeout).message(),
            "backend unavailable: s3 http://127.0.0.1:1 (timed out)"
        );
    }

    #[test]
    fn spans_and_codes_parse() {
        assert_eq!(
            parse_wait("COFFER_BACKEND_WAIT", "500ms").unwrap(),
            Duration::from_millis(500)
        );
        assert!(parse_wait("COFFER_BACKEND_WAIT", "soon").is_err());
        assert_eq!(one_line("a\n  b"), "a b");
        assert_eq!(service_code("S3Error { code: \"X\" }"), Some("X"));
        assert_eq!(service_code("<html>"), None);
    }
}
