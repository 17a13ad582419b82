//! Buckets, as S3 clients see them: a bucket is the first segment of its
//! keys (`invoices/2024/a.pdf` is in `invoices`), so the CLI, the REST API
//! and S3 clients see the same objects. A bucket made empty is recorded in
//! the catalog until it is deleted.

use serde::Serialize;

use super::Store;
use super::options::ListOptions;
use crate::catalog::MultipartChange;
use crate::error::{Error, Result};
use crate::key::ObjectKey;
use crate::time::Timestamp;

/// A bucket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Bucket {
    /// Its name.
    pub name: String,
    /// When it was made empty, for a recorded bucket; `None` for one that
    /// exists because keys are in it.
    pub created_at: Option<Timestamp>,
}

impl Store {
    /// Every bucket: the first segments that hold keys, and the buckets
    /// made empty, by name.
    pub async fn buckets(&self) -> Result<Vec<Bucket>> {
        let mut buckets: std::collections::BTreeMap<String, Option<Timestamp>> = self
            .catalog
            .buckets()
            .await?
            .into_iter()
            .map(|b| (b.name, Some(b.created_at)))
            .collect();
        let mut options = ListOptions {
            delimiter: Some("/".to_owned()),
            max_keys: super::options::MAX_LIST_KEYS,
            ..ListOptions::default()
        };
        loop {
            let page = self.list(&options).await?;
            for prefix in page.common_prefixes {
                let name = prefix.trim_end_matches('/').to_owned();
                buckets.entry(name).or_insert(None);
            }
            match page.next_start_after {
                Some(next) if page.is_truncated => options.start_after = Some(next),
                _ => break,
            }
        }
        Ok(buckets
            .into_iter()
            .map(|(name, created_at)| Bucket { name, created_at })
            .collect())
    }

    /// True if the bucket was made empty or holds keys.
    pub async fn bucket_exists(&self, name: &str) -> Result<bool> {
        check_bucket_name(name)?;
        if self.catalog.buckets().await?.iter().any(|b| b.name == name) {
            return Ok(true);
        }
        self.holds_keys(name).await
    }

    /// Make an empty bucket (`Conflict` if it exists).
    pub async fn create_bucket(&self, name: &str) -> Result<()> {
        check_bucket_name(name)?;
        if self.holds_keys(name).await? {
            return Err(Error::conflict(format!("bucket {name} exists already")));
        }
        self.catalog
            .multipart_change(MultipartChange::CreateBucket {
                name: name.to_owned(),
                at: Timestamp::now(),
                actor: self.actor.clone(),
            })
            .await
            .map(drop)
    }

    /// Delete an empty bucket: `Conflict` while it holds keys, `NotFound`
    /// if it does not exist.
    pub async fn delete_bucket(&self, name: &str) -> Result<()> {
        check_bucket_name(name)?;
        if self.holds_keys(name).await? {
            return Err(Error::conflict(format!(
                "bucket {name} is not empty: delete its keys first"
            )));
        }
        self.catalog
            .multipart_change(MultipartChange::DeleteBucket {
                name: name.to_owned(),
                at: Timestamp::now(),
                actor: self.actor.clone(),
            })
            .await
            .map(drop)
    }

    async fn holds_keys(&self, name: &str) -> Result<bool> {
        let page = self
            .list(&ListOptions {
                prefix: format!("{name}/"),
                max_keys: 1,
                ..ListOptions::default()
            })
            .await?;
        Ok(!page.objects.is_empty())
    }
}

/// A bucket's name is one key segment.
fn check_bucket_name(name: &str) -> Result<()> {
    if name.contains('/') {
        return Err(Error::invalid_input(format!(
            "bucket name {name:?} has a '/': a bucket is one key segment"
        )));
    }
    ObjectKey::new(name).map(drop)
}
