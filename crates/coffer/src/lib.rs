//! coffer: a versioned, audited archive layer over any object store.
//!
//! Every write makes a new immutable version with a time-ordered id; deletes
//! add delete markers; any version can be read back. Bytes live on a
//! [`Backend`](backend::Backend) (local disk or memory today, through OpenDAL), content-addressed
//! by SHA-256 so identical content is stored once; everything else lives in a
//! [`Catalog`](catalog::Catalog) (embedded SQLite by default), which records an audit row with
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

//! ## Where things are
//! The crate root holds what an application needs: [`Store`] and its
//! options and results, [`Config`], [`Error`], and the types that Store's
//! methods take and return. The rooms below it serve other readers:
//! - [`backend`] and [`catalog`]: the two ports, for whoever implements or
//!   composes a backend or a catalog (the engines, the spool and tier
//!   layers, the row types of the catalog);
//! - [`events`]: events, hooks, sinks and the dispatcher;
//! - [`body`], [`key`], [`time`], [`layout`], [`settings`], [`config`] and
//!   [`redact`]: bodies in motion, the rules for keys and metadata, times and
//!   spans, the format on a backend, backend settings, the config file, and
//!   showing URLs without their secrets, which a front end such as the CLI
//!   reaches for;
//! - [`crypto`]: encryption at rest (the blob format, key-encryption keys,
//!   the `[encryption]` table);
//! - `testkit` (cargo feature `testkit`): the conformance suites and test helpers.

pub mod access;
pub mod backend;
pub mod body;
pub mod bundle;
pub mod catalog;
pub mod config;
pub mod crypto;
mod error;
mod etag;
pub mod events;
pub mod hot;
pub mod key;
pub mod layout;
pub mod lifecycle;
mod progress;
pub mod redact;
pub mod retention;
#[cfg(feature = "schema")]
mod schema;
pub mod settings;
mod sigv4;
mod store;
pub mod time;
mod version;

#[cfg(any(test, feature = "testkit"))]
pub mod testkit;

/// The README's Rust examples, run as doc tests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;

#[cfg(feature = "backend-azblob")]
pub use crate::backend::AzureConfig;
#[cfg(feature = "backend-s3")]
pub use crate::backend::S3Config;
pub use crate::backend::{DrainReport, PresignedUrl, SpoolStatus, Tier};
pub use crate::body::ByteStream;
pub use crate::bundle::{Bundle, BundleRef, RecoveryReport};
pub use crate::catalog::{
    Annotation, AuditEntry, AuditQuery, CatalogStats, Comment, DeadLetter, HeldVersion, ObjectVersion, PrunePolicy,
    SearchHit, SearchPage, SearchPosition, SearchQuery, VersionContent,
};
pub use crate::config::Config;
pub use crate::error::{Error, ErrorKind, Result};
pub use crate::events::Event;
pub use crate::key::{Metadata, ObjectKey, Tags};
pub use crate::progress::{NoProgress, Progress};
pub use crate::retention::{Retention, RetentionMode};
pub use crate::settings::{BackendConfig, BackendKind};
pub use crate::store::{
    AUDIT_ACTIONS, AuditPurgeReport, Bucket, BundleExport, ByteRange, CLICKHOUSE_HOOK, Comparison, CompletedPart,
    CopyOptions, DEFAULT_MAX_ATTEMPTS, DeletePrefixReport, DispatcherHandle, ExportOptions, ExportReport, FailedAction,
    FlushReport, GetOptions, GetResult, Health, HistoryEntry, HotExpiry, HotStatus, ImportBackendOptions,
    ImportOptions, ImportReport, KeyStatus, LifecycleReport, ListOptions, ListPage, MAX_LIST_KEYS, MAX_PART_NUMBER,
    MAX_PRESIGN_EXPIRY, MAX_RESTORE_DAYS, MIN_PART_SIZE, MigrateOptions, MigrateReport, PresignedUpload, PruneReport,
    PutOptions, RESTORE_POLL_INTERVAL, ReindexReport, RestoreStatus, RotationReport, RotationStatus, StaleUpload,
    Store, StoreInfo, SyncHandle, TextDiff, TierMove, ValueChange, VerifyOptions, VerifyProblem, VerifyReport,
    open_backend,
};
pub use crate::time::Timestamp;
pub use crate::version::VersionId;
