//! A bundle being filled: resources go in through the unzip decorator and
//! the bundle's layout; completion seals it once, and abort removes it.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures::StreamExt;

use super::config::Layout;
use super::naming::{bundle_prefix, guess_type, gunzipped_name, resource_name, zip_key};
use super::spool::Spooled;
use super::unzip::{self, Compression};
use super::zip_stream::ZipStream;
use super::zip_writer::is_precompressed;
use crate::Store;
use crate::body::{self, ByteStream};
use crate::catalog::{BundleChange, BundleRecord, BundleResource};
use crate::error::{Error, ErrorKind, Result};
use crate::events::{Event, types};
use crate::key::{Metadata, validate_content_type};
use crate::store::PutOptions;
use crate::time::Timestamp;
use crate::version::VersionId;

/// Longest resource URL: it is kept in the resource's metadata.
const MAX_URL_BYTES: usize = 2048;

/// A completion callback: handed the completed bundle.
pub(crate) type BundleCallback =
    Arc<dyn Fn(BundleRecord) -> Pin<Box<dyn Future<Output = Result<()>> + Send>> + Send + Sync>;

/// The completion callbacks registered in this process: each for one
/// recipe, or for every bundle (`None`).
#[derive(Default)]
pub(crate) struct BundleCallbacks(Mutex<Vec<(Option<String>, BundleCallback)>>);

impl std::fmt::Debug for BundleCallbacks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BundleCallbacks")
    }
}

impl BundleCallbacks {
    /// Register `callback` for bundles of `recipe` (every bundle: `None`).
    pub(crate) fn add(&self, recipe: Option<String>, callback: BundleCallback) {
        if let Ok(mut callbacks) = self.0.lock() {
            callbacks.push((recipe, callback));
        }
    }

    /// Run the callbacks `bundle` calls for, in registration order; the first error stops them.
    pub(crate) async fn run(&self, bundle: &BundleRecord) -> Result<()> {
        let chosen: Vec<BundleCallback> = match self.0.lock() {
            Ok(callbacks) => callbacks
                .iter()
                .filter(|(recipe, _)| recipe.is_none() || recipe.as_deref() == bundle.recipe_id.as_deref())
                .map(|(_, callback)| callback.clone())
                .collect(),
            Err(_) => Vec::new(),
        };
        for callback in chosen {
            callback(bundle.clone()).await?;
        }
        Ok(())
    }
}

/// A bundle open for resources (see the [module](super) documentation).
///
/// Resources may be added concurrently (`add_resource` takes `&self`).
pub struct Bundle {
    store: Store,
    record: BundleRecord,
    layout: Layout,
    prefix: String,
    next_position: AtomicU64,
    /// Whether this context streams the zip (zip layout, started here);
    /// otherwise a zip bundle's resources are staged until completion.
    streams_zip: bool,
    /// The zip being streamed, opened with the first resource, so that a
    /// bundle started and left to other processes opens no upload.
    zip: tokio::sync::Mutex<Option<ZipStream>>,
}

impl std::fmt::Debug for Bundle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bundle")
            .field("record", &self.record)
            .finish_non_exhaustive()
    }
}

/// One part of a resource, ready to store: the whole resource, or one
/// entry of an expanded zip.
struct Part {
    name: String,
    content_type: Option<String>,
    body: ByteStream,
}

impl Bundle {
    /// A context for `record`, whose resources up to `last_position` exist;
    /// a zip layout context streams the zip when `stream_zip`.
    pub(crate) fn new(
        store: Store,
        record: BundleRecord,
        prefix: String,
        last_position: u64,
        stream_zip: bool,
    ) -> Bundle {
        let layout = match record.layout.as_str() {
            "zip" => Layout::Zip,
            _ => Layout::Directory,
        };
        Bundle {
            store,
            streams_zip: stream_zip && layout == Layout::Zip,
            layout,
            prefix,
            next_position: AtomicU64::new(last_position + 1),
            zip: tokio::sync::Mutex::new(None),
            record,
        }
    }

    /// The bundle's id: time-ordered, unique across processes.
    pub fn id(&self) -> &str {
        &self.record.bundle_id
    }

    /// Where the bundle lies: its prefix (directory layout) or its zip object's key.
    pub fn storage_key(&self) -> &str {
        &self.record.storage_key
    }

    /// When it was started.
    pub fn created_at(&self) -> Timestamp {
        self.record.created_at
    }

    /// The bundle as recorded when this context was made.
    pub fn record(&self) -> &BundleRecord {
        &self.record
    }

    /// Add a resource fetched from `url` with `status_code`: its bytes are
    /// streamed from `stream`, hashed and counted, and recorded in the
    /// catalog with their position. With unzip on, a gzip resource is
    /// stored expanded and a zip resource becomes one resource per entry
    /// (all returned). A resource that fails (its stream breaks, or it
    /// breaks an unzip limit) is not stored at all.
    pub async fn add_resource(
        &self,
        url: &str,
        content_type: Option<&str>,
        status_code: u16,
        stream: ByteStream,
    ) -> Result<Vec<BundleResource>> {
        check_resource(url, content_type, status_code)?;
        let position = self.next_position.fetch_add(1, Ordering::SeqCst);
        let name = resource_name(position, url, content_type);
        let what = format!("resource {url}");
        let content_type = content_type.map(str::to_owned);
        let parts = match self.record.unzip {
            false => vec![Part {
                name,
                content_type,
                body: stream,
            }],
            true => self.unzipped(name, content_type, stream, &what).await?,
        };
        let mut added = Vec::with_capacity(parts.len());
        for (index, part) in parts.into_iter().enumerate() {
            // An archive's first entry takes the archive's position.
            let position = match index {
                0 => position,
                _ => self.next_position.fetch_add(1, Ordering::SeqCst),
            };
            match self.store_part(position, url, status_code, part, &what).await {
                Ok(resource) => added.push(resource),
                Err(e) => {
                    self.remove_objects(&added).await;
                    return Err(e);
                }
            }
        }
        Ok(added)
    }

    /// The unzip decorator: what `stream` becomes when gzip is expanded and
    /// a zip is taken apart.
    async fn unzipped(
        &self,
        name: String,
        content_type: Option<String>,
        stream: ByteStream,
        what: &str,
    ) -> Result<Vec<Part>> {
        let (head, rest) = body::split_head(stream, 8).await?;
        let first: Vec<u8> = head.iter().flat_map(|c| c.iter().copied()).take(8).collect();
        let whole = futures::stream::iter(head.into_iter().map(Ok))
            .chain(rest.unwrap_or_else(|| futures::stream::empty().boxed()))
            .boxed();
        let limits = self.store.bundle_config().limits();
        match unzip::sniff(&first, content_type.as_deref()) {
            Compression::Plain => Ok(vec![Part {
                name,
                content_type,
                body: whole,
            }]),
            Compression::Gzip => {
                let name = gunzipped_name(&name);
                Ok(vec![Part {
                    content_type: guess_type(&name),
                    name,
                    body: unzip::gunzip(whole, limits, what.to_owned()),
                }])
            }
            Compression::Zip => {
                let archive = Spooled::take(whole, None).await?.into_named_file().await?;
                let out = tempfile::tempdir().map_err(|e| Error::io("creating a temporary directory", e))?;
                let out_path = out.path().to_owned();
                let what = what.to_owned();
                let entries =
                    tokio::task::spawn_blocking(move || unzip::expand_zip(archive.path(), &out_path, limits, &what))
                        .await
                        .map_err(|e| Error::new(ErrorKind::Io, format!("expanding a zip: {e}")))??;
                let mut parts = Vec::with_capacity(entries.len());
                for entry in entries {
                    let file = tokio::fs::File::open(&entry.file)
                        .await
                        .map_err(|e| Error::io("reading an expanded entry", e))?;
                    // Open files outlive the directory's removal on Unix.
                    parts.push(Part {
                        content_type: guess_type(&entry.name),
                        name: format!("{name}/{}", entry.name),
                        body: body::reader_stream(file),
                    });
                }
                drop(out);
                Ok(parts)
            }
        }
    }

    /// Store one part as the resource at `position`, and record it.
    async fn store_part(
        &self,
        position: u64,
        url: &str,
        status: u16,
        part: Part,
        what: &str,
    ) -> Result<BundleResource> {
        let mut resource = BundleResource {
            bundle_id: self.record.bundle_id.clone(),
            position,
            name: part.name,
            url: url.to_owned(),
            content_type: part.content_type,
            status_code: status,
            size: 0,
            sha256: String::new(),
            key: None,
            version_id: None,
            placement: None,
            added_at: Timestamp::now(),
        };
        match self.streams_zip {
            true => {
                // Taken in whole first (deflated unless compressed already),
                // so that only complete resources reach the zip; the lock is
                // not held meanwhile.
                let deflate = self.deflate_level(&resource);
                let spooled = Spooled::take(part.body, deflate)
                    .await
                    .map_err(|e| in_resource(e, what))?;
                resource.size = spooled.size;
                resource.sha256 = spooled.sha256.clone();
                let mut zip = self.zip.lock().await;
                let zip = zip.get_or_insert_with(|| open_zip(&self.store, &self.prefix, self.id()));
                resource.placement = Some(zip.add(&resource.name, spooled, resource.added_at).await?);
            }
            false => {
                // The directory layout, or a zip bundle staged here until completion.
                let key = match self.layout {
                    Layout::Directory => format!("{}{}", self.storage_prefix(), resource.name),
                    Layout::Zip => format!("{}staged/{}", self.storage_prefix(), resource.name),
                };
                let version = self
                    .store
                    .put_stream_shared_sync(&key, part.body, self.put_options(&resource))
                    .await
                    .map_err(|e| in_resource(e, what))?;
                resource.size = version.size;
                resource.sha256 = version.sha256.clone().unwrap_or_default();
                resource.key = Some(key);
                resource.version_id = Some(version.version_id.to_string());
            }
        }
        if let Err(e) = self
            .store
            .catalog()
            .bundle_change(BundleChange::AddResource(resource.clone()))
            .await
        {
            self.remove_objects(std::slice::from_ref(&resource)).await;
            return Err(e);
        }
        Ok(resource)
    }

    /// Seal the bundle with `metadata` (a JSON object): its manifest
    /// `bundle.json` is written, then one catalog transaction marks it
    /// complete, writes its audit row and its `bundle.completed` event; then
    /// the completion callbacks registered in this process run. Returns the
    /// completed bundle (`callbacks_pending` says whether a callback failed:
    /// [`Store::recover_bundles`] runs them again).
    pub async fn complete(self, metadata: serde_json::Map<String, serde_json::Value>) -> Result<BundleRecord> {
        let store = self.store.clone();
        let at = Timestamp::now();
        let metadata = serde_json::Value::Object(metadata);
        let current = store.bundle_info(self.id()).await?;
        if !current.is_open() {
            return Err(Error::conflict(format!("bundle {} is already complete", self.id())));
        }
        let resources = store.catalog().bundle_resources(self.id()).await?;
        let count = resources.len() as u64;
        let event = Event::new(
            types::BUNDLE_COMPLETED,
            Some(&self.record.storage_key),
            serde_json::json!({
                "bundle_id": self.record.bundle_id,
                "recipe_id": self.record.recipe_id,
                "primary_url": self.record.primary_url,
                "resources_count": count,
                "storage_key": self.record.storage_key,
                "completion_timestamp": at,
                "metadata": metadata,
                "meta": self.record.meta,
                "layout": self.record.layout,
            }),
        );
        store.require_bundle_announcer(&event).await?;
        let manifest = manifest_json(&current, &resources, Some(&metadata), Some(at));
        match self.layout {
            Layout::Zip if current.version_id.is_some() => {}
            Layout::Zip => self.seal_zip(resources, manifest).await?,
            Layout::Directory => {
                let key = format!("{}bundle.json", self.storage_prefix());
                let options = PutOptions {
                    content_type: Some("application/json".to_owned()),
                    ..PutOptions::default()
                };
                store.put_bytes(&key, manifest, options).await?;
            }
        }
        let change = BundleChange::Complete {
            bundle_id: self.record.bundle_id.clone(),
            at,
            metadata,
            actor: store.actor().to_owned(),
            event: Box::new(event.clone()),
        };
        store.catalog().bundle_change(change).await?;
        store.bundle_events_written(&event).await;
        store.run_bundle_callbacks(self.id()).await
    }

    /// Write the zip: the staged resources, `bundle.json` last, the central
    /// directory; then record it and drop the staged copies.
    async fn seal_zip(&self, resources: Vec<BundleResource>, manifest: Vec<u8>) -> Result<()> {
        let lost: Vec<&BundleResource> = resources.iter().filter(|r| r.key.is_none()).collect();
        let mut guard = self.zip.lock().await;
        let mut zip = match guard.take() {
            Some(zip) => zip,
            None if !lost.is_empty() => {
                return Err(Error::conflict(format!(
                    "bundle {}: {} resource(s) went into a zip that its run did not finish (first {}); \
                     resume the bundle to drop them (coffer bundle resume {}) or abort it",
                    self.id(),
                    lost.len(),
                    lost[0].url,
                    self.id()
                )));
            }
            None => open_zip(&self.store, &self.prefix, self.id()),
        };
        drop(guard);
        let level = self.store.bundle_config().compression_level;
        let mut placements = Vec::new();
        let mut staged = Vec::new();
        for resource in resources.iter().filter(|r| r.key.is_some()) {
            let (Some(key), Some(version)) = (&resource.key, &resource.version_id) else {
                continue;
            };
            let version_id: VersionId = version.parse()?;
            let body = self
                .store
                .get(
                    key,
                    crate::GetOptions {
                        version_id: Some(version_id.clone()),
                        ..crate::GetOptions::default()
                    },
                )
                .await?
                .body;
            let deflate = self.deflate_level(resource);
            let spooled = Spooled::take(body, deflate).await?;
            placements.push((
                resource.position,
                zip.add(&resource.name, spooled, resource.added_at).await?,
            ));
            staged.push((key.clone(), version_id));
        }
        let manifest = Spooled::take(body::once(Bytes::from(manifest)), (level > 0).then_some(level)).await?;
        zip.add("bundle.json", manifest, Timestamp::now()).await?;
        let version = zip.finish().await?;
        let change = BundleChange::Sealed {
            bundle_id: self.record.bundle_id.clone(),
            version_id: version.version_id.to_string(),
            placements,
        };
        self.store.catalog().bundle_change(change).await?;
        for (key, version_id) in staged {
            self.store.delete_version(&key, &version_id).await?;
        }
        Ok(())
    }

    /// Give the bundle up: every object stored for it is removed, then the
    /// bundle itself (with an audit row `bundle_abort`).
    pub async fn abort(self) -> Result<()> {
        if let Some(zip) = self.zip.lock().await.take() {
            zip.abort().await;
        }
        let current = self.store.bundle_info(self.id()).await?;
        if !current.is_open() {
            return Err(Error::conflict(format!(
                "bundle {} is complete: a completed bundle cannot be aborted",
                self.id()
            )));
        }
        let resources = self.store.catalog().bundle_resources(self.id()).await?;
        for resource in &resources {
            if let (Some(key), Some(version)) = (&resource.key, &resource.version_id) {
                remove_version(&self.store, key, version).await?;
            }
        }
        if let Some(version) = &current.version_id {
            remove_version(&self.store, &zip_key(&self.prefix, self.id()), version).await?;
        }
        let manifest = format!("{}bundle.json", self.storage_prefix());
        if let Ok(versions) = self.store.versions(&manifest).await {
            for version in versions {
                remove_version(&self.store, &manifest, version.version_id.as_str()).await?;
            }
        }
        let change = BundleChange::Abort {
            bundle_id: self.record.bundle_id.clone(),
            actor: self.store.actor().to_owned(),
        };
        self.store.catalog().bundle_change(change).await
    }

    /// Remove the objects of resources that will not be recorded (best effort:
    /// what stays is an open bundle's object, which its abort removes).
    async fn remove_objects(&self, resources: &[BundleResource]) {
        for resource in resources {
            if let (Some(key), Some(version)) = (&resource.key, &resource.version_id) {
                let _ = remove_version(&self.store, key, version).await;
            }
        }
    }

    /// The deflate level of `resource` in a zip: none for content compressed already.
    fn deflate_level(&self, resource: &BundleResource) -> Option<u32> {
        let level = self.store.bundle_config().compression_level;
        (level > 0 && !is_precompressed(resource.content_type.as_deref(), &resource.name)).then_some(level)
    }

    fn storage_prefix(&self) -> String {
        bundle_prefix(&self.prefix, self.id())
    }

    fn put_options(&self, resource: &BundleResource) -> PutOptions {
        let mut metadata = Metadata::new();
        metadata.insert("bundle_id".to_owned(), resource.bundle_id.clone());
        metadata.insert("url".to_owned(), resource.url.clone());
        metadata.insert("status_code".to_owned(), resource.status_code.to_string());
        metadata.insert("position".to_owned(), resource.position.to_string());
        PutOptions {
            content_type: resource.content_type.clone(),
            metadata,
            ..PutOptions::default()
        }
    }
}

/// Start the zip object of bundle `id`, with the bundle's id in its metadata.
fn open_zip(store: &Store, prefix: &str, id: &str) -> ZipStream {
    let mut metadata = Metadata::new();
    metadata.insert("bundle_id".to_owned(), id.to_owned());
    ZipStream::open(store, zip_key(prefix, id), metadata)
}

/// Remove one version for good; one already gone is fine.
async fn remove_version(store: &Store, key: &str, version: &str) -> Result<()> {
    let version_id: VersionId = version.parse()?;
    match store.delete_version(key, &version_id).await {
        Err(e) if e.kind() != ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// A resource's error, naming the resource unless it already does.
fn in_resource(e: Error, what: &str) -> Error {
    match e.message().starts_with(what) {
        true => e,
        false => Error::new(e.kind(), format!("{what}: {}", e.message())),
    }
}

/// Refuse a resource's URL, type or status out of bounds, in one line.
fn check_resource(url: &str, content_type: Option<&str>, status_code: u16) -> Result<()> {
    if url.is_empty() || url.len() > MAX_URL_BYTES || url.chars().any(char::is_control) {
        return Err(Error::invalid_input(format!(
            "invalid resource url {:?}: use 1 to {MAX_URL_BYTES} bytes without control characters",
            crate::key::printable(&url.chars().take(200).collect::<String>())
        )));
    }
    if let Some(content_type) = content_type {
        validate_content_type(content_type)?;
    }
    if !(100..=599).contains(&status_code) {
        return Err(Error::invalid_input(format!(
            "invalid status code {status_code}: expected 100 to 599"
        )));
    }
    Ok(())
}

/// The manifest of a bundle (`bundle.json`): the bundle, what it was
/// completed with, and every resource with its URL, type, status, size,
/// hash and name.
pub(crate) fn manifest_json(
    bundle: &BundleRecord,
    resources: &[BundleResource],
    metadata: Option<&serde_json::Value>,
    completed_at: Option<Timestamp>,
) -> Vec<u8> {
    let resources: Vec<serde_json::Value> = resources
        .iter()
        .map(|r| {
            serde_json::json!({
                "position": r.position, "name": r.name, "url": r.url, "content_type": r.content_type,
                "status_code": r.status_code, "size": r.size, "sha256": r.sha256,
            })
        })
        .collect();
    let manifest = serde_json::json!({
        "bundle_id": bundle.bundle_id,
        "primary_url": bundle.primary_url,
        "recipe_id": bundle.recipe_id,
        "storage_key": bundle.storage_key,
        "layout": bundle.layout,
        "meta": bundle.meta,
        "metadata": metadata,
        "created_at": bundle.created_at,
        "completed_at": completed_at,
        "resources_count": resources.len(),
        "resources": resources,
    });
    serde_json::to_vec_pretty(&manifest).unwrap_or_default()
}
