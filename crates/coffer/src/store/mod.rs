//! The `Store` facade: the one entry point for keys, versions and bytes.

use std::sync::Arc;

use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use tokio::io::AsyncRead;

use crate::backend::{Backend, SpoolBackend, TieredBackend};
use crate::body;
use crate::body::ByteStream;
use crate::bundle::{BundleCallbacks, BundleConfig, Layout};
use crate::catalog::{Catalog, KeyQuery, ObjectVersion, Precondition, SearchPage, SearchQuery, prefix_upper_bound};
use crate::config::Config;
use crate::crypto::EncryptionState;
use crate::error::{Error, ErrorKind, Result};
use crate::events::runtime::HookRuntime;
use crate::hot::HotConfig;
use crate::key::{ObjectKey, validate_content_type, validate_metadata};
use crate::lifecycle::LifecycleConfig;
use crate::retention::{Retention, RetentionConfig};
use crate::time::Timestamp;
use crate::version::VersionId;

mod access;
mod assembly;
mod audit;
mod buckets;
mod bulk;
mod bundle_export;
mod bundles;
mod hooks;
mod hot;
mod hot_feed;
mod integrity;
mod keys;
mod lifecycle;
mod manifests;
mod migrate;
mod multipart;
mod new_version;
mod open;
mod options;
mod presence;
use self::presence::archived_version;
mod protection;
mod reindex;
mod remote;
mod restore;
mod rotation;
mod sealed;
mod shared_sync;
mod transfer;
mod versioning;
mod write;

pub use self::audit::{AUDIT_ACTIONS, AuditPurgeReport};
pub use self::buckets::Bucket;
pub use self::bulk::DeletePrefixReport;
pub use self::bundle_export::BundleExport;
pub use self::hooks::{DEFAULT_MAX_ATTEMPTS, DispatcherHandle};
pub use self::hot::{FlushReport, HotExpiry, HotStatus};
pub use self::hot_feed::CLICKHOUSE_HOOK;
pub use self::integrity::{VerifyOptions, VerifyProblem, VerifyReport};
pub use self::keys::{KeyStatus, RotationReport, RotationStatus};
pub use self::lifecycle::{FailedAction, LifecycleReport, StaleUpload};
pub use self::migrate::{ImportBackendOptions, MigrateOptions, MigrateReport};
pub use self::multipart::{CompletedPart, MAX_PART_NUMBER, MIN_PART_SIZE};
pub use self::open::open_backend;
pub use self::options::{
    ByteRange, CopyOptions, GetOptions, GetResult, ListOptions, ListPage, MAX_LIST_KEYS, PutOptions, StoreInfo,
};
pub use self::reindex::ReindexReport;
pub use self::remote::{Health, MAX_PRESIGN_EXPIRY, PresignedUpload, SyncHandle, TierMove};
pub use self::restore::{MAX_RESTORE_DAYS, RESTORE_POLL_INTERVAL, RestoreStatus};
pub use self::transfer::{ExportOptions, ExportReport, ImportOptions, ImportReport};
pub use self::versioning::{Comparison, HistoryEntry, PruneReport, TextDiff, ValueChange};
use self::write::Durability;

/// What [`Store::resolve_version`] reads as "the key's latest version".
const LATEST: &str = "latest";

/// A versioned store: a backend for bytes and a catalog for everything else.
///
/// Cheap to clone; clones share the backend and catalog.
#[derive(Clone, Debug)]
pub struct Store {
    backend: Arc<dyn Backend>,
    catalog: Arc<dyn Catalog>,
    actor: String,
    max_versions: Option<usize>,
    /// Retention new versions get (`[retention]`).
    retention: Arc<RetentionConfig>,
    /// Lifecycle rules (`[lifecycle]`).
    lifecycle: Arc<LifecycleConfig>,
    audit_retention: Option<std::time::Duration>,
    audit_reads: bool,
    read_events: bool,
    hooks: Arc<HookRuntime>,
    /// The spool in front of the backend, when writes may fall back on one.
    spool: Option<Arc<SpoolBackend>>,
    /// A spool configured whose directory does not exist yet: a store opened
    /// for reads goes without it (creating it would be a change), and it is
    /// reported as an empty spool.
    absent_spool: Option<String>,
    /// The hot and cold tiers, when there is a cold one.
    tiers: Option<Arc<TieredBackend>>,
    /// Encryption at rest: off, or on with or without its key at hand.
    encryption: EncryptionState,
    /// Which puts the hot store takes (`[hot]`); off unless the config or
    /// [`with_hot`](Self::with_hot) says.
    hot: HotConfig,
    /// ClickHouse, when it serves hot copies (`hot.engine = "clickhouse"`).
    clickhouse: Option<Arc<crate::hot::ClickHouse>>,
    /// Bundles' settings (`[bundles]`), the layout resolved for the backend.
    bundles: Arc<BundleConfig>,
    /// The bundle completion callbacks registered in this process.
    bundle_callbacks: Arc<BundleCallbacks>,
    /// Hot content read recently, shared by the store's clones.
    hot_reads: Arc<crate::hot::ContentCache>,
    /// Backend syncs shared by concurrent puts (see [`Store::put_stream_shared_sync`]).
    shared_sync: Arc<shared_sync::SharedSync>,
    /// Multipart uploads this process assembles while their parts arrive.
    assemblies: Arc<assembly::Assemblies>,
    /// The server's public URL and key, for links and S3 access keys (`[server]`).
    server: Option<Arc<access::ServerAccess>>,
}

impl Store {
    /// Open the store `config` describes, creating it on first use.
    pub async fn open(config: &Config) -> Result<Store> {
        Self::open_with(config, true).await
    }

    /// Open the store `config` describes only if it exists: creates nothing,
    /// and fails with [`ErrorKind::NoStore`] when its catalog (a SQLite file,
    /// or a PostgreSQL database coffer migrated) or local directory is not
    /// there. For reads, which must not leave an empty store behind.
    pub async fn open_existing(config: &Config) -> Result<Store> {
        Self::open_with(config, false).await
    }

    async fn open_with(config: &Config, create: bool) -> Result<Store> {
        let location = config.catalog_location()?;
        let catalog = match create {
            true => location.open().await?,
            // A read checks each part before it opens it, so that it creates nothing.
            false => {
                presence::check_embedded_catalog(config)?;
                let catalog = location.open_existing().await?;
                presence::check_local_root(config)?;
                catalog
            }
        };
        let mut backend = open_backend(&config.backend, config).await?;
        let mut tiers = None;
        if let Some(name) = &config.cold_store {
            let cold = open_backend(config.store(name)?, config).await?;
            let tiered = Arc::new(TieredBackend::new(backend, cold));
            tiers = Some(tiered.clone());
            backend = tiered;
        }
        let store = match &config.spool {
            // A spool that does not exist holds nothing to read: a store
            // opened for reads goes without it rather than create it.
            Some(dir) if create || dir.is_dir() => {
                let spool = Arc::new(SpoolBackend::new(backend, dir)?);
                Store::from_parts(spool.clone(), catalog, config.actor()).with_spool(spool)
            }
            _ => Store::from_parts(backend, catalog, config.actor()),
        };
        let absent_spool = match (&store.spool, &config.spool) {
            (None, Some(dir)) => Some(dir.display().to_string()),
            _ => None,
        };
        let source = config.encryption.source()?;
        let encryption = crate::crypto::keyring::open(&*store.catalog, source.as_ref(), create, &store.actor).await?;
        store.hooks.set_encryption(encryption.clone());
        let store = Store {
            tiers,
            absent_spool,
            encryption,
            ..store
        };
        let store = store
            .with_max_versions(config.max_versions)
            .with_retention(config.retention.clone())
            .with_lifecycle(config.lifecycle.clone())
            .with_audit_retention(config.audit_retention)
            .with_audit_reads(config.audit_reads)
            .with_read_events(config.read_events)
            .with_hot(config.hot.clone())
            .with_server(&config.server, &config.data_dir)
            .with_bundles(BundleConfig {
                layout: Some(
                    config
                        .bundles
                        .layout
                        .unwrap_or(Layout::default_for(config.backend.kind())),
                ),
                ..config.bundles.clone()
            });
        match config.hot.clickhouse()? {
            Some(clickhouse) => store.with_clickhouse(clickhouse).await,
            None => Ok(store),
        }
    }

    /// A store over an existing backend and catalog, recording `actor` as the author of changes.
    pub fn from_parts(backend: Arc<dyn Backend>, catalog: Arc<dyn Catalog>, actor: impl Into<String>) -> Store {
        Store {
            hooks: Arc::new(HookRuntime::new(catalog.clone())),
            spool: None,
            absent_spool: None,
            tiers: None,
            encryption: EncryptionState::Off,
            hot: HotConfig::off(),
            clickhouse: None,
            bundles: Arc::default(),
            bundle_callbacks: Arc::default(),
            hot_reads: Arc::default(),
            shared_sync: Arc::default(),
            assemblies: Arc::default(),
            server: None,
            backend,
            catalog,
            actor: actor.into(),
            max_versions: None,
            retention: Arc::default(),
            lifecycle: Arc::default(),
            audit_retention: None,
            audit_reads: false,
            read_events: false,
        }
    }

    /// The same store, keeping at most `max` versions of a key: each put then
    /// prunes the oldest untagged versions beyond it (`None`: keep all).
    pub fn with_max_versions(&self, max: Option<usize>) -> Store {
        Store {
            max_versions: max,
            ..self.clone()
        }
    }

    /// The same store, giving new versions the retention `rules` say (a
    /// version gets the longest of the rules that match its key and the one
    /// its put asks for).
    pub fn with_retention(&self, rules: RetentionConfig) -> Store {
        Store {
            retention: Arc::new(rules),
            ..self.clone()
        }
    }

    /// The same store, with these lifecycle rules (see [`crate::lifecycle`]).
    pub fn with_lifecycle(&self, rules: LifecycleConfig) -> Store {
        Store {
            lifecycle: Arc::new(rules),
            ..self.clone()
        }
    }

    /// The retention a new version of `key` made at `created_at` gets, given
    /// the one asked for.
    pub(super) fn retention_for(
        &self,
        key: &ObjectKey,
        created_at: Timestamp,
        requested: Option<Retention>,
    ) -> Option<Retention> {
        self.retention.for_new_version(key.as_str(), created_at, requested)
    }

    /// The same store, recording changes as made by `actor`.
    pub fn with_actor(&self, actor: impl Into<String>) -> Store {
        Store {
            actor: actor.into(),
            ..self.clone()
        }
    }

    /// Who changes made through this handle are recorded as.
    pub fn actor(&self) -> &str {
        &self.actor
    }

    /// The backend.
    pub fn backend(&self) -> &Arc<dyn Backend> {
        &self.backend
    }

    /// The catalog.
    pub fn catalog(&self) -> &Arc<dyn Catalog> {
        &self.catalog
    }

    /// Store the bytes of `body` as a new version of `key`.
    pub async fn put<R>(&self, key: &str, body: R, options: PutOptions) -> Result<ObjectVersion>
    where
        R: AsyncRead + Send + Unpin + 'static,
    {
        self.put_stream(key, body::reader_stream(body), options).await
    }

    /// Store `bytes` as a new version of `key`.
    pub async fn put_bytes(&self, key: &str, bytes: impl Into<Bytes>, options: PutOptions) -> Result<ObjectVersion> {
        self.put_stream(key, body::once(bytes.into()), options).await
    }

    /// Store a stream of bytes as a new version of `key`.
    ///
    /// Returns once the bytes and the version's manifest are durable on the
    /// backend and the catalog has committed the version. Identical content is
    /// stored once. On any error nothing is recorded.
    pub async fn put_stream(&self, key: &str, body: ByteStream, options: PutOptions) -> Result<ObjectVersion> {
        self.put_with(key, body, options, Durability::Now, None).await
    }

    /// [`put_stream`](Self::put_stream); with `told`, a large body's ETag
    /// is told once it has ended instead of computed (a multipart upload's
    /// parts know it).
    pub(super) async fn put_stream_with_etag(
        &self,
        key: &str,
        body: ByteStream,
        options: PutOptions,
        told: Option<body::EtagLater>,
    ) -> Result<ObjectVersion> {
        self.put_with(key, body, options, Durability::Now, told).await
    }

    /// [`put_stream`](Self::put_stream) for many puts at once: the bytes are
    /// written without a sync of their own and made durable by one backend
    /// sync shared with the puts running meanwhile, still before the catalog
    /// commits the version.
    pub(crate) async fn put_stream_shared_sync(
        &self,
        key: &str,
        body: ByteStream,
        options: PutOptions,
    ) -> Result<ObjectVersion> {
        self.put_with(key, body, options, Durability::Deferred, None).await
    }

    /// One put, its bytes durable `durability`: deferred ones by the shared sync.
    async fn put_with(
        &self,
        key: &str,
        body: ByteStream,
        options: PutOptions,
        durability: Durability,
        etag: Option<body::EtagLater>,
    ) -> Result<ObjectVersion> {
        let mut prepared = self.prepare_put(key, body, options, durability, etag).await?;
        if durability == Durability::Deferred
            && prepared.wrote_to_backend()
            && let Err(e) = self.shared_sync.after_writes(self.backend.as_ref()).await
        {
            prepared.fail(e);
        }
        let committed = self.finish_upload(prepared).await?;
        self.apply_max_versions(&committed.key).await?;
        Ok(committed)
    }

    /// The version of `key` asked for (the latest when `version_id` is `None`),
    /// which must hold content.
    pub async fn head(&self, key: &str, version_id: Option<&VersionId>) -> Result<ObjectVersion> {
        let key = ObjectKey::new(key)?;
        let found = self.catalog.version(&key, version_id).await?;
        match (found, version_id) {
            (Some(v), _) if !v.is_delete_marker => Ok(v),
            (Some(_), Some(id)) => Err(Error::not_found(format!("version {id} of {key} is a delete marker"))),
            (None, Some(id)) => Err(Error::not_found(format!("no version {id} of {key}"))),
            (_, None) => Err(Error::not_found(format!("no such key: {key}"))),
        }
    }

    /// The version id `text` names for `key`: an id, or `latest` for the id of
    /// the key's latest version (a delete marker included). How every command
    /// that takes a version id reads it.
    pub async fn resolve_version(&self, key: &str, text: &str) -> Result<VersionId> {
        if text != LATEST {
            return text.parse();
        }
        let key = ObjectKey::new(key)?;
        match self.catalog.version(&key, None).await? {
            Some(latest) => Ok(latest.version_id),
            None => Err(Error::not_found(format!("no such key: {key}"))),
        }
    }

    /// Whether `key` currently exists (has a latest version that is not a delete marker).
    pub async fn exists(&self, key: &str) -> Result<bool> {
        match self.head(key, None).await {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Read a version of `key`, or a byte range of it. With read auditing on
    /// (see [`with_audit_reads`](Self::with_audit_reads)) the read is recorded
    /// before the body is returned.
    pub async fn get(&self, key: &str, options: GetOptions) -> Result<GetResult> {
        let version = self.head(key, options.version_id.as_ref()).await?;
        self.open_version(version, options).await
    }

    /// Read `version` (as [`head`](Self::head) found it), or a byte range of
    /// it, as [`get`](Self::get) does, without looking it up again:
    /// `options.version_id` is not used.
    pub async fn open_version(&self, version: ObjectVersion, options: GetOptions) -> Result<GetResult> {
        let key = version.key.clone();
        if let Some(problem) = &version.damaged {
            return Err(Error::new(
                ErrorKind::IntegrityMismatch,
                format!(
                    "version {} of {key} is damaged ({problem}); put the original content again to heal it",
                    version.version_id
                ),
            ));
        }
        let (Some(path), Some(sha256)) = (version.blob_path.clone(), version.sha256.clone()) else {
            return Err(Error::new(
                ErrorKind::Catalog,
                format!("version {} of {key} has no blob", version.version_id),
            ));
        };
        let what = format!("{key} version {}", version.version_id);
        let data_key = self.blob_key(&sha256).await?;
        let (range, mut body) = match options.range {
            Some(range) => {
                let range = range.resolve(version.size)?;
                let read = self.read_stored(
                    &path,
                    &sha256,
                    version.size,
                    data_key.as_ref(),
                    Some(range.clone()),
                    &what,
                );
                let body = match read.await {
                    Ok(body) => body,
                    Err(e) => return Err(self.unreadable_blob(e, &what).await),
                };
                let length = range.end - range.start;
                (range, body::check_length(body, length, what))
            }
            None => {
                let body = if version.size == 0 && data_key.is_none() {
                    futures::stream::empty().boxed()
                } else {
                    match self
                        .read_stored(&path, &sha256, version.size, data_key.as_ref(), None, &what)
                        .await
                    {
                        Ok(body) => body,
                        Err(e) => return Err(self.unreadable_blob(e, &what).await),
                    }
                };
                (0..version.size, body::verify_stream(body, sha256, version.size, what))
            }
        };
        if self.audit_reads {
            let mut detail = serde_json::json!({ "size": version.size });
            if options.range.is_some() {
                detail["range"] = format!("{}-{}", range.start, range.end.saturating_sub(1)).into();
            }
            self.catalog
                .record_read(&version.key, &version.version_id, &self.actor, detail)
                .await?;
        }
        if self.read_events {
            self.fire_read_event(&version).await?;
        }
        if let Some(progress) = options.progress.clone() {
            progress.start(Some(range.end - range.start));
            body = body
                .inspect_ok(move |chunk| progress.advance(chunk.len() as u64))
                .boxed();
        }
        Ok(GetResult { version, range, body })
    }

    /// Read a whole version into memory (for small objects).
    pub async fn get_bytes(&self, key: &str, version_id: Option<&VersionId>) -> Result<(ObjectVersion, Bytes)> {
        let result = self
            .get(
                key,
                GetOptions {
                    version_id: version_id.cloned(),
                    ..GetOptions::default()
                },
            )
            .await?;
        let chunks: Vec<Bytes> = result.body.try_collect().await?;
        Ok((result.version, chunks.concat().into()))
    }

    /// One page of the keys under a prefix, S3 style.
    pub async fn list(&self, options: &ListOptions) -> Result<ListPage> {
        if options.max_keys == 0 || options.max_keys > MAX_LIST_KEYS {
            return Err(Error::invalid_input(format!(
                "max-keys must be between 1 and {MAX_LIST_KEYS}"
            )));
        }
        let delimiter = options.delimiter.as_deref().filter(|d| !d.is_empty());
        let mut page = ListPage::default();
        let mut query = KeyQuery {
            prefix: options.prefix.clone(),
            start_after: options.start_after.clone(),
            limit: options.max_keys + 1,
            ..KeyQuery::default()
        };
        let mut last_entry: Option<String> = None;
        'pages: loop {
            let batch = self.catalog.list_latest(&query).await?;
            let exhausted = batch.len() < query.limit;
            let mut skipped_to = None;
            for version in batch {
                let key = version.key.as_str();
                query.start_after = Some(key.to_owned());
                let group = delimiter.and_then(|d| {
                    key[options.prefix.len()..]
                        .find(d)
                        .map(|i| key[..options.prefix.len() + i + d.len()].to_owned())
                });
                if let Some(group) = group {
                    let seen = options
                        .start_after
                        .as_deref()
                        .is_some_and(|after| group.as_str() <= after);
                    let next = prefix_upper_bound(&group);
                    if !seen {
                        if page.objects.len() + page.common_prefixes.len() == options.max_keys {
                            page.is_truncated = true;
                            break 'pages;
                        }
                        page.common_prefixes.push(group.clone());
                        last_entry = Some(group);
                    }
                    // Jump past every key in the group in one query.
                    skipped_to = next;
                    break;
                }
                if page.objects.len() + page.common_prefixes.len() == options.max_keys {
                    page.is_truncated = true;
                    break 'pages;
                }
                last_entry = Some(key.to_owned());
                page.objects.push(version);
            }
            match skipped_to {
                Some(next) => query.start_at = Some(next),
                None if exhausted => break,
                None => {}
            }
        }
        if page.is_truncated {
            page.next_start_after = last_entry;
        }
        Ok(page)
    }

    /// Every current object under `prefix`, in key order, fetched page by page.
    pub fn list_stream(&self, prefix: &str) -> BoxStream<'static, Result<ObjectVersion>> {
        const PAGE: usize = 1000;
        let catalog = self.catalog.clone();
        let prefix = prefix.to_owned();
        futures::stream::try_unfold(Some(None::<String>), move |state| {
            let catalog = catalog.clone();
            let prefix = prefix.clone();
            async move {
                let Some(start_after) = state else {
                    return Ok(None);
                };
                let query = KeyQuery {
                    prefix,
                    start_after,
                    limit: PAGE,
                    ..KeyQuery::default()
                };
                let batch = catalog.list_latest(&query).await?;
                let next = (batch.len() == PAGE).then(|| batch.last().map(|v| v.key.to_string()));
                Ok(Some((futures::stream::iter(batch.into_iter().map(Ok)), next)))
            }
        })
        .try_flatten()
        .boxed()
    }

    /// Make `destination` a new version holding the content of `source`,
    /// without copying bytes.
    pub async fn copy(&self, source: &str, destination: &str, options: CopyOptions) -> Result<ObjectVersion> {
        let destination = ObjectKey::new(destination)?;
        let from = self.head(source, options.source_version.as_ref()).await?;
        if let Some(metadata) = &options.metadata {
            validate_metadata(metadata)?;
        }
        if let Some(content_type) = &options.content_type {
            validate_content_type(content_type)?;
        }
        let detail = serde_json::json!({
            "source_key": from.key, "source_version_id": from.version_id, "sha256": from.sha256,
        });
        let mut version = self.sharing_content(destination, &from, "copy", detail)?;
        if let Some(content_type) = options.content_type {
            version.content_type = Some(content_type);
        }
        if let Some(metadata) = options.metadata {
            version.metadata = metadata;
        }
        let committed = self.commit_described(version).await?;
        self.apply_max_versions(&committed.key).await?;
        Ok(committed)
    }

    /// Delete `key`: add a delete marker as its new version. Its older versions stay.
    pub async fn delete(&self, key: &str) -> Result<ObjectVersion> {
        let key = ObjectKey::new(key)?;
        let version = self.delete_marker(key, Precondition::MustExist, "delete", serde_json::Value::Null);
        self.commit_described(version).await
    }

    /// Every version of `key`, delete markers included, newest first.
    pub async fn versions(&self, key: &str) -> Result<Vec<ObjectVersion>> {
        let key = ObjectKey::new(key)?;
        let versions = self.catalog.versions(&key, None).await?;
        if versions.is_empty() {
            return Err(Error::not_found(format!("no such key: {key}")));
        }
        Ok(versions)
    }

    /// What the store is and holds.
    pub async fn info(&self) -> Result<StoreInfo> {
        let health = self.health().await;
        let spool = self.spool_status().await?;
        Ok(StoreInfo {
            spool,
            backend: self.backend.to_string(),
            capabilities: self.backend.capabilities(),
            backend_ok: health.ok,
            backend_error: health.error,
            backend_error_kind: health.error_kind,
            native_guard: self.backend.native_guard().await.ok().flatten(),
            encryption: self.encryption_summary().await?,
            server_side_encryption: self.backend.server_side_encryption(),
            catalog: self.catalog.to_string(),
            hot: self.hot_status().await?,
            audit_retention: self.audit_retention.map(crate::time::format_span),
            audit_reads: self.audit_reads,
            read_events: self.read_events,
            stats: self.catalog.stats().await?,
        })
    }

    /// One page of the versions a full-text query finds, best first (see
    /// [`SearchQuery`]); pass the page's `next_cursor` to get the next one.
    /// A malformed query or cursor is refused with `InvalidInput`.
    pub async fn search(&self, query: &SearchQuery) -> Result<SearchPage> {
        self.catalog.search(query).await
    }
}

/// The blob path and SHA-256 of `version`'s content; a delete marker has
/// none (`NotFound`).
pub(crate) fn stored_content(version: &ObjectVersion) -> Result<(&str, &str)> {
    match (&version.blob_path, &version.sha256) {
        (Some(path), Some(sha256)) => Ok((path, sha256)),
        _ => Err(Error::not_found(format!(
            "version {} of {} has no content",
            version.version_id, version.key
        ))),
    }
}
