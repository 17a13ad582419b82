//! The one public error type of the library, with stable kinds.

use std::fmt;

/// What went wrong, as a stable category that callers can branch on.
///
/// The CLI maps every kind to its own exit code (see the README), so the
/// numbering here is part of the public contract: never reuse a code.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The key or version does not exist (or the key's latest version is a delete marker).
    NotFound,
    /// The object key breaks the key rules.
    InvalidKey,
    /// Some other argument or input is malformed (metadata, range, version id, config ...).
    InvalidInput,
    /// A conditional write's precondition failed, or a concurrent change won.
    Conflict,
    /// Stored bytes do not match the hash recorded for them.
    IntegrityMismatch,
    /// The storage backend could not be reached or failed.
    BackendUnavailable,
    /// The catalog (metadata database) failed.
    Catalog,
    /// Reading the caller's input or writing its output failed.
    Io,
    /// The operation is not supported by this backend or build.
    Unsupported,
    /// A hook could not deliver an event to its receiver.
    Delivery,
    /// A read found no store where the configuration points (nothing was created).
    NoStore,
    /// The content is in an archive storage class (S3 GLACIER or
    /// DEEP_ARCHIVE, Azure Archive) and must be restored before it is read.
    Archived,
    /// The store refused the caller's credentials or authorization (no
    /// credentials, a wrong key or secret, a request signed for the wrong
    /// region, no permission): a setup problem, not an outage.
    Unauthorized,
    /// A retention or legal hold forbids the change: the version (or its
    /// blob, or its audit rows) cannot be removed, or its retention cannot
    /// be shortened, before its date.
    RetentionLocked,
    /// The store is encrypted and its key is missing, wrong or cannot be
    /// reached (a key file, a passphrase, a KMS key): nothing was read or written.
    KeyUnavailable,
    /// The caller is known but its token does not allow this: a scope too
    /// weak, or a key outside its prefix.
    Forbidden,
}

impl ErrorKind {
    /// A short stable name, used in `--json` error output.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::NotFound => "not_found",
            ErrorKind::InvalidKey => "invalid_key",
            ErrorKind::InvalidInput => "invalid_input",
            ErrorKind::Conflict => "conflict",
            ErrorKind::IntegrityMismatch => "integrity_mismatch",
            ErrorKind::BackendUnavailable => "backend_unavailable",
            ErrorKind::Catalog => "catalog",
            ErrorKind::Io => "io",
            ErrorKind::Unsupported => "unsupported",
            ErrorKind::Delivery => "delivery",
            ErrorKind::NoStore => "no_store",
            ErrorKind::Archived => "archived",
            ErrorKind::Unauthorized => "unauthorized",
            ErrorKind::RetentionLocked => "retention_locked",
            ErrorKind::KeyUnavailable => "key_unavailable",
            ErrorKind::Forbidden => "forbidden",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

type Source = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The library's error: a kind, a one-line message, and optionally the cause.
///
/// Messages never contain secrets (credentials, connection strings with passwords).
pub struct Error {
    kind: ErrorKind,
    message: String,
    retryable: bool,
    source: Option<Source>,
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A new error of `kind` with a one-line `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
            retryable: false,
            source: None,
        }
    }

    /// Attach the underlying cause.
    pub fn with_source(mut self, source: impl Into<Source>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// Mark the error as worth retrying (busy database, dropped connection ...).
    pub fn retryable(mut self) -> Self {
        self.retryable = true;
        self
    }

    /// The stable kind of this error.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The one-line message, without the cause.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Whether repeating the same operation may succeed.
    pub fn is_retryable(&self) -> bool {
        self.retryable
    }

    /// The error for a part this build leaves out (`what`: "nats hooks",
    /// "the azure backend"), naming the cargo feature that brings it.
    pub fn not_built(what: &str, feature: &str) -> Self {
        Self::new(
            ErrorKind::Unsupported,
            format!("{what}: not in this build of coffer (rebuild it with the cargo feature {feature})"),
        )
    }

    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, message)
    }

    pub(crate) fn invalid_input(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidInput, message)
    }

    pub(crate) fn conflict(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Conflict, message)
    }

    pub(crate) fn io(context: &str, err: std::io::Error) -> Self {
        Self::new(ErrorKind::Io, format!("{context}: {err}")).with_source(err)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Error");
        d.field("kind", &self.kind).field("message", &self.message);
        if let Some(source) = &self.source {
            d.field("source", &source.to_string());
        }
        d.finish()
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().map(|s| s as &(dyn std::error::Error + 'static))
    }
}

impl From<Error> for std::io::Error {
    fn from(err: Error) -> Self {
        std::io::Error::other(err)
    }
}
