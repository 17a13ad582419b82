//! The `Sink` port: where a hook delivers events.

use std::fmt::{Debug, Display};

use async_trait::async_trait;

use super::Event;
use crate::error::Result;

/// Delivers events to one receiver.
///
/// # Contract
/// - `deliver` returns `Ok` only once the receiver has accepted the event
///   (a 2xx answer, a flushed line, a broker's acknowledgement, a command
///   that exited 0). Any error counts as a failed attempt: the dispatcher
///   retries it later, so a sink needs no retry loop of its own.
/// - `payload` is `event` as its CloudEvents JSON document; sinks that send
///   the document send these bytes.
/// - The same event may be delivered more than once (after a crash, or a
///   failure after the receiver had it): receivers drop duplicates by `event.id`.
/// - `Display` names the receiver without secrets.
#[async_trait]
pub trait Sink: Send + Sync + Debug + Display {
    /// Deliver one event.
    async fn deliver(&self, event: &Event, payload: &str) -> Result<()>;
}
