//! ClickHouse as the hot engine, on the store's side: an in-process hook
//! (`hot.clickhouse`) copies each new small version from the outbox into
//! ClickHouse (at least once; the table collapses duplicates by version id),
//! reads look there first, and `hot query` lists recent objects from there
//! (from the catalog's hot copies with the catalog engine).

use std::sync::Arc;

use futures::TryStreamExt;
use tokio::sync::OnceCell;

use super::Store;
use crate::backend::Backend;
use crate::catalog::Catalog;
use crate::error::{Error, Result};
use crate::events::{Event, EventFilter, HookSpec, callback, types};
use crate::hot::{ClickHouse, HotObject, HotRow};
use crate::key::ObjectKey;
use crate::time::Timestamp;
use crate::version::VersionId;

/// The hook that feeds ClickHouse.
pub const CLICKHOUSE_HOOK: &str = "hot.clickhouse";

/// What the feed needs: the catalog and backend (no store, which holds the
/// hook runtime the feed is registered in), and the table made once per process.
struct Feed {
    catalog: Arc<dyn Catalog>,
    backend: Arc<dyn Backend>,
    clickhouse: Arc<ClickHouse>,
    /// The store's `hot.max_object_size`: larger versions are not copied.
    max_size: u64,
    table: OnceCell<()>,
}

impl Feed {
    /// Copy the version a `version.created` event names, if it is small.
    async fn copy(&self, event: Event) -> Result<()> {
        let field = |name: &str| event.data.get(name).and_then(|v| v.as_str()).map(str::to_owned);
        let (Some(key), Some(version_id)) = (field("key"), field("version_id")) else {
            return Ok(());
        };
        let key = ObjectKey::new(&key)?;
        let version_id: VersionId = version_id.parse()?;
        // Removed since, or too large to be hot: nothing to copy.
        let Some(version) = self.catalog.version(&key, Some(&version_id)).await? else {
            return Ok(());
        };
        let (Some(sha256), Some(path)) = (&version.sha256, &version.blob_path) else {
            return Ok(());
        };
        if version.size > self.max_size {
            return Ok(());
        }
        let body = match self.catalog.hot_copy(sha256).await? {
            Some(copy) => copy.content,
            None => {
                let chunks: Vec<bytes::Bytes> = self.backend.read(path, None).await?.try_collect().await?;
                bytes::Bytes::from(chunks.concat())
            }
        };
        self.table
            .get_or_try_init(|| async { self.clickhouse.ensure_table().await })
            .await?;
        let row = HotRow {
            version_id: version.version_id.to_string(),
            key: version.key.to_string(),
            sha256: sha256.clone(),
            size: version.size,
            content_type: version.content_type.clone().unwrap_or_default(),
            metadata: serde_json::to_string(&version.metadata).unwrap_or_default(),
            created_at: version.created_at,
            body,
        };
        self.clickhouse.insert(&[row]).await
    }
}

impl Store {
    /// Serve hot copies from `clickhouse` too: register the feed in this
    /// process, and record its hook in the catalog if it is not there yet
    /// (events wait in the outbox for a process that delivers them).
    pub(super) async fn with_clickhouse(mut self, clickhouse: ClickHouse) -> Result<Store> {
        let clickhouse = Arc::new(clickhouse);
        let feed = Arc::new(Feed {
            catalog: self.catalog.clone(),
            backend: self.backend.clone(),
            clickhouse: clickhouse.clone(),
            max_size: self.hot.max_object_size,
            table: OnceCell::new(),
        });
        self.hooks.register_callback(
            CLICKHOUSE_HOOK,
            callback(move |event| {
                let feed = feed.clone();
                async move { feed.copy(event).await }
            }),
        );
        if !self.catalog.hooks().await?.iter().any(|h| h.name == CLICKHOUSE_HOOK) {
            let filter = EventFilter {
                events: vec![types::VERSION_CREATED.to_owned()],
                ..EventFilter::default()
            };
            let hook = self.new_hook(CLICKHOUSE_HOOK, HookSpec::Callback, filter);
            self.add_hook(&hook, true).await?;
        }
        self.clickhouse = Some(clickhouse);
        Ok(self)
    }

    /// The bytes (as stored) of content `sha256` from ClickHouse, if it
    /// serves hot copies and holds them; a server that does not answer is
    /// a miss (the catalog and the backend still have them).
    pub(super) async fn clickhouse_copy(&self, sha256: &str) -> Option<bytes::Bytes> {
        let clickhouse = self.clickhouse.as_ref()?;
        clickhouse.body(sha256).await.ok().flatten()
    }

    /// Drop ClickHouse's day partitions older than `before`; how many went.
    pub(super) async fn expire_clickhouse(&self, before: Timestamp, dry_run: bool) -> Result<Vec<String>> {
        match &self.clickhouse {
            Some(clickhouse) => clickhouse.days_before(before, !dry_run).await,
            None => Ok(Vec::new()),
        }
    }

    /// The newest objects held hot under `prefix`, put since `since`, at
    /// most `limit`: from ClickHouse when it is the engine, else from the
    /// catalog's hot copies.
    pub async fn hot_query(&self, prefix: &str, since: Timestamp, limit: usize) -> Result<Vec<HotObject>> {
        if limit == 0 {
            return Err(Error::invalid_input("--limit must be at least 1"));
        }
        match &self.clickhouse {
            Some(clickhouse) => clickhouse.recent(prefix, since, limit).await,
            None => self.catalog.hot_recent(prefix, since, limit).await,
        }
    }
}
