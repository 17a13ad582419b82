//! The dispatcher: fans events out to hooks and delivers them, with retries.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::FutureExt;
use serde::Serialize;

use super::runtime::{Backoff, HookRuntime};
use crate::catalog::{ClaimRequest, ClaimScope, Settlement};
use crate::error::Result;
use crate::time::Timestamp;

/// How a dispatcher works.
#[derive(Debug, Clone)]
pub struct DispatcherOptions {
    /// Deliveries claimed at once.
    pub batch: usize,
    /// Deliveries in flight at once.
    pub concurrency: usize,
    /// How long a claim lasts; a dispatcher that has not settled its claims
    /// by then is presumed dead, and others may deliver them again. Longer
    /// than any hook's timeout.
    pub claim_timeout: Duration,
    /// Retry delays.
    pub backoff: Backoff,
    /// How often an idle dispatcher looks for work (changes in this process wake it at once).
    pub idle_poll: Duration,
    /// The dispatcher lease's length, on catalogs that need one (SQLite):
    /// a standby dispatcher takes over at most this long after the holder died.
    pub lease_ttl: Duration,
    /// Remove delivered events older than this (`None`: keep them).
    pub retention: Option<Duration>,
}

impl Default for DispatcherOptions {
    fn default() -> Self {
        DispatcherOptions {
            batch: 512,
            concurrency: 64,
            claim_timeout: Duration::from_secs(120),
            backoff: Backoff::default(),
            idle_poll: Duration::from_millis(250),
            lease_ttl: Duration::from_secs(15),
            retention: Some(Duration::from_secs(7 * 24 * 3600)),
        }
    }
}

/// What one pass of a dispatcher did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DispatchReport {
    /// Events fanned out to hooks.
    pub fanned_out: u64,
    /// Attempts made.
    pub attempts: u64,
    /// Deliveries done.
    pub delivered: u64,
    /// Attempts that failed and will be retried.
    pub retrying: u64,
    /// Deliveries dead-lettered.
    pub dead: u64,
}

impl DispatchReport {
    fn add(&mut self, other: &DispatchReport) {
        self.fanned_out += other.fanned_out;
        self.attempts += other.attempts;
        self.delivered += other.delivered;
        self.retrying += other.retrying;
        self.dead += other.dead;
    }
}

/// Delivers a store's events to its hooks. Several may run at once, in one
/// process or many: on PostgreSQL they share the work; on SQLite one holds
/// the lease and the others wait to take over.
pub struct Dispatcher {
    runtime: Arc<HookRuntime>,
    options: DispatcherOptions,
    owner: String,
    lease_renewed: Option<Instant>,
    last_purge: Option<Instant>,
}

impl std::fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dispatcher").field("owner", &self.owner).finish()
    }
}

/// How often delivered events are purged.
const PURGE_EVERY: Duration = Duration::from_secs(600);

impl Dispatcher {
    pub(crate) fn new(runtime: Arc<HookRuntime>, options: DispatcherOptions) -> Self {
        Dispatcher {
            runtime,
            options,
            owner: format!("dispatcher-{}", uuid::Uuid::now_v7()),
            lease_renewed: None,
            last_purge: None,
        }
    }

    /// This dispatcher's id, as its claims record it.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// Whether this dispatcher may work now: takes or renews the lease when
    /// a third of it has passed.
    async fn hold_lease(&mut self) -> Result<bool> {
        if let Some(renewed) = self.lease_renewed
            && renewed.elapsed() < self.options.lease_ttl / 3
        {
            return Ok(true);
        }
        let granted = self
            .runtime
            .catalog()
            .acquire_lease(&self.owner, self.options.lease_ttl)
            .await?;
        self.lease_renewed = granted.then(Instant::now);
        Ok(granted)
    }

    /// One pass: fan out waiting events, then claim and try one batch of due
    /// deliveries. Returns what it did (nothing, if another dispatcher holds the lease).
    pub async fn pass(&mut self) -> Result<DispatchReport> {
        let mut report = DispatchReport::default();
        if !self.hold_lease().await? {
            return Ok(report);
        }
        report.fanned_out = self.runtime.fan_out_all().await? as u64;
        let definitions = self.runtime.definitions().await?;
        let hooks = self.runtime.deliverable(&definitions, false);
        if hooks.is_empty() {
            return Ok(report);
        }
        let until = Timestamp::from_micros(
            Timestamp::now().as_micros()
                + i64::try_from(self.options.claim_timeout.as_micros()).unwrap_or(i64::MAX / 4),
        );
        let request = ClaimRequest {
            owner: self.owner.clone(),
            hooks,
            limit: self.options.batch,
            until,
            scope: ClaimScope::All,
        };
        let claims = self.runtime.catalog().claim(&request).await?;
        if claims.is_empty() {
            return Ok(report);
        }
        let outcomes = self
            .runtime
            .attempt_all(claims, &definitions, self.options.backoff, self.options.concurrency)
            .await;
        self.runtime.catalog().settle(&self.owner, &outcomes).await?;
        for outcome in &outcomes {
            report.attempts += 1;
            match outcome.settlement {
                Settlement::Delivered => report.delivered += 1,
                Settlement::Retry { .. } => report.retrying += 1,
                Settlement::Dead { .. } => report.dead += 1,
            }
        }
        Ok(report)
    }

    /// Run passes until nothing is due now: every waiting event fanned out
    /// and every due delivery tried (retries scheduled for later are left).
    ///
    /// Where another dispatcher holds the lease (SQLite), this waits for it
    /// to run out (a dispatcher that died) for up to twice its length, then
    /// fails with `Conflict`: a live dispatcher is delivering already.
    pub async fn drain(&mut self) -> Result<DispatchReport> {
        let waiting_since = Instant::now();
        while !self.hold_lease().await? {
            if waiting_since.elapsed() > self.options.lease_ttl * 2 {
                return Err(crate::Error::conflict(
                    "another dispatcher holds the lease and is delivering these events",
                ));
            }
            tokio::time::sleep(self.options.lease_ttl / 8).await;
        }
        let mut total = DispatchReport::default();
        loop {
            let report = self.pass().await?;
            total.add(&report);
            if report.attempts == 0 && report.fanned_out == 0 {
                return Ok(total);
            }
        }
    }

    /// Give the lease up (on catalogs that have one), so that another
    /// dispatcher may start at once rather than when the lease runs out.
    pub async fn release(self) -> Result<()> {
        self.runtime.catalog().release_lease(&self.owner).await
    }

    /// Run until `shutdown` completes, then give the lease up. A pass under
    /// way when it completes is finished first, so that every claim is
    /// settled. Errors of the catalog (a restart, say) are retried after a pause.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()>) -> Result<DispatchReport> {
        self.run_observed(shutdown, |_| {}).await
    }

    /// [`run`](Self::run), calling `observe` with the running total after
    /// each pass that did something (for a caller that shows progress).
    pub async fn run_observed(
        mut self,
        shutdown: impl std::future::Future<Output = ()>,
        mut observe: impl FnMut(&DispatchReport),
    ) -> Result<DispatchReport> {
        let mut total = DispatchReport::default();
        tokio::pin!(shutdown);
        loop {
            let worked = match self.pass().await {
                Ok(report) => {
                    total.add(&report);
                    let worked = report.attempts > 0 || report.fanned_out > 0;
                    if worked {
                        observe(&total);
                    }
                    worked
                }
                Err(_) => false,
            };
            if shutdown.as_mut().now_or_never().is_some() {
                break;
            }
            self.purge_old_events().await;
            if !worked {
                let runtime = self.runtime.clone();
                tokio::select! {
                    () = &mut shutdown => break,
                    () = runtime.wake.notified() => {}
                    () = tokio::time::sleep(self.options.idle_poll) => {}
                }
            }
        }
        let _ = self.runtime.catalog().release_lease(&self.owner).await;
        Ok(total)
    }

    async fn purge_old_events(&mut self) {
        let Some(retention) = self.options.retention else {
            return;
        };
        if self.last_purge.is_some_and(|at| at.elapsed() < PURGE_EVERY) {
            return;
        }
        self.last_purge = Some(Instant::now());
        let before = Timestamp::from_micros(
            Timestamp::now().as_micros() - i64::try_from(retention.as_micros()).unwrap_or(i64::MAX / 4),
        );
        let _ = self.runtime.catalog().purge_events(before).await;
    }
}
