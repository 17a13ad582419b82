//! Bundles on the store: starting, reopening, listing, completion
//! callbacks and recovery at run start (see [`crate::bundle`]).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use super::Store;
use crate::bundle::{
    Bundle, BundleConfig, BundleQuery, BundleRecord, BundleRef, BundleResource, Layout, RecoveryReport, bundle_prefix,
    check_bundle_id, new_bundle_id, zip_key,
};
use crate::catalog::{BundleChange, ClaimScope};
use crate::error::{Error, Result};
use crate::events::{DispatcherOptions, Event, HookSpec};
use crate::time::Timestamp;

impl Store {
    /// The same store, with these bundle settings.
    pub fn with_bundles(&self, config: BundleConfig) -> Store {
        Store {
            bundles: Arc::new(config),
            ..self.clone()
        }
    }

    /// Bundles' settings.
    pub fn bundle_config(&self) -> &BundleConfig {
        &self.bundles
    }

    /// Start a bundle: it is recorded open (with an audit row) and its
    /// context returned, ready for resources. In the zip layout the zip's
    /// upload starts now and runs while resources arrive.
    pub async fn start_bundle(&self, bundle: BundleRef) -> Result<Bundle> {
        if let Some(url) = &bundle.primary_url
            && (url.is_empty() || url.len() > 2048 || url.chars().any(char::is_control))
        {
            return Err(Error::invalid_input(
                "invalid primary url: use 1 to 2048 bytes without control characters",
            ));
        }
        if let Some(recipe) = &bundle.recipe_id
            && (recipe.is_empty() || recipe.len() > 256 || recipe.chars().any(char::is_control))
        {
            return Err(Error::invalid_input(
                "invalid recipe id: use 1 to 256 characters without control characters",
            ));
        }
        let layout = bundle.layout.or(self.bundles.layout).unwrap_or(Layout::Directory);
        let (id, created_at) = new_bundle_id();
        let prefix = self.bundles.prefix.clone();
        let record = BundleRecord {
            storage_key: match layout {
                Layout::Directory => bundle_prefix(&prefix, &id),
                Layout::Zip => zip_key(&prefix, &id),
            },
            bundle_id: id,
            layout: layout.as_str().to_owned(),
            unzip: bundle.unzip.unwrap_or(self.bundles.unzip),
            primary_url: bundle.primary_url,
            recipe_id: bundle.recipe_id,
            meta: serde_json::Value::Object(bundle.meta),
            created_at,
            created_by: self.actor.clone(),
            completed_at: None,
            metadata: None,
            version_id: None,
            callbacks_pending: false,
            resources_count: 0,
        };
        self.catalog.bundle_change(BundleChange::Start(record.clone())).await?;
        Ok(Bundle::new(self.clone(), record, prefix, 0, true))
    }

    /// The context of an open bundle started elsewhere (another process, an
    /// earlier run), to add resources, complete or abort it. A zip bundle's
    /// resources added through it are staged as objects until completion
    /// writes the zip.
    pub async fn open_bundle(&self, bundle_id: &str) -> Result<Bundle> {
        let record = self.open_record(bundle_id).await?;
        let last = self.last_position(bundle_id).await?;
        Ok(Bundle::new(
            self.clone(),
            record,
            self.bundles.prefix.clone(),
            last,
            false,
        ))
    }

    /// [`open_bundle`](Self::open_bundle) for a bundle whose run died: the
    /// resources that run streamed into a zip that never landed are dropped
    /// (they were never stored), so that it can be completed.
    pub async fn resume_bundle(&self, bundle_id: &str) -> Result<Bundle> {
        let record = self.open_record(bundle_id).await?;
        if record.layout == Layout::Zip.as_str() && record.version_id.is_none() {
            let lost: Vec<u64> = self
                .catalog
                .bundle_resources(bundle_id)
                .await?
                .into_iter()
                .filter(|r| r.key.is_none())
                .map(|r| r.position)
                .collect();
            if !lost.is_empty() {
                let change = BundleChange::ForgetResources {
                    bundle_id: bundle_id.to_owned(),
                    positions: lost,
                };
                self.catalog.bundle_change(change).await?;
            }
        }
        self.open_bundle(bundle_id).await
    }

    /// Complete the open bundle `bundle_id` from any process (see [`Bundle::complete`]).
    pub async fn complete_bundle(
        &self,
        bundle_id: &str,
        metadata: serde_json::Map<String, serde_json::Value>,
    ) -> Result<BundleRecord> {
        self.open_bundle(bundle_id).await?.complete(metadata).await
    }

    /// Abort the open bundle `bundle_id` from any process (see [`Bundle::abort`]).
    pub async fn abort_bundle(&self, bundle_id: &str) -> Result<()> {
        self.open_bundle(bundle_id).await?.abort().await
    }

    /// One bundle (`NotFound` when there is none).
    pub async fn bundle_info(&self, bundle_id: &str) -> Result<BundleRecord> {
        check_bundle_id(bundle_id)?;
        self.catalog
            .bundle(bundle_id)
            .await?
            .ok_or_else(|| Error::not_found(format!("no bundle {bundle_id}")))
    }

    /// A bundle's resources, in position order.
    pub async fn bundle_resources(&self, bundle_id: &str) -> Result<Vec<BundleResource>> {
        self.bundle_info(bundle_id).await?;
        self.catalog.bundle_resources(bundle_id).await
    }

    /// The bundles `query` selects, oldest first.
    pub async fn bundles(&self, query: &BundleQuery) -> Result<Vec<BundleRecord>> {
        self.catalog.bundles(query).await
    }

    /// Register `callback` to run when a bundle of `recipe` (of any recipe:
    /// `None`) is completed in this process, or when
    /// [`recover_bundles`](Self::recover_bundles) finds its callbacks not run.
    /// A callback that fails leaves the bundle's callbacks pending.
    pub fn on_bundle_complete<F, Fut>(&self, recipe: Option<&str>, callback: F)
    where
        F: Fn(BundleRecord) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<()>> + Send + 'static,
    {
        let callback = Arc::new(move |bundle: BundleRecord| {
            let run: std::pin::Pin<Box<dyn Future<Output = Result<()>> + Send>> = Box::pin(callback(bundle));
            run
        });
        self.bundle_callbacks.add(recipe.map(str::to_owned), callback);
    }

    /// What every long-running process does at start: run the callbacks of
    /// completed bundles whose callbacks did not run, deliver the events
    /// waiting in the outbox (announcements of completed bundles included),
    /// and list the bundles left open; those older than `abort_older_than`
    /// are aborted.
    pub async fn recover_bundles(&self, abort_older_than: Option<Duration>) -> Result<RecoveryReport> {
        let mut report = RecoveryReport::default();
        let pending = BundleQuery {
            callbacks_pending: true,
            ..BundleQuery::default()
        };
        for bundle in self.catalog.bundles(&pending).await? {
            match self.run_bundle_callbacks(&bundle.bundle_id).await {
                Ok(done) if !done.callbacks_pending => report.callbacks_run.push(bundle.bundle_id),
                Ok(_) => report
                    .callbacks_failed
                    .push((bundle.bundle_id, "a callback failed".to_owned())),
                Err(e) => report.callbacks_failed.push((bundle.bundle_id, e.message().to_owned())),
            }
        }
        let open = BundleQuery {
            open_only: true,
            ..BundleQuery::default()
        };
        let cutoff =
            abort_older_than.map(|age| Timestamp::from_micros(Timestamp::now().as_micros() - age.as_micros() as i64));
        for bundle in self.catalog.bundles(&open).await? {
            match cutoff {
                Some(cutoff) if bundle.created_at < cutoff => {
                    self.abort_bundle(&bundle.bundle_id).await?;
                    report.aborted.push(bundle.bundle_id);
                }
                _ => report.open.push(bundle),
            }
        }
        report.delivered = self.dispatcher(DispatcherOptions::default()).drain().await?.delivered;
        Ok(report)
    }

    /// Refuse a completion while the store requires an SQS hook for
    /// `bundle.completed` and has none that takes `event`.
    pub(crate) async fn require_bundle_announcer(&self, event: &Event) -> Result<()> {
        if !self.bundles.require_sqs {
            return Ok(());
        }
        let hooks = self.catalog.hooks().await?;
        let announced = hooks
            .iter()
            .any(|hook| matches!(hook.spec, HookSpec::Sqs(_)) && hook.filter.matches(event));
        match announced {
            true => Ok(()),
            false => Err(Error::conflict(
                "this store requires an SQS hook to announce completed bundles (bundles.require_sqs) \
                 and none takes bundle.completed: add one with `coffer hooks add sqs NAME QUEUE_URL --events bundle.completed`",
            )),
        }
    }

    /// After a bundle's completion committed: wake the dispatchers and
    /// deliver to synchronous hooks.
    pub(crate) async fn bundle_events_written(&self, event: &Event) {
        self.events_committed(ClaimScope::Events(vec![event.id.clone()])).await;
    }

    /// Run the completion callbacks of the completed bundle `bundle_id` and,
    /// when all succeed, record them as run. Returns the bundle as it is then.
    pub(crate) async fn run_bundle_callbacks(&self, bundle_id: &str) -> Result<BundleRecord> {
        let bundle = self.bundle_info(bundle_id).await?;
        if self.bundle_callbacks.run(&bundle).await.is_err() {
            return Ok(bundle);
        }
        let change = BundleChange::CallbacksDone {
            bundle_id: bundle_id.to_owned(),
        };
        self.catalog.bundle_change(change).await?;
        self.bundle_info(bundle_id).await
    }

    /// The open bundle `bundle_id` (`Conflict` once complete).
    async fn open_record(&self, bundle_id: &str) -> Result<BundleRecord> {
        let record = self.bundle_info(bundle_id).await?;
        match record.is_open() {
            true => Ok(record),
            false => Err(Error::conflict(format!("bundle {bundle_id} is already complete"))),
        }
    }

    async fn last_position(&self, bundle_id: &str) -> Result<u64> {
        let resources = self.catalog.bundle_resources(bundle_id).await?;
        Ok(resources.iter().map(|r| r.position).max().unwrap_or(0))
    }
}
