//! The background work of a long-running coffer process, each part
//! switchable (`[server.background]`): event delivery, the spool's drain,
//! the hot store's flusher and expiry, lifecycle rules and restore polling.

use std::time::Duration;

use coffer::config::BackgroundWork;
use coffer::events::DispatcherOptions;
use coffer::{DispatcherHandle, Store, SyncHandle};

/// How often the spool is drained.
const SPOOL_SYNC_EVERY: Duration = Duration::from_secs(5);
/// How often the lifecycle rules are applied.
const LIFECYCLE_EVERY: Duration = Duration::from_secs(24 * 3600);

/// The running background work; [`stop`](Self::stop) ends it.
pub struct Background {
    dispatcher: Option<DispatcherHandle>,
    /// Each stops when dropped.
    tasks: Vec<SyncHandle>,
}

impl Background {
    /// Start what `work` switches on.
    pub fn start(store: &Store, work: BackgroundWork) -> Background {
        let mut tasks = Vec::new();
        if work.spool_sync {
            tasks.push(store.spawn_sync(SPOOL_SYNC_EVERY));
        }
        if work.hot {
            tasks.push(store.spawn_hot(coffer::hot::FLUSH_INTERVAL));
        }
        if work.lifecycle {
            tasks.push(store.spawn_lifecycle(LIFECYCLE_EVERY));
        }
        if work.restores {
            tasks.push(store.spawn_restore_poll(coffer::RESTORE_POLL_INTERVAL));
        }
        let dispatcher = work.dispatch.then(|| {
            store.spawn_dispatcher(DispatcherOptions {
                claim_timeout: work.claim_timeout,
                ..DispatcherOptions::default()
            })
        });
        Background { dispatcher, tasks }
    }

    /// Stop: the dispatcher finishes its pass and settles its claims; the
    /// rest stops where it is (each of its rounds is safe to cut).
    pub async fn stop(self) -> coffer::Result<()> {
        drop(self.tasks);
        match self.dispatcher {
            Some(dispatcher) => dispatcher.stop().await.map(drop),
            None => Ok(()),
        }
    }
}
