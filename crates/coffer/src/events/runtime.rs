//! The hooks of one store in this process: cached definitions, the sinks
//! built from them, in-process callbacks, and delivery of claimed events.

use crate::crypto::{EncryptionState, secrets};
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures::future::BoxFuture;
use futures::{StreamExt, stream};

use super::sinks::{build_sink, http_client};
use super::{Event, HookDefinition, HookSpec, Sink};
use crate::catalog::{Catalog, Claim, ClaimRequest, ClaimScope, Outcome, Settlement};
use crate::error::{Error, ErrorKind, Result};
use crate::time::Timestamp;

/// How long hook definitions are cached before the catalog is read again
/// (a hook added by another process is seen within this time).
const DEFINITIONS_TTL: Duration = Duration::from_secs(2);
/// Most events one fan-out transaction takes.
pub(crate) const FAN_OUT_BATCH: usize = 1000;

/// An in-process callback: gets each event its hook's filter passes.
pub type Callback = Arc<dyn Fn(Event) -> BoxFuture<'static, Result<()>> + Send + Sync>;

/// Wrap an async function as a [`Callback`].
pub fn callback<F, Fut>(function: F) -> Callback
where
    F: Fn(Event) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<()>> + Send + 'static,
{
    Arc::new(move |event| Box::pin(function(event)))
}

/// How attempts are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Delay before the second attempt; each further attempt doubles it.
    pub base: Duration,
    /// Longest delay.
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            base: Duration::from_secs(1),
            max: Duration::from_secs(600),
        }
    }
}

impl Backoff {
    /// The delay after failed attempt number `attempt` (1 for the first):
    /// exponential, capped, with "equal jitter" (half fixed, half random) so
    /// that retries of many events do not arrive together.
    pub fn delay(&self, attempt: u32) -> Duration {
        let doubling = attempt.saturating_sub(1).min(30);
        let full = self.base.saturating_mul(1 << doubling).min(self.max);
        let half = full / 2;
        half + half.mul_f64(fastrand::f64())
    }
}

/// Sinks built from hook settings, by hook name.
type SinkCache = HashMap<String, (HookSpec, Arc<dyn Sink>)>;

/// The hooks of one store, shared by the store's clones and its dispatchers.
pub(crate) struct HookRuntime {
    catalog: Arc<dyn Catalog>,
    /// Shared by the HTTP sinks; built on first use, so a store without hooks never builds it.
    http: OnceLock<reqwest::Client>,
    callbacks: RwLock<HashMap<String, Callback>>,
    sinks: tokio::sync::Mutex<SinkCache>,
    definitions: Mutex<Option<(Instant, Arc<Vec<HookDefinition>>)>>,
    /// The store's encryption, which opens sealed secrets.
    encryption: std::sync::RwLock<EncryptionState>,
    /// Wakes this process's dispatchers when a change has written events.
    pub(crate) wake: tokio::sync::Notify,
}

impl fmt::Debug for HookRuntime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HookRuntime").finish_non_exhaustive()
    }
}

impl HookRuntime {
    pub(crate) fn new(catalog: Arc<dyn Catalog>) -> Self {
        HookRuntime {
            catalog,
            http: OnceLock::new(),
            callbacks: RwLock::new(HashMap::new()),
            sinks: tokio::sync::Mutex::new(HashMap::new()),
            definitions: Mutex::new(None),
            encryption: std::sync::RwLock::new(EncryptionState::Off),
            wake: tokio::sync::Notify::new(),
        }
    }

    /// Open sealed secrets with `encryption` (the store's, once opened).
    pub(crate) fn set_encryption(&self, encryption: EncryptionState) {
        if let Ok(mut state) = self.encryption.write() {
            *state = encryption;
        }
    }

    /// `spec` with its sealed secrets opened, to build a sink from.
    async fn opened(&self, spec: &HookSpec) -> Result<HookSpec> {
        let mut spec = spec.clone();
        let sealed: Vec<&mut String> = spec
            .secrets_mut()
            .into_iter()
            .filter(|s| secrets::is_sealed(s))
            .collect();
        if sealed.is_empty() {
            return Ok(spec);
        }
        let state = self
            .encryption
            .read()
            .map(|s| s.clone())
            .unwrap_or(EncryptionState::Off);
        let encryption = state.require()?.ok_or_else(|| {
            Error::new(
                ErrorKind::KeyUnavailable,
                "a hook's secrets are sealed, and this store has no key",
            )
        })?;
        for secret in sealed {
            *secret = secrets::open(encryption, secret).await?;
        }
        Ok(spec)
    }

    fn http(&self) -> Result<&reqwest::Client> {
        if let Some(client) = self.http.get() {
            return Ok(client);
        }
        let client = http_client()?;
        Ok(self.http.get_or_init(|| client))
    }

    pub(crate) fn catalog(&self) -> &Arc<dyn Catalog> {
        &self.catalog
    }

    /// The hook definitions, from the cache while it is fresh.
    pub(crate) async fn definitions(&self) -> Result<Arc<Vec<HookDefinition>>> {
        if let Ok(cache) = self.definitions.lock()
            && let Some((read_at, definitions)) = cache.as_ref()
            && read_at.elapsed() < DEFINITIONS_TTL
        {
            return Ok(definitions.clone());
        }
        let definitions = Arc::new(self.catalog.hooks().await?);
        if let Ok(mut cache) = self.definitions.lock() {
            *cache = Some((Instant::now(), definitions.clone()));
        }
        Ok(definitions)
    }

    /// Forget the cached definitions (after this process changed them).
    pub(crate) fn forget_definitions(&self) {
        if let Ok(mut cache) = self.definitions.lock() {
            *cache = None;
        }
    }

    pub(crate) fn register_callback(&self, name: &str, callback: Callback) {
        if let Ok(mut callbacks) = self.callbacks.write() {
            callbacks.insert(name.to_owned(), callback);
        }
    }

    /// The hooks this process can deliver to: all but callbacks registered elsewhere.
    pub(crate) fn deliverable(&self, definitions: &[HookDefinition], only_synchronous: bool) -> Vec<String> {
        let callbacks = self
            .callbacks
            .read()
            .map(|c| c.keys().cloned().collect())
            .unwrap_or_else(|_| Vec::new());
        definitions
            .iter()
            .filter(|hook| !only_synchronous || hook.synchronous)
            .filter(|hook| !matches!(hook.spec, HookSpec::Callback) || callbacks.contains(&hook.name))
            .map(|hook| hook.name.clone())
            .collect()
    }

    /// The sink of a hook, built on first use and again when its settings change.
    pub(crate) async fn sink(&self, hook: &HookDefinition) -> Result<Arc<dyn Sink>> {
        let mut sinks = self.sinks.lock().await;
        if let Some((spec, sink)) = sinks.get(&hook.name)
            && *spec == hook.spec
        {
            return Ok(sink.clone());
        }
        let sink: Arc<dyn Sink> = match &hook.spec {
            HookSpec::Callback => {
                let callback = self.callbacks.read().ok().and_then(|c| c.get(&hook.name).cloned());
                let callback = callback.ok_or_else(|| {
                    Error::new(
                        ErrorKind::Delivery,
                        format!("callback hook {} is not registered in this process", hook.name),
                    )
                })?;
                Arc::new(CallbackSink {
                    name: hook.name.clone(),
                    callback,
                })
            }
            spec => {
                let spec = self.opened(spec).await?;
                Arc::from(build_sink(&hook.name, &spec, self.http()?).await?)
            }
        };
        sinks.insert(hook.name.clone(), (hook.spec.clone(), sink.clone()));
        Ok(sink)
    }

    /// Try each claim once and say what became of it.
    pub(crate) async fn attempt_all(
        &self,
        claims: Vec<Claim>,
        definitions: &[HookDefinition],
        backoff: Backoff,
        concurrency: usize,
    ) -> Vec<Outcome> {
        stream::iter(claims)
            .map(|claim| {
                let hook = definitions.iter().find(|h| h.name == claim.hook);
                self.attempt(claim, hook, backoff)
            })
            .buffer_unordered(concurrency.max(1))
            .collect()
            .await
    }

    async fn attempt(&self, claim: Claim, hook: Option<&HookDefinition>, backoff: Backoff) -> Outcome {
        let started = Instant::now();
        let delivered = match hook {
            Some(hook) => match self.sink(hook).await {
                Ok(sink) => sink.deliver(&claim.event, &claim.payload).await,
                Err(err) => Err(err),
            },
            None => Err(Error::new(
                ErrorKind::Delivery,
                format!("hook {} was removed", claim.hook),
            )),
        };
        let elapsed = started.elapsed();
        let max_attempts = hook.map_or(1, |h| h.max_attempts);
        let settlement = match delivered {
            Ok(()) => Settlement::Delivered,
            Err(err) if claim.attempt >= max_attempts => Settlement::Dead {
                error: err.message().to_owned(),
            },
            Err(err) => {
                let delay = backoff.delay(claim.attempt);
                let at = Timestamp::from_micros(
                    Timestamp::now().as_micros() + i64::try_from(delay.as_micros()).unwrap_or(i64::MAX / 4),
                );
                Settlement::Retry {
                    at,
                    error: err.message().to_owned(),
                }
            }
        };
        Outcome {
            delivery: claim.delivery,
            hook: claim.hook,
            settlement,
            elapsed,
        }
    }

    /// Fan out every waiting event.
    pub(crate) async fn fan_out_all(&self) -> Result<usize> {
        let mut total = 0;
        loop {
            let fanned = self.catalog.fan_out(FAN_OUT_BATCH).await?;
            total += fanned;
            if fanned < FAN_OUT_BATCH {
                return Ok(total);
            }
        }
    }

    /// Deliver, now and once, the due deliveries in `scope` to this
    /// process's synchronous hooks (what an operation does before it returns).
    pub(crate) async fn deliver_synchronous(&self, scope: ClaimScope) -> Result<()> {
        let definitions = self.definitions().await?;
        let hooks = self.deliverable(&definitions, true);
        if hooks.is_empty() {
            return Ok(());
        }
        self.fan_out_all().await?;
        let owner = format!("sync-{}", uuid::Uuid::now_v7());
        let request = ClaimRequest {
            owner: owner.clone(),
            hooks,
            limit: 1000,
            until: Timestamp::from_micros(Timestamp::now().as_micros() + 120_000_000),
            scope,
        };
        let claims = self.catalog.claim(&request).await?;
        let outcomes = self.attempt_all(claims, &definitions, Backoff::default(), 16).await;
        self.catalog.settle(&owner, &outcomes).await
    }
}

/// A callback registered on the store, as a sink.
struct CallbackSink {
    name: String,
    callback: Callback,
}

impl fmt::Debug for CallbackSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallbackSink").field("name", &self.name).finish()
    }
}

impl fmt::Display for CallbackSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "callback {}", self.name)
    }
}

#[async_trait]
impl Sink for CallbackSink {
    async fn deliver(&self, event: &Event, _payload: &str) -> Result<()> {
        (self.callback)(event.clone()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_up_to_its_cap() {
        let backoff = Backoff {
            base: Duration::from_millis(100),
            max: Duration::from_secs(1),
        };
        for attempt in 1..=10 {
            let full = Duration::from_millis(100 * (1 << (attempt - 1))).min(Duration::from_secs(1));
            let delay = backoff.delay(attempt);
            assert!(delay >= full / 2 && delay <= full, "attempt {attempt}: {delay:?}");
        }
    }
}
