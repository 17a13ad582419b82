//! Integration hooks on the store: events, hook definitions, callbacks,
//! dispatchers and statistics.

use std::future::Future;
use std::time::Duration;

use super::Store;
use crate::catalog::{ClaimScope, DeadLetter, ObjectVersion};
use crate::error::{Error, ErrorKind, Result};
use crate::events::{
    Dispatcher, DispatcherOptions, Event, EventFilter, HookDefinition, HookSpec, HooksReport, MAX_EVENT_DATA_BYTES,
    built_in, callback, types, validate_event_type,
};
use crate::key::ObjectKey;
use crate::time::Timestamp;

/// Attempts a hook gets unless told otherwise.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 8;

/// A running background dispatcher; dropping it does not stop it, [`stop`](Self::stop) does.
#[derive(Debug)]
pub struct DispatcherHandle {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<crate::events::DispatchReport>>,
}

impl DispatcherHandle {
    /// Stop after the current pass (its claims settled) and give the lease up.
    pub async fn stop(self) -> Result<crate::events::DispatchReport> {
        let _ = self.stop.send(());
        self.task
            .await
            .map_err(|e| Error::new(ErrorKind::Delivery, format!("dispatcher task failed: {e}")))?
    }
}

impl Store {
    /// The same store, firing `object.retrieved` on every read of content.
    pub fn with_read_events(&self, read_events: bool) -> Store {
        Store {
            read_events,
            ..self.clone()
        }
    }

    /// After a change to `key` committed (with its events): wake this
    /// process's dispatchers, and deliver to synchronous hooks before returning.
    pub(super) async fn events_written(&self, key: &ObjectKey) {
        self.events_committed(ClaimScope::Key(key.as_str().to_owned())).await;
    }

    pub(super) async fn events_committed(&self, scope: ClaimScope) {
        self.hooks.wake.notify_waiters();
        // The events are committed: a failed delivery is retried by a dispatcher and counted in the stats.
        let _ = self.hooks.deliver_synchronous(scope).await;
    }

    pub(super) async fn fire_read_event(&self, version: &ObjectVersion) -> Result<()> {
        self.catalog
            .append_events(&[built_in::retrieved(version, &self.actor)])
            .await?;
        self.events_written(&version.key).await;
        Ok(())
    }

    /// Fire an application's own event (`batch.completed`, `qc.approved` ...)
    /// with `data` as its payload, about `subject` (a key) if given. It is
    /// written to the outbox and delivered like the store's own events.
    pub async fn fire_event(&self, event_type: &str, subject: Option<&str>, data: serde_json::Value) -> Result<Event> {
        if types::BUILT_IN.contains(&event_type) {
            return Err(Error::invalid_input(format!(
                "{event_type} is fired by the store itself; name your event differently (batch.completed, qc.approved ...)"
            )));
        }
        validate_event_type(event_type)?;
        let subject = subject.map(ObjectKey::new).transpose()?;
        let size = data.to_string().len();
        if size > MAX_EVENT_DATA_BYTES {
            return Err(Error::invalid_input(format!(
                "event data is {size} bytes of JSON; at most {MAX_EVENT_DATA_BYTES} are allowed"
            )));
        }
        let event = Event::new(event_type, subject.as_ref().map(ObjectKey::as_str), data);
        self.catalog.append_events(std::slice::from_ref(&event)).await?;
        self.events_committed(ClaimScope::Events(vec![event.id.clone()])).await;
        Ok(event)
    }

    /// Add a hook; with `replace`, an existing hook of that name takes the
    /// new settings (keeping its deliveries and counters).
    /// In an encrypted store its secrets are sealed with the store's key.
    pub async fn add_hook(&self, hook: &HookDefinition, replace: bool) -> Result<()> {
        let mut hook = hook.clone();
        let secrets: Vec<&mut String> = hook
            .spec
            .secrets_mut()
            .into_iter()
            .filter(|s| !crate::crypto::secrets::is_sealed(s))
            .collect();
        if !secrets.is_empty()
            && let Some(encryption) = self.encryption.require()?
        {
            for secret in secrets {
                *secret = crate::crypto::secrets::seal(encryption, secret).await?;
            }
        }
        self.catalog.save_hook(&hook, replace).await?;
        self.hooks.forget_definitions();
        Ok(())
    }

    /// A hook definition with this store's actor and the current time.
    pub fn new_hook(&self, name: &str, spec: HookSpec, filter: EventFilter) -> HookDefinition {
        HookDefinition {
            name: name.to_owned(),
            spec,
            filter,
            synchronous: false,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            created_at: Timestamp::now(),
            created_by: self.actor.clone(),
        }
    }

    /// Remove a hook with its pending deliveries and counters.
    pub async fn remove_hook(&self, name: &str) -> Result<()> {
        if !self.catalog.remove_hook(name, &self.actor).await? {
            return Err(Error::not_found(format!("no hook named {name}")));
        }
        self.hooks.forget_definitions();
        Ok(())
    }

    /// Every hook, by name, secrets included (show them with [`HookDefinition::redacted`]).
    pub async fn hooks(&self) -> Result<Vec<HookDefinition>> {
        self.catalog.hooks().await
    }

    /// Register an in-process callback as hook `name`: every event `filter`
    /// passes is handed to `function` (retried on `Err`, like any hook).
    /// The hook is recorded in the catalog, so events written while no
    /// process has it registered wait for the next one that does.
    pub async fn on_event<F, Fut>(&self, name: &str, filter: EventFilter, synchronous: bool, function: F) -> Result<()>
    where
        F: Fn(Event) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<()>> + Send + 'static,
    {
        let mut hook = self.new_hook(name, HookSpec::Callback, filter);
        hook.synchronous = synchronous;
        hook.validate()?;
        self.hooks.register_callback(name, callback(function));
        self.add_hook(&hook, true).await
    }

    /// Send a test event (`hook.test`) to one hook now, outside the outbox;
    /// returns how long the receiver took.
    pub async fn test_hook(&self, name: &str) -> Result<Duration> {
        let hooks = self.catalog.hooks().await?;
        let hook = hooks
            .iter()
            .find(|h| h.name == name)
            .ok_or_else(|| Error::not_found(format!("no hook named {name}")))?;
        let event = Event::new(
            "hook.test",
            None,
            serde_json::json!({ "hook": name, "actor": self.actor, "message": "a test event from coffer" }),
        );
        let started = std::time::Instant::now();
        let sink = self.hooks.sink(hook).await?;
        sink.deliver(&event, &event.to_json()).await?;
        Ok(started.elapsed())
    }

    /// A dispatcher for this store's events (run it with
    /// [`Dispatcher::run`], or [`Dispatcher::drain`] for one round).
    pub fn dispatcher(&self, options: DispatcherOptions) -> Dispatcher {
        Dispatcher::new(self.hooks.clone(), options)
    }

    /// Run a dispatcher in the background of this process until stopped.
    pub fn spawn_dispatcher(&self, options: DispatcherOptions) -> DispatcherHandle {
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let dispatcher = self.dispatcher(options);
        let task = tokio::spawn(dispatcher.run(async move {
            let _ = stopped.await;
        }));
        DispatcherHandle { stop, task }
    }

    /// Statistics of every hook and of all together.
    pub async fn hook_stats(&self) -> Result<HooksReport> {
        let counters = self.catalog.outbox_counters().await?;
        let hooks = self.catalog.hooks().await?;
        Ok(HooksReport::new(&counters, |name| {
            hooks
                .iter()
                .find(|h| h.name == name)
                .map(|h| h.spec.kind().to_owned())
                .unwrap_or_default()
        }))
    }

    /// Make dead-lettered deliveries (of one hook, or all) pending again; returns how many.
    pub async fn replay_hooks(&self, hook: Option<&str>) -> Result<u64> {
        if let Some(name) = hook
            && !self.catalog.hooks().await?.iter().any(|h| h.name == name)
        {
            return Err(Error::not_found(format!("no hook named {name}")));
        }
        let replayed = self.catalog.replay(hook).await?;
        self.hooks.wake.notify_waiters();
        Ok(replayed)
    }

    /// Dead-lettered deliveries (of one hook, or all), newest first.
    pub async fn dead_letters(&self, hook: Option<&str>, limit: usize) -> Result<Vec<DeadLetter>> {
        if limit == 0 {
            return Err(Error::invalid_input("limit must be at least 1"));
        }
        self.catalog.dead_letters(hook, limit).await
    }
}
