//! The audit log at scale: export as JSON Lines, purge after the retention.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use serde::Serialize;

use super::Store;
use crate::body;
use crate::catalog::{AuditEntry, AuditQuery, Catalog};
use crate::error::{Error, Result};
use crate::time::Timestamp;

/// Audit rows read per catalog query when streaming the log.
const PAGE: usize = 1000;

/// Every action an audit row records: the list an action filter is checked
/// against, and the one `coffer audit --help` and the README show.
pub const AUDIT_ACTIONS: &[&str] = &[
    "put",
    "copy",
    "metadata",
    "delete",
    "undelete",
    "delete_version",
    "rollback",
    "tag",
    "comment",
    "retention",
    "legal_hold",
    "prune",
    "lifecycle",
    "restore",
    "restored",
    "repair",
    "reindex",
    "tier",
    "migrate",
    "hook_add",
    "hook_remove",
    "get",
    "audit_purge",
    "bundle_start",
    "bundle_complete",
    "bundle_abort",
    "token_create",
    "token_revoke",
    "bucket_create",
    "bucket_delete",
];

/// Refuse a query whose action filter names no action, which would match nothing.
fn check_action(query: &AuditQuery) -> Result<()> {
    match query.action.as_deref() {
        Some(action) if !AUDIT_ACTIONS.contains(&action) => Err(Error::invalid_input(format!(
            "unknown audit action {action:?}: use one of {}",
            AUDIT_ACTIONS.join(", ")
        ))),
        _ => Ok(()),
    }
}

/// What an audit purge did (or, as a dry run, would do).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditPurgeReport {
    /// Rows older than this were removed.
    pub before: Timestamp,
    /// The configured retention, as text (`7y`, `400d`).
    pub retention: String,
    /// How many rows were (or would be) removed.
    pub removed: u64,
    /// Nothing was removed: `removed` is what a purge would remove.
    pub dry_run: bool,
}

impl Store {
    /// The same store, keeping audit rows at least `retention`: older ones
    /// may then be removed by [`purge_audit`](Self::purge_audit) (`None`: never).
    pub fn with_audit_retention(&self, retention: Option<Duration>) -> Store {
        Store {
            audit_retention: retention,
            ..self.clone()
        }
    }

    /// The same store, recording (or not) every read of content in the audit
    /// log: each successful [`get`](Self::get) writes a `get` row before its
    /// body is returned, and fails if that row cannot be written.
    pub fn with_audit_reads(&self, audit_reads: bool) -> Store {
        Store {
            audit_reads,
            ..self.clone()
        }
    }

    /// How long audit rows are kept at least, if a retention is configured.
    pub fn audit_retention(&self) -> Option<Duration> {
        self.audit_retention
    }

    /// Whether reads are recorded in the audit log.
    pub fn audit_reads(&self) -> bool {
        self.audit_reads
    }

    /// Audit rows, newest first (or as `query` orders them).
    /// Fails with `InvalidInput` when the query's action is not one of [`AUDIT_ACTIONS`].
    pub async fn audit(&self, query: &AuditQuery) -> Result<Vec<AuditEntry>> {
        check_action(query)?;
        self.catalog.audit(query).await
    }

    /// The rows `query` selects, oldest first, read from the catalog a page at a
    /// time, so any number of rows moves through bounded memory. Only rows that
    /// exist when the stream starts are included; with a `limit` above 0, the
    /// newest `limit` of them (the rows [`audit`](Self::audit) returns), else all.
    /// The query's `after_id` and `oldest_first` are ignored.
    pub fn audit_stream(&self, query: &AuditQuery) -> BoxStream<'static, Result<AuditEntry>> {
        audit_pages(self.catalog.clone(), query.clone())
            .map_ok(|page| futures::stream::iter(page.into_iter().map(Ok)))
            .try_flatten()
            .boxed()
    }

    /// Write the rows [`audit_stream`](Self::audit_stream) yields to the file at
    /// `path` as JSON Lines, one [`AuditEntry`] object per line, oldest first.
    /// The rows go to a temporary file beside `path` that is fsynced and then
    /// renamed, so `path` appears only complete; on error it is left as it was.
    /// Returns how many rows were written.
    pub async fn export_audit(&self, query: &AuditQuery, path: &Path) -> Result<u64> {
        let rows = Arc::new(AtomicU64::new(0));
        let counted = rows.clone();
        let lines = audit_pages(self.catalog.clone(), query.clone())
            .map(move |page| {
                let page = page?;
                let mut text = Vec::new();
                for row in &page {
                    serde_json::to_writer(&mut text, row)
                        .map_err(|e| Error::invalid_input(format!("audit row {} cannot be encoded: {e}", row.id)))?;
                    text.push(b'\n');
                }
                counted.fetch_add(page.len() as u64, Ordering::Relaxed);
                Ok(Bytes::from(text))
            })
            .boxed();
        body::save_to_file(path, lines).await?;
        Ok(rows.load(Ordering::Relaxed))
    }

    /// Remove the audit rows older than the retention allows (now minus
    /// `audit_retention`), or older than `before` if that is earlier; with
    /// `dry_run`, only count them. The purge records an `audit_purge` row in
    /// the transaction of its deletion. Refused, changing nothing, when no
    /// retention is configured or `before` is later than the retention allows.
    pub async fn purge_audit(&self, before: Option<Timestamp>, dry_run: bool) -> Result<AuditPurgeReport> {
        let Some(retention) = self.audit_retention else {
            return Err(Error::invalid_input(
                "no audit retention is configured, so no audit row may be purged: set audit_retention \
                 (for example audit_retention = \"7y\" in coffer.toml, or COFFER_AUDIT_RETENTION=7y)",
            ));
        };
        let retention_text = crate::time::format_span(retention);
        let span = i64::try_from(retention.as_micros()).unwrap_or(i64::MAX);
        let cutoff = Timestamp::from_micros(Timestamp::now().as_micros().saturating_sub(span));
        let before = match before {
            Some(before) if before > cutoff => {
                return Err(Error::invalid_input(format!(
                    "cannot purge audit rows up to {before}: the audit retention of {retention_text} keeps every \
                     row since {cutoff}"
                )));
            }
            Some(before) => before,
            None => cutoff,
        };
        let detail = serde_json::json!({ "retention": retention_text });
        let removed = self.catalog.purge_audit(before, &self.actor, detail, dry_run).await?;
        Ok(AuditPurgeReport {
            before,
            retention: retention_text,
            removed,
            dry_run,
        })
    }
}

/// The pages of rows [`Store::audit_stream`] yields.
fn audit_pages(catalog: Arc<dyn Catalog>, query: AuditQuery) -> BoxStream<'static, Result<Vec<AuditEntry>>> {
    /// Where the next page starts, and the newest row to include.
    struct Cursor {
        after_id: Option<i64>,
        last_id: i64,
    }
    let start = {
        let catalog = catalog.clone();
        let query = query.clone();
        async move {
            check_action(&query)?;
            let newest_first = AuditQuery {
                after_id: None,
                oldest_first: false,
                ..query
            };
            let newest = catalog
                .audit(&AuditQuery {
                    limit: 1,
                    ..newest_first.clone()
                })
                .await?;
            let Some(last_id) = newest.first().map(|row| row.id) else {
                return Ok(None);
            };
            if newest_first.limit == 0 {
                return Ok(Some(Cursor {
                    after_id: None,
                    last_id,
                }));
            }
            // The oldest of the newest `limit` rows: walk back to it a page at a time.
            let mut remaining = newest_first.limit;
            let mut after_id = None;
            let mut first_id = last_id;
            while remaining > 0 {
                let page = AuditQuery {
                    after_id,
                    limit: remaining.min(PAGE),
                    ..newest_first.clone()
                };
                let rows = catalog.audit(&page).await?;
                let Some(oldest) = rows.last() else { break };
                first_id = oldest.id;
                after_id = Some(oldest.id);
                remaining = remaining.saturating_sub(rows.len());
                if rows.len() < page.limit {
                    break;
                }
            }
            Ok(Some(Cursor {
                after_id: Some(first_id - 1),
                last_id,
            }))
        }
    };
    futures::stream::once(start)
        .map_ok(move |cursor| {
            let catalog = catalog.clone();
            let query = query.clone();
            futures::stream::try_unfold(cursor, move |cursor| {
                let catalog = catalog.clone();
                let query = query.clone();
                async move {
                    let Some(cursor) = cursor else {
                        return Ok(None);
                    };
                    let page = AuditQuery {
                        after_id: cursor.after_id,
                        oldest_first: true,
                        limit: PAGE,
                        ..query
                    };
                    let mut rows = catalog.audit(&page).await?;
                    let full = rows.len() == PAGE;
                    rows.retain(|row| row.id <= cursor.last_id);
                    let next = match rows.last() {
                        Some(last) if full && last.id < cursor.last_id => Some(Cursor {
                            after_id: Some(last.id),
                            last_id: cursor.last_id,
                        }),
                        _ => None,
                    };
                    Ok(if rows.is_empty() { None } else { Some((rows, next)) })
                }
            })
        })
        .try_flatten()
        .boxed()
}
