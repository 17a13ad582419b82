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
            address: crate::config::redact_url(endpoint.trim_end_matches('/')),
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
            (opendal::ErrorKind::NotFound, _) => (ErrorKind::NotFound, format!("not found on {self}")),
            (opendal::ErrorKind::Unsupported, _) => (
                ErrorKind::Unsupported,
                format!("{self} cannot do this ({})", one_line(err.message())),
            ),
            (opendal::ErrorKind::ConfigInvalid, _) => (
                ErrorKind::InvalidInput,
                format!("{self}: invalid settings ({})", one_line(err.message())),
            ),
            (opendal::ErrorKind::PermissionDenied, _) => (
                ErrorKind::BackendUnavailable,
                format!(
                    "{self} refused access ({}): check the credentials",
                    code.unwrap_or("permission denied")
                ),
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
        "signing http request" => "no credentials to sign the request with".to_owned(),
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
        assert!(!denied.is_retryable());
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
