//! Options and results of the `Store` operations.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use serde::Serialize;

use crate::backend::Capabilities;
use crate::body::ByteStream;
use crate::catalog::{CatalogStats, ObjectVersion, Precondition};
use crate::error::{Error, Result};
use crate::key::{Metadata, Tags};
use crate::progress::Progress;
use crate::retention::Retention;
use crate::version::VersionId;

/// Options of a put.
#[derive(Default, Clone)]
pub struct PutOptions {
    /// MIME type; guessed from the key's extension when absent.
    pub content_type: Option<String>,
    /// User metadata.
    pub metadata: Metadata,
    /// Tags the new version starts with.
    pub tags: Tags,
    /// Write only if the current version has this ETag (optimistic concurrency).
    pub if_match: Option<String>,
    /// Write only if the key has no current version (`If-None-Match: *`).
    pub if_none_match: bool,
    /// The storage class of the content, where the backend has classes
    /// (S3: `STANDARD_IA`, `GLACIER` ...; Azure: `Cool`, `Archive` ...).
    /// Content already stored keeps its class. Other backends refuse it.
    pub storage_class: Option<String>,
    /// Retention asked for with the put; the version gets the longest of
    /// this and the store's rules (`[retention]`).
    pub retention: Option<Retention>,
    /// Put the version under legal hold.
    pub legal_hold: bool,
    /// Told about the bytes as they move.
    pub progress: Option<Arc<dyn Progress>>,
}

impl fmt::Debug for PutOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PutOptions")
            .field("content_type", &self.content_type)
            .field("metadata", &self.metadata)
            .field("tags", &self.tags)
            .field("if_match", &self.if_match)
            .field("if_none_match", &self.if_none_match)
            .field("storage_class", &self.storage_class)
            .field("retention", &self.retention)
            .field("legal_hold", &self.legal_hold)
            .finish_non_exhaustive()
    }
}

impl PutOptions {
    pub(crate) fn precondition(&self) -> Result<Precondition> {
        match (&self.if_match, self.if_none_match) {
            (Some(_), true) => Err(Error::invalid_input("if-match and if-none-match cannot be combined")),
            (Some(etag), false) => Ok(Precondition::IfMatch(etag.clone())),
            (None, true) => Ok(Precondition::IfNoneMatch),
            (None, false) => Ok(Precondition::None),
        }
    }
}

/// A byte range as HTTP writes it: `first-last` (inclusive), `first-`, or `-suffix_length`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteRange {
    /// From `first` to `last`, both included.
    Inclusive {
        /// First byte.
        first: u64,
        /// Last byte (clamped to the object's end).
        last: u64,
    },
    /// From `first` to the end.
    From(u64),
    /// The last `n` bytes.
    Suffix(u64),
}

impl std::str::FromStr for ByteRange {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let bad = || {
            Error::invalid_input(format!(
                "invalid range {s:?}: expected FIRST-LAST, FIRST- or -LENGTH in bytes"
            ))
        };
        let text = s.trim().strip_prefix("bytes=").unwrap_or(s.trim());
        let (a, b) = text.split_once('-').ok_or_else(bad)?;
        let num = |t: &str| t.parse::<u64>().map_err(|_| bad());
        match (a.is_empty(), b.is_empty()) {
            (false, false) => {
                let (first, last) = (num(a)?, num(b)?);
                if last < first {
                    return Err(bad());
                }
                Ok(ByteRange::Inclusive { first, last })
            }
            (false, true) => Ok(ByteRange::From(num(a)?)),
            (true, false) => match num(b)? {
                0 => Err(bad()),
                n => Ok(ByteRange::Suffix(n)),
            },
            (true, true) => Err(bad()),
        }
    }
}

impl ByteRange {
    /// The half-open range this selects of an object of `size` bytes.
    pub fn resolve(self, size: u64) -> Result<Range<u64>> {
        let range = match self {
            ByteRange::Inclusive { first, last } => first..last.saturating_add(1).min(size),
            ByteRange::From(first) => first..size,
            ByteRange::Suffix(n) => size.saturating_sub(n)..size,
        };
        if range.start >= size {
            return Err(Error::invalid_input(format!(
                "range not satisfiable: the object has {size} bytes"
            )));
        }
        Ok(range)
    }
}

/// Options of a get.
#[derive(Default, Clone)]
pub struct GetOptions {
    /// A specific version instead of the latest.
    pub version_id: Option<VersionId>,
    /// Only these bytes.
    pub range: Option<ByteRange>,
    /// Told about the bytes as they move.
    pub progress: Option<Arc<dyn Progress>>,
}

impl fmt::Debug for GetOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GetOptions")
            .field("version_id", &self.version_id)
            .field("range", &self.range)
            .finish_non_exhaustive()
    }
}

/// An object being read.
pub struct GetResult {
    /// The version being read.
    pub version: ObjectVersion,
    /// The bytes of it being read (the whole object when no range was asked).
    pub range: Range<u64>,
    /// The bytes. A full read ends with an `IntegrityMismatch` error instead
    /// of a clean end if the stored bytes do not hash to the recorded SHA-256.
    pub body: ByteStream,
}

impl fmt::Debug for GetResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GetResult")
            .field("version", &self.version)
            .field("range", &self.range)
            .finish_non_exhaustive()
    }
}

/// Options of a copy.
#[derive(Debug, Default, Clone)]
pub struct CopyOptions {
    /// Copy this version of the source instead of its latest.
    pub source_version: Option<VersionId>,
    /// Replace the metadata instead of keeping the source's.
    pub metadata: Option<Metadata>,
    /// Replace the content type instead of keeping the source's.
    pub content_type: Option<String>,
}

/// A page request over the keys.
#[derive(Debug, Clone)]
pub struct ListOptions {
    /// Only keys starting with this.
    pub prefix: String,
    /// Group keys by the first occurrence of this after the prefix.
    pub delimiter: Option<String>,
    /// At most this many keys and common prefixes together.
    pub max_keys: usize,
    /// Only keys (and common prefixes) sorting after this; pass the last
    /// page's `next_start_after` to get the next page.
    pub start_after: Option<String>,
}

/// Largest page a list returns.
pub const MAX_LIST_KEYS: usize = 10_000;

impl Default for ListOptions {
    fn default() -> Self {
        ListOptions {
            prefix: String::new(),
            delimiter: None,
            max_keys: 1000,
            start_after: None,
        }
    }
}

/// One page of keys.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ListPage {
    /// Current versions of the keys, in key order.
    pub objects: Vec<ObjectVersion>,
    /// With a delimiter: the groups of keys, each ending in the delimiter.
    pub common_prefixes: Vec<String>,
    /// More keys follow.
    pub is_truncated: bool,
    /// Where the next page starts, when truncated.
    pub next_start_after: Option<String>,
}

/// What `info` reports.
#[derive(Debug, Clone, Serialize)]
pub struct StoreInfo {
    /// The backend, by name (never with secrets).
    pub backend: String,
    /// What the backend can do natively.
    pub capabilities: Capabilities,
    /// Whether the backend answered just now.
    pub backend_ok: bool,
    /// Why it did not, when it did not.
    pub backend_error: Option<String>,
    /// The kind of that error (as `Health::error_kind` gives it).
    #[serde(skip)]
    pub backend_error_kind: Option<crate::ErrorKind>,
    /// What waits in the local spool for the backend, when there is one.
    pub spool: Option<crate::backend::SpoolStatus>,
    /// The store's own guard against removing locked objects (`S3 Object
    /// Lock on bucket b`), which coffer sets for protected versions; `None`
    /// where retention and legal hold are coffer's alone (or the backend
    /// did not answer).
    pub native_guard: Option<String>,
    /// Client-side encryption of content: the cipher and the store's key
    /// (`None` for a store without it).
    pub encryption: Option<String>,
    /// The encryption the backend itself applies, if any.
    pub server_side_encryption: Option<String>,
    /// The catalog, by name (never with secrets).
    pub catalog: String,
    /// The hot store: what it takes and what waits for the backend.
    pub hot: super::HotStatus,
    /// How long audit rows are kept at least (`7years`), if a retention is configured.
    pub audit_retention: Option<String>,
    /// Whether reads are recorded in the audit log.
    pub audit_reads: bool,
    /// Whether reads fire `object.retrieved` events.
    pub read_events: bool,
    /// Totals.
    #[serde(flatten)]
    pub stats: CatalogStats,
}
