//! Work on every key under a prefix at once, as aws-cli, rclone and mc users
//! expect: delete them all (with a dry run), list every version of them, or
//! list those that are deleted.

use serde::Serialize;

use super::{ListOptions, ListPage, MAX_LIST_KEYS, Store};
use crate::catalog::{KeyQuery, ObjectVersion};
use crate::error::{Error, ErrorKind, Result};
use crate::key::ObjectKey;

/// Keys read per catalog query while walking a prefix.
const PAGE: usize = 1000;

/// What [`Store::delete_prefix`] did (or, as a dry run, would do).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DeletePrefixReport {
    /// Nothing was written: `deleted` lists what a delete would hide.
    pub dry_run: bool,
    /// The delete markers written, in key order; with `dry_run`, the live
    /// versions that would get one.
    pub deleted: Vec<ObjectVersion>,
}

impl Store {
    /// Delete every live key under `prefix`: a delete marker for each, as
    /// [`delete`](Self::delete) writes (their versions stay, and `undelete`
    /// brings a key back). With `dry_run`, only list the keys. A key deleted
    /// by someone else meanwhile is left out. An empty prefix is refused: it
    /// would hide the whole store.
    pub async fn delete_prefix(&self, prefix: &str, dry_run: bool) -> Result<DeletePrefixReport> {
        if prefix.is_empty() {
            return Err(Error::invalid_input(
                "an empty prefix would delete every key: give the prefix of the keys to delete",
            ));
        }
        let mut report = DeletePrefixReport {
            dry_run,
            deleted: Vec::new(),
        };
        let mut query = KeyQuery {
            prefix: prefix.to_owned(),
            limit: PAGE,
            ..KeyQuery::default()
        };
        loop {
            let page = self.catalog.list_latest(&query).await?;
            for live in &page {
                if dry_run {
                    report.deleted.push(live.clone());
                    continue;
                }
                match self.delete(live.key.as_str()).await {
                    Ok(marker) => report.deleted.push(marker),
                    Err(e) if e.kind() == ErrorKind::NotFound => {}
                    Err(e) => return Err(e),
                }
            }
            match page.last() {
                Some(last) if page.len() == PAGE => query.start_after = Some(last.key.to_string()),
                _ => return Ok(report),
            }
        }
    }

    /// One page of the keys under `options.prefix`, deleted ones included,
    /// with every version of each (delete markers too), newest first within
    /// a key: `objects` holds the versions of at most `max_keys` keys, and
    /// `next_start_after` is the last key shown. No delimiter is taken.
    pub async fn list_versions(&self, options: &ListOptions) -> Result<ListPage> {
        let (keys, more) = self.keys_page(options, |_| true).await?;
        let mut page = ListPage::default();
        for latest in &keys {
            page.objects.extend(self.catalog.versions(&latest.key, None).await?);
        }
        page.is_truncated = more;
        page.next_start_after = more.then(|| keys.last().map(|v| v.key.to_string())).flatten();
        Ok(page)
    }

    /// One page of the keys under `options.prefix` whose latest version is a
    /// delete marker: `objects` holds those markers, in key order. No
    /// delimiter is taken.
    pub async fn list_deleted(&self, options: &ListOptions) -> Result<ListPage> {
        let (markers, more) = self.keys_page(options, |latest| latest.is_delete_marker).await?;
        Ok(ListPage {
            is_truncated: more,
            next_start_after: more.then(|| markers.last().map(|v| v.key.to_string())).flatten(),
            objects: markers,
            common_prefixes: Vec::new(),
        })
    }

    /// The newest `limit` versions of `key` (delete markers included), newest first.
    pub async fn latest_versions(&self, key: &str, limit: usize) -> Result<Vec<ObjectVersion>> {
        let key = ObjectKey::new(key)?;
        if limit == 0 {
            return Err(Error::invalid_input("limit must be at least 1"));
        }
        let versions = self.catalog.versions(&key, Some(limit)).await?;
        if versions.is_empty() {
            return Err(Error::not_found(format!("no such key: {key}")));
        }
        Ok(versions)
    }

    /// The latest versions (delete markers included) of up to
    /// `options.max_keys` keys under the prefix that `wanted` keeps, in key
    /// order, and whether more follow.
    async fn keys_page(
        &self,
        options: &ListOptions,
        wanted: impl Fn(&ObjectVersion) -> bool,
    ) -> Result<(Vec<ObjectVersion>, bool)> {
        if options.max_keys == 0 || options.max_keys > MAX_LIST_KEYS {
            return Err(Error::invalid_input(format!(
                "max-keys must be between 1 and {MAX_LIST_KEYS}"
            )));
        }
        if options.delimiter.as_deref().is_some_and(|d| !d.is_empty()) {
            return Err(Error::invalid_input(
                "a delimiter groups live keys only: list versions or deleted keys without one",
            ));
        }
        let mut kept = Vec::new();
        let mut query = KeyQuery {
            prefix: options.prefix.clone(),
            start_after: options.start_after.clone(),
            limit: PAGE,
            include_deleted: true,
            ..KeyQuery::default()
        };
        loop {
            let page = self.catalog.list_latest(&query).await?;
            let exhausted = page.len() < PAGE;
            for latest in page {
                query.start_after = Some(latest.key.to_string());
                if !wanted(&latest) {
                    continue;
                }
                if kept.len() == options.max_keys {
                    return Ok((kept, true));
                }
                kept.push(latest);
            }
            if exhausted {
                return Ok((kept, false));
            }
        }
    }
}
