//! coffer: a versioned, audited archive layer over any object store.
//!
//! Every write makes a new immutable version with a time-ordered id; deletes
//! add delete markers; any version can be read back. Bytes live on a
//! [`Backend`] (local disk or memory today, through OpenDAL), content-addressed
//! by SHA-256 so identical content is stored once; everything else lives in a
//! [`Catalog`] (embedded SQLite by default), which records an audit row with
//! every change. [`Store`] is the one entry point.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> coffer::Result<()> {
//! # let dir = tempfile::tempdir().map_err(|e| coffer::Error::new(coffer::ErrorKind::Io, e.to_string()))?;
//! use coffer::{Config, GetOptions, PutOptions, Store};
//!
//! // The embedded default: blobs on local disk, a SQLite catalog, no server.
//! let store = Store::open(&Config::embedded(dir.path().join("coffer-data"))).await?;
//!
//! let first = store.put_bytes("reports/q1.csv", "region,total\nnorth,10\n", PutOptions::default()).await?;
//! let second = store.put_bytes("reports/q1.csv", "region,total\nnorth,12\n", PutOptions::default()).await?;
//! assert_eq!(second.content_type.as_deref(), Some("text/csv"));
//!
//! // The latest version, and any older one.
//! let (_, latest) = store.get_bytes("reports/q1.csv", None).await?;
//! assert_eq!(&latest[..], b"region,total\nnorth,12\n");
//! let (_, old) = store.get_bytes("reports/q1.csv", Some(&first.version_id)).await?;
//! assert_eq!(&old[..], b"region,total\nnorth,10\n");
//!
//! // A delete hides the key but keeps its history.
//! store.delete("reports/q1.csv").await?;
//! assert!(!store.exists("reports/q1.csv").await?);
//! assert_eq!(store.versions("reports/q1.csv").await?.len(), 3);
//! # let _ = GetOptions::default();
//! # Ok(())
//! # }
//! ```

mod backend;
mod body;
mod catalog;
mod config;
mod error;
pub mod events;
mod key;
mod layout;
mod progress;
mod redact;
mod settings;
mod sigv4;
mod store;
mod time;
mod version;

pub mod conformance;
pub mod testing;

/// The README's Rust examples, run as doc tests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;

#[cfg(feature = "backend-azblob")]
pub use crate::backend::{ACCESS_TIERS, AzureConfig};
pub use crate::backend::{
    Backend, ByteStream, Capabilities, DEFAULT_BACKEND_WAIT, DrainReport, IncompleteUpload, OpendalBackend,
    PresignMethod, PresignRequest, PresignedUrl, SpoolBackend, SpoolStatus, Tier, TieredBackend,
};
#[cfg(feature = "backend-s3")]
pub use crate::backend::{DEFAULT_PART_CONCURRENCY, DEFAULT_PART_SIZE_MIB, S3Config};
pub use crate::body::{WriteBehind, reader_stream, save_to_file};
pub use crate::catalog::{
    Annotation, AuditEntry, AuditQuery, BlobRecord, BlobRef, Catalog, CatalogLocation, CatalogStats, Claim,
    ClaimRequest, ClaimScope, Comment, DeadLetter, DeletedVersion, HookCounters, KeyQuery, MAX_SEARCH_LIMIT,
    MAX_SEARCH_TEXT_BYTES, MAX_SEARCH_WORD_BYTES, NewVersion, ObjectVersion, Outbox, OutboxCounters, Outcome,
    Precondition, PrunePolicy, Repair, SCORE_DIGITS, SearchHit, SearchPage, SearchPlan, SearchPosition, SearchQuery,
    Settlement, SqliteCatalog, VersionContent, VersionRef, search_document, search_words,
};
#[cfg(feature = "catalog-postgres")]
pub use crate::catalog::{CatalogMigration, PostgresCatalog, TableMigration, migrate_catalog};
pub use crate::config::{Config, DEFAULT_CONFIG_FILE, DEFAULT_DATA_DIR, redact_url, set_active_store};
pub use crate::error::{Error, ErrorKind, Result};
pub use crate::key::{
    MAX_COMMENT_BYTES, MAX_CONTENT_TYPE_BYTES, MAX_KEY_BYTES, MAX_METADATA_NAME_BYTES, MAX_METADATA_TOTAL_BYTES,
    MAX_METADATA_VALUE_BYTES, MAX_TAG_NAME_BYTES, MAX_TAG_VALUE_BYTES, MAX_TAGS, Metadata, ObjectKey, Tags,
    validate_comment, validate_content_type, validate_metadata, validate_metadata_entry, validate_tag,
    validate_tag_name, validate_tags,
};
pub use crate::layout::{MANIFEST_FORMAT, Manifest};
pub use crate::progress::{NoProgress, Progress};
pub use crate::settings::{BackendConfig, BackendKind, BackendOverrides};
pub use crate::store::{AUDIT_ACTIONS, DeletePrefixReport};
pub use crate::store::{
    AuditPurgeReport, ByteRange, Comparison, CopyOptions, DEFAULT_MAX_ATTEMPTS, DispatcherHandle, ExportOptions,
    ExportReport, GetOptions, GetResult, Health, HistoryEntry, ImportBackendOptions, ImportOptions, ImportReport,
    ListOptions, ListPage, MAX_LIST_KEYS, MAX_PRESIGN_EXPIRY, MigrateOptions, MigrateReport, PresignedUpload,
    PruneReport, PutOptions, ReindexReport, Store, StoreInfo, SyncHandle, TextDiff, TierMove, ValueChange,
    VerifyOptions, VerifyProblem, VerifyReport, open_backend,
};
pub use crate::time::{Timestamp, format_span};
pub use crate::version::VersionId;
