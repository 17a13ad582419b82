//! Whole trees in and out of a `Store`: `import` of a directory (or one
//! file), `export` of a prefix.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures::StreamExt;
use serde::Serialize;

use super::write::{Durability, Prepared};
use super::{GetOptions, PutOptions, Store};
use crate::body::{self, BackgroundHasher};
use crate::catalog::{KeyQuery, ObjectVersion};
use crate::error::{Error, Result};
use crate::key::ObjectKey;
use crate::progress::Progress;
use crate::time::Timestamp;

/// Options of [`Store::import_dir`].
#[derive(Clone)]
pub struct ImportOptions {
    /// Put before each file's path (relative to the directory, with `/` separators) to make its key.
    pub prefix: String,
    /// Files stored at once.
    pub jobs: usize,
    /// Import files whose key's latest version already holds the same content
    /// too (by default they are skipped, as `aws s3 sync` and rclone do).
    pub force: bool,
    /// Only find out what would be imported: store nothing.
    pub dry_run: bool,
    /// Leave out files whose path relative to the directory matches one of
    /// these globs (`*` matches across `/`, as in `aws s3 sync --exclude`).
    pub exclude: Vec<String>,
    /// Told the total bytes first, then about bytes as files are stored.
    pub progress: Option<Arc<dyn Progress>>,
}

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions {
            prefix: String::new(),
            jobs: 8,
            force: false,
            dry_run: false,
            exclude: Vec::new(),
            progress: None,
        }
    }
}

/// What an import did (or, on a dry run, would do).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ImportReport {
    /// Files stored (each is a new version); on a dry run, files that would be.
    pub files: u64,
    /// Their bytes.
    pub bytes: u64,
    /// On a dry run, the keys that would get a new version, in path order.
    pub would_import: Vec<String>,
    /// Files left alone because their key's latest version holds the same content.
    pub unchanged: u64,
    /// Files left out by an exclude glob.
    pub excluded: u64,
    /// Files that could not be stored, with the reason.
    pub failed: Vec<(String, String)>,
    /// Entries that are not regular files (symbolic links, sockets ...), left out.
    pub skipped: Vec<String>,
}

/// Options of [`Store::export_dir`].
#[derive(Clone)]
pub struct ExportOptions {
    /// The keys to export; each file is named by its key with this removed.
    pub prefix: String,
    /// Export the versions that were current at this time instead of the latest.
    pub as_of: Option<Timestamp>,
    /// Files written at once.
    pub jobs: usize,
    /// Leave files that exist already as they are (counted in `skipped`)
    /// instead of replacing them.
    pub no_clobber: bool,
    /// Told about bytes as files are written.
    pub progress: Option<Arc<dyn Progress>>,
}

impl Default for ExportOptions {
    fn default() -> Self {
        ExportOptions {
            prefix: String::new(),
            as_of: None,
            jobs: 4,
            no_clobber: false,
            progress: None,
        }
    }
}

/// What an export did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ExportReport {
    /// Files written.
    pub files: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Files left as they were because they existed (with `no_clobber`).
    pub skipped: u64,
    /// Keys that could not be written, with the reason.
    pub failed: Vec<(String, String)>,
}

/// Most files written between two backend syncs during an import.
const IMPORT_BATCH_FILES: usize = 1000;
/// Most bytes written between two backend syncs during an import.
const IMPORT_BATCH_BYTES: u64 = 256 << 20;

/// Count each imported file, or list why it failed.
fn record_outcomes(outcomes: Vec<(Found, Result<ObjectVersion>)>, report: &mut ImportReport) {
    for (file, outcome) in outcomes {
        match outcome {
            Ok(version) => {
                report.files += 1;
                report.bytes += version.size;
            }
            Err(e) => report
                .failed
                .push((file.path.display().to_string(), e.message().to_owned())),
        }
    }
}

/// Cut the files into import batches of at most [`IMPORT_BATCH_FILES`] files
/// and (unless one file is larger) [`IMPORT_BATCH_BYTES`] bytes.
fn batches(found: Vec<Found>) -> Vec<Vec<Found>> {
    let mut batches: Vec<Vec<Found>> = Vec::new();
    let mut bytes = 0;
    for file in found {
        let full = batches
            .last()
            .is_none_or(|b| b.len() == IMPORT_BATCH_FILES || (bytes + file.size > IMPORT_BATCH_BYTES && !b.is_empty()));
        if full {
            batches.push(Vec::new());
            bytes = 0;
        }
        bytes += file.size;
        if let Some(batch) = batches.last_mut() {
            batch.push(file);
        }
    }
    batches
}

/// Passes bytes on to a progress shared by many transfers, which it does not start or finish.
struct Share(Arc<dyn Progress>);

impl Progress for Share {
    fn advance(&self, bytes: u64) {
        self.0.advance(bytes);
    }
}

/// A file found under the directory being imported.
struct Found {
    path: PathBuf,
    /// Its path relative to the directory, with `/` separators (what excludes match).
    relative: String,
    key: std::result::Result<String, String>,
    size: u64,
}

impl Store {
    /// Store every regular file under `dir` as a new version of `prefix` +
    /// its relative path, `jobs` at a time (`dir` may be a single file: its
    /// key is `prefix` + its name). Files whose key's latest version already
    /// holds the same content are skipped unless `force`; a file that fails is
    /// reported and the others go on; symbolic links are left out.
    pub async fn import_dir(&self, dir: &Path, options: &ImportOptions) -> Result<ImportReport> {
        let exclude = options
            .exclude
            .iter()
            .map(|glob| {
                glob::Pattern::new(glob).map_err(|e| Error::invalid_input(format!("invalid --exclude {glob:?}: {e}")))
            })
            .collect::<Result<Vec<_>>>()?;
        if !options.prefix.is_empty() {
            // A prefix no key can start with fails here, not once per file.
            ObjectKey::new(format!("{}file", options.prefix)).map_err(|e| {
                Error::new(
                    e.kind(),
                    format!("invalid prefix {:?}: {}", options.prefix, e.message()),
                )
            })?;
        }
        let root = dir.to_path_buf();
        let prefix = options.prefix.clone();
        let (found, skipped) = tokio::task::spawn_blocking(move || walk(&root, &prefix))
            .await
            .map_err(|e| Error::invalid_input(format!("walking the directory failed: {e}")))??;
        let mut report = ImportReport {
            skipped,
            ..ImportReport::default()
        };
        let walked = found.len();
        let found: Vec<Found> = found
            .into_iter()
            .filter(|file| !exclude.iter().any(|glob| glob.matches(&file.relative)))
            .collect();
        report.excluded = (walked - found.len()) as u64;
        let found = match options.force {
            true => found,
            false => self.changed_only(found, options, &mut report).await?,
        };
        if options.dry_run {
            for file in found {
                match file
                    .key
                    .and_then(|key| ObjectKey::new(key).map_err(|e| e.message().to_owned()))
                {
                    Ok(key) => {
                        report.files += 1;
                        report.bytes += file.size;
                        report.would_import.push(key.to_string());
                    }
                    Err(why) => report.failed.push((file.path.display().to_string(), why)),
                }
            }
            return Ok(report);
        }
        if let Some(progress) = &options.progress {
            progress.start(Some(found.iter().map(|f| f.size).sum()));
        }
        if self.backend.capabilities().batch_sync {
            for batch in batches(found) {
                self.import_batch(batch, options, &mut report).await;
            }
        } else {
            self.import_each(found, options, &mut report).await;
        }
        if let Some(progress) = &options.progress {
            progress.finish();
        }
        report.failed.sort();
        Ok(report)
    }

    /// Import a batch of files: write them all without waiting for
    /// durability, make the batch durable with one backend sync, and only then
    /// commit each to the catalog (the commits share transactions). One sync per
    /// batch instead of several fsyncs per file is what makes trees of small
    /// files fast; nothing is acknowledged before it is durable.
    async fn import_batch(&self, batch: Vec<Found>, options: &ImportOptions, report: &mut ImportReport) {
        let prepared: Vec<(Found, Result<Prepared>)> = futures::stream::iter(batch)
            .map(|file| async move {
                let prepared = self.prepare_file(&file, options.progress.clone()).await;
                (file, prepared)
            })
            .buffer_unordered(options.jobs.max(1))
            .collect()
            .await;
        let synced = self.backend.sync().await;
        let commits = futures::stream::iter(prepared)
            .map(|(file, prepared)| {
                let synced = &synced;
                async move {
                    let outcome = match (prepared, synced) {
                        (Ok(mut prepared), Err(e)) => {
                            prepared.fail(Error::new(e.kind(), e.message().to_owned()));
                            self.finish_upload(prepared).await
                        }
                        (Ok(prepared), Ok(())) => self.finish_upload(prepared).await,
                        (Err(e), _) => Err(e),
                    };
                    let outcome = match outcome {
                        Ok(version) => self.apply_max_versions(&version.key).await.map(|()| version),
                        Err(e) => Err(e),
                    };
                    (file, outcome)
                }
            })
            .buffer_unordered(IMPORT_BATCH_FILES);
        let outcomes: Vec<(Found, Result<ObjectVersion>)> = commits.collect().await;
        record_outcomes(outcomes, report);
    }

    /// Import files one put each, `jobs` at a time: for backends whose every
    /// write is durable on its own (object stores), where a shared sync gains
    /// nothing and holding a batch in memory until it commits would cost it.
    async fn import_each(&self, found: Vec<Found>, options: &ImportOptions, report: &mut ImportReport) {
        let outcomes: Vec<(Found, Result<ObjectVersion>)> = futures::stream::iter(found)
            .map(|file| async move {
                let outcome = async {
                    let prepared = self.prepare_file(&file, options.progress.clone()).await?;
                    let version = self.finish_upload(prepared).await?;
                    self.apply_max_versions(&version.key).await?;
                    Ok(version)
                }
                .await;
                (file, outcome)
            })
            .buffer_unordered(options.jobs.max(1))
            .collect()
            .await;
        record_outcomes(outcomes, report);
    }

    /// The files whose key's latest version does not hold the same content
    /// (compared by size, then by SHA-256); the others are counted unchanged.
    /// A file that cannot be looked at is kept, so that its import reports why.
    async fn changed_only(
        &self,
        found: Vec<Found>,
        options: &ImportOptions,
        report: &mut ImportReport,
    ) -> Result<Vec<Found>> {
        let latest = &self.latest_in_range(&found, &options.prefix).await?;
        let checked: Vec<(Found, bool)> = futures::stream::iter(found)
            .map(|file| async move {
                let stored = file.key.as_ref().ok().and_then(|key| latest.get(key));
                let unchanged = match stored {
                    Some((size, sha256)) if *size == file.size => {
                        file_sha256(&file.path).await.is_ok_and(|digest| &digest == sha256)
                    }
                    _ => false,
                };
                (file, unchanged)
            })
            .buffered(options.jobs.max(1))
            .collect()
            .await;
        let mut changed = Vec::new();
        for (file, unchanged) in checked {
            match unchanged {
                true => report.unchanged += 1,
                false => changed.push(file),
            }
        }
        Ok(changed)
    }

    /// Size and SHA-256 of the latest version of every key (deleted ones
    /// left out) from the first to the last key of `found`: a few pages of
    /// the catalog in key order, instead of one lookup per file.
    async fn latest_in_range(&self, found: &[Found], prefix: &str) -> Result<HashMap<String, (u64, String)>> {
        const PAGE: usize = 1000;
        let keys = found.iter().filter_map(|f| f.key.as_deref().ok());
        let (Some(first), Some(last)) = (keys.clone().min(), keys.max()) else {
            return Ok(HashMap::new());
        };
        let mut latest = HashMap::new();
        let mut query = KeyQuery {
            prefix: prefix.to_owned(),
            start_at: Some(first.to_owned()),
            limit: PAGE,
            ..KeyQuery::default()
        };
        loop {
            let page = self.catalog.list_latest(&query).await?;
            let more = page.len() == PAGE;
            for version in page {
                if version.key.as_str() > last {
                    return Ok(latest);
                }
                query.start_after = Some(version.key.to_string());
                if let Some(sha256) = version.sha256 {
                    latest.insert(version.key.to_string(), (version.size, sha256));
                }
            }
            if !more {
                return Ok(latest);
            }
            query.start_at = None;
        }
    }

    async fn prepare_file(&self, file: &Found, progress: Option<Arc<dyn Progress>>) -> Result<Prepared> {
        let key = file.key.clone().map_err(Error::invalid_input)?;
        let reader = tokio::fs::File::open(&file.path)
            .await
            .map_err(|e| Error::io(&format!("cannot open {}", file.path.display()), e))?;
        let options = PutOptions {
            progress: progress.map(|p| Arc::new(Share(p)) as Arc<dyn Progress>),
            ..PutOptions::default()
        };
        let body = body::reader_stream(reader);
        self.prepare_put(&key, body, options, Durability::Deferred, None).await
    }

    /// Write the current version of every key under `options.prefix` (or the
    /// version current at `options.as_of`) to `dir`, as files named by the key
    /// without the prefix. Each file appears only once complete and verified.
    pub async fn export_dir(&self, dir: &Path, options: &ExportOptions) -> Result<ExportReport> {
        const PAGE: usize = 1000;
        std::fs::create_dir_all(dir).map_err(|e| Error::io(&format!("cannot create {}", dir.display()), e))?;
        let mut report = ExportReport::default();
        let mut query = KeyQuery {
            prefix: options.prefix.clone(),
            limit: PAGE,
            as_of: options.as_of,
            ..KeyQuery::default()
        };
        if let Some(progress) = &options.progress {
            progress.start(None);
        }
        loop {
            let page = self.catalog.list_latest(&query).await?;
            let next = (page.len() == PAGE)
                .then(|| page.last().map(|v| v.key.to_string()))
                .flatten();
            let writes = futures::stream::iter(page)
                .map(|version| async move {
                    let outcome = self.export_version(dir, &version, options).await;
                    (version, outcome)
                })
                .buffer_unordered(options.jobs.max(1));
            let outcomes: Vec<(ObjectVersion, Result<Option<u64>>)> = writes.collect().await;
            for (version, outcome) in outcomes {
                match outcome {
                    Ok(Some(bytes)) => {
                        report.files += 1;
                        report.bytes += bytes;
                    }
                    Ok(None) => report.skipped += 1,
                    Err(e) => report.failed.push((version.key.to_string(), e.message().to_owned())),
                }
            }
            match next {
                Some(last) => query.start_after = Some(last),
                None => break,
            }
        }
        if let Some(progress) = &options.progress {
            progress.finish();
        }
        report.failed.sort();
        Ok(report)
    }

    /// Write one version to its file; `None` when `no_clobber` left an existing file.
    async fn export_version(
        &self,
        dir: &Path,
        version: &ObjectVersion,
        options: &ExportOptions,
    ) -> Result<Option<u64>> {
        let relative = version.key.as_str()[options.prefix.len()..].trim_start_matches('/');
        let parts: Vec<&str> = relative.split('/').filter(|part| !part.is_empty()).collect();
        if parts.is_empty() {
            return Err(Error::invalid_input("the key is the prefix itself: it names no file"));
        }
        let path = parts.iter().fold(dir.to_path_buf(), |path, part| path.join(part));
        if options.no_clobber && tokio::fs::symlink_metadata(&path).await.is_ok() {
            return Ok(None);
        }
        if let Some(parent) = path.parent() {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(|e| Error::io(&format!("cannot create {}", parent.display()), e))?;
        }
        let get = GetOptions {
            version_id: Some(version.version_id.clone()),
            progress: options
                .progress
                .clone()
                .map(|p| Arc::new(Share(p)) as Arc<dyn Progress>),
            ..GetOptions::default()
        };
        let result = self.get(version.key.as_str(), get).await?;
        body::save_to_file(&path, result.body).await.map(Some)
    }
}

/// Every regular file under `root` with the key it gets, sorted by path; and
/// the entries left out. A `root` that is a file is the one file found.
fn walk(root: &Path, prefix: &str) -> Result<(Vec<Found>, Vec<String>)> {
    let metadata = std::fs::metadata(root).map_err(|e| Error::io(&format!("cannot read {}", root.display()), e))?;
    if metadata.is_file() {
        let name = root
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let key = match root.file_name().and_then(|n| n.to_str()) {
            Some(name) => Ok(format!("{prefix}{name}")),
            None => Err(format!("{} is not UTF-8, so it cannot be a key", root.display())),
        };
        let file = Found {
            path: root.to_path_buf(),
            relative: name,
            key,
            size: metadata.len(),
        };
        return Ok((vec![file], Vec::new()));
    }
    if !metadata.is_dir() {
        return Err(Error::invalid_input(format!(
            "{} is neither a directory nor a regular file",
            root.display()
        )));
    }
    let mut found = Vec::new();
    let mut skipped = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let entries = std::fs::read_dir(&dir).map_err(|e| Error::io(&format!("cannot read {}", dir.display()), e))?;
        for entry in entries {
            let entry = entry.map_err(|e| Error::io(&format!("cannot read {}", dir.display()), e))?;
            let path = entry.path();
            let file_type = entry
                .file_type()
                .map_err(|e| Error::io(&format!("cannot read {}", path.display()), e))?;
            if file_type.is_dir() {
                pending.push(path);
            } else if file_type.is_file() {
                let size = entry.metadata().map(|m| m.len()).unwrap_or(0);
                let relative = relative_path(root, &path);
                let key = relative.clone().map(|relative| format!("{prefix}{relative}"));
                let relative = relative.unwrap_or_else(|_| path.display().to_string());
                found.push(Found {
                    path,
                    relative,
                    key,
                    size,
                });
            } else {
                skipped.push(path.display().to_string());
            }
        }
    }
    found.sort_by(|a, b| a.path.cmp(&b.path));
    skipped.sort();
    Ok((found, skipped))
}

/// The path of `file` relative to `root`, with `/` separators.
fn relative_path(root: &Path, file: &Path) -> std::result::Result<String, String> {
    let relative = file
        .strip_prefix(root)
        .map_err(|_| "outside the directory".to_owned())?;
    let mut key = String::new();
    for (i, part) in relative.components().enumerate() {
        let part = part
            .as_os_str()
            .to_str()
            .ok_or_else(|| format!("{} is not UTF-8, so it cannot be a key", file.display()))?;
        if i > 0 {
            key.push('/');
        }
        key.push_str(part);
    }
    Ok(key)
}

/// The SHA-256 of a file's content, in hex.
async fn file_sha256(path: &Path) -> Result<String> {
    let reader = tokio::fs::File::open(path)
        .await
        .map_err(|e| Error::io(&format!("cannot open {}", path.display()), e))?;
    Ok(BackgroundHasher::digest_all(body::reader_stream(reader), false)
        .await?
        .sha256)
}
