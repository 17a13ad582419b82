//! One backend sync shared by concurrent puts: a put whose bytes are written
//! (not yet durable) waits for a sync that starts after them, and one sync
//! serves every put waiting when it starts. Many small puts at once (a
//! bundle's resources) then cost a few syncs instead of several fsyncs each.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::backend::Backend;
use crate::error::Result;

/// The syncs of one store.
#[derive(Debug, Default)]
pub(crate) struct SharedSync {
    /// Tickets handed out: one per put whose writes are done.
    requested: AtomicU64,
    /// The highest ticket a finished sync covers; held while a sync runs.
    covered: tokio::sync::Mutex<u64>,
}

impl SharedSync {
    /// Return once everything written before this call is durable on `backend`.
    pub(crate) async fn after_writes(&self, backend: &dyn Backend) -> Result<()> {
        let ticket = self.requested.fetch_add(1, Ordering::SeqCst) + 1;
        let mut covered = self.covered.lock().await;
        if *covered >= ticket {
            return Ok(());
        }
        // Every ticket handed out by now belongs to writes already done,
        // which the sync below (starting after this read) makes durable.
        let upto = self.requested.load(Ordering::SeqCst);
        backend.sync().await?;
        *covered = upto;
        Ok(())
    }
}
