//! The outbox half of the catalog port: events, hooks and their deliveries.
//! Its rules (what a fan-out, claim, settle or lease writes) are pure plans in
//! [`plan`], which both engines execute.

mod plan;

pub(crate) use self::plan::{
    ClaimedRow, FanOut, StatsUpdate, plan_claims, plan_fan_out, plan_lease, plan_settle, plan_stats,
};

use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;

use crate::error::{Error, ErrorKind, Result};
use crate::events::{Event, HookDefinition};
use crate::time::Timestamp;

/// A delivery a dispatcher holds until it settles it or its claim runs out.
#[derive(Debug, Clone)]
pub struct Claim {
    /// The delivery.
    pub delivery: i64,
    /// The hook it is for.
    pub hook: String,
    /// Which attempt this is (1 for the first).
    pub attempt: u32,
    /// The event.
    pub event: Event,
    /// The event's CloudEvents JSON, as stored.
    pub payload: String,
}

/// Which due deliveries a claim takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimScope {
    /// Any.
    All,
    /// Only those of events about this key.
    Key(String),
    /// Only those of these events (CloudEvents ids).
    Events(Vec<String>),
}

/// A request for due deliveries.
#[derive(Debug, Clone)]
pub struct ClaimRequest {
    /// Who claims (a dispatcher's unique id).
    pub owner: String,
    /// Only deliveries to these hooks (the ones the dispatcher can run).
    pub hooks: Vec<String>,
    /// At most this many.
    pub limit: usize,
    /// The claim runs out at this time; then another dispatcher may take
    /// the delivery (the owner is presumed dead).
    pub until: Timestamp,
    /// Which deliveries.
    pub scope: ClaimScope,
}

/// What became of an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settlement {
    /// The receiver has the event.
    Delivered,
    /// Failed; try again at this time.
    Retry {
        /// When.
        at: Timestamp,
        /// Why it failed.
        error: String,
    },
    /// Failed for the last time: dead-lettered until replayed.
    Dead {
        /// Why it failed.
        error: String,
    },
}

/// The outcome of one attempt, to record.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The delivery.
    pub delivery: i64,
    /// Its hook.
    pub hook: String,
    /// What became of it.
    pub settlement: Settlement,
    /// How long the attempt took.
    pub elapsed: Duration,
}

/// Counters of one hook, as the catalog keeps them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct HookCounters {
    /// The hook.
    pub hook: String,
    /// Attempts made.
    pub executed: u64,
    /// Attempts that failed.
    pub failed: u64,
    /// Time spent in attempts, microseconds.
    pub total_micros: u64,
    /// Attempts per latency bucket (see [`crate::events::LatencyHistogram`]).
    pub histogram: Vec<u64>,
    /// Deliveries waiting (or being tried).
    pub pending: u64,
    /// Deliveries done.
    pub delivered: u64,
    /// Deliveries dead-lettered.
    pub dead: u64,
}

/// The outbox's own counters and every hook's.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct OutboxCounters {
    /// Events written to the outbox (those purged since included).
    pub events_fired: u64,
    /// Events not yet fanned out to hooks.
    pub events_waiting: u64,
    /// Per hook, by name.
    pub hooks: Vec<HookCounters>,
}

/// A dead-lettered delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct DeadLetter {
    /// The delivery.
    pub delivery: i64,
    /// Its hook.
    pub hook: String,
    /// The event's id.
    pub event_id: String,
    /// The event's type.
    pub event_type: String,
    /// The event's subject.
    pub subject: Option<String>,
    /// Attempts made.
    pub attempts: u32,
    /// The last attempt's error.
    pub error: Option<String>,
    /// When it was given up.
    pub at: Option<Timestamp>,
}

/// Events, hooks and deliveries, kept by the catalog.
///
/// # Contract
/// - Every change the [`super::Catalog`] commits writes its events (see
///   `crate::events` for which) in the same transaction; `append_events`
///   writes an application's own events in one transaction.
/// - `fan_out` takes up to `limit` events not yet fanned out, oldest first,
///   and in one transaction adds one pending delivery, due now, for each
///   hook whose filter matches the event and whose `first_event` is not
///   after it; returns how many events it fanned out. Concurrent calls never
///   fan an event out twice.
/// - `claim` takes up to `limit` pending deliveries that are due (never
///   claimed, retry time reached, or an earlier claim ran out), to the given
///   hooks, within the scope, oldest due first; counts an attempt on each,
///   and makes them due again only at `until`. Concurrent claims never take
///   the same delivery.
/// - `settle` records outcomes of the owner's claims: delivered, retry at a
///   time, or dead; and adds each attempt to its hook's counters. An outcome
///   for a claim that ran out and was taken by another is counted but does
///   not change the delivery.
/// - `replay` makes dead deliveries pending again, due now, with no attempts.
/// - `save_hook` fails with `Conflict` if the name exists, unless `replace`;
///   a new hook receives events written from then on. `remove_hook` removes
///   its deliveries and counters too. Both write an audit row (`hook_add`,
///   `hook_remove`) naming the hook, never its settings.
/// - `acquire_lease` grants or renews the dispatcher lease to `owner` if no
///   other owner holds an unexpired one; a new owner also releases the
///   previous owner's claims. Catalogs whose claims are safe under
///   concurrency (PostgreSQL) always grant it.
/// - `purge_events` removes events older than `before` that every hook is done
///   with (no pending or dead delivery), and their deliveries.
#[async_trait]
pub trait Outbox: Send + Sync {
    /// Write events in one transaction.
    async fn append_events(&self, events: &[Event]) -> Result<()>;
    /// Add (or replace) a hook.
    async fn save_hook(&self, hook: &HookDefinition, replace: bool) -> Result<()>;
    /// Remove a hook (audited as by `actor`); `false` if there was none of that name.
    async fn remove_hook(&self, name: &str, actor: &str) -> Result<bool>;
    /// Every hook, by name.
    async fn hooks(&self) -> Result<Vec<HookDefinition>>;
    /// Add deliveries for events not yet fanned out.
    async fn fan_out(&self, limit: usize) -> Result<usize>;
    /// Take due deliveries.
    async fn claim(&self, request: &ClaimRequest) -> Result<Vec<Claim>>;
    /// Record the outcomes of claimed deliveries.
    async fn settle(&self, owner: &str, outcomes: &[Outcome]) -> Result<()>;
    /// Make dead deliveries (of one hook, or all) pending again; returns how many.
    async fn replay(&self, hook: Option<&str>) -> Result<u64>;
    /// Dead deliveries (of one hook, or all), newest first.
    async fn dead_letters(&self, hook: Option<&str>, limit: usize) -> Result<Vec<DeadLetter>>;
    /// Counters.
    async fn outbox_counters(&self) -> Result<OutboxCounters>;
    /// Take or renew the dispatcher lease for `ttl`.
    async fn acquire_lease(&self, owner: &str, ttl: Duration) -> Result<bool>;
    /// Give the lease up, if `owner` holds it.
    async fn release_lease(&self, owner: &str) -> Result<()>;
    /// Remove finished events older than `before`; returns how many.
    async fn purge_events(&self, before: Timestamp) -> Result<u64>;
}

pub(super) fn corrupt(what: &str) -> Error {
    Error::new(ErrorKind::Catalog, format!("catalog holds an invalid {what}"))
}

/// A hook definition as stored.
pub(crate) fn parse_hook(definition: &str) -> Result<HookDefinition> {
    serde_json::from_str(definition).map_err(|e| corrupt(&format!("hook definition: {e}")))
}

/// The counters from their rows: the fanned-out event count, events
/// waiting, (hook, executed, failed, total µs, histogram) per hook, and
/// (hook, state, count) of the deliveries.
pub(crate) fn outbox_counters(
    fanned_out: i64,
    waiting: i64,
    hooks: Vec<(String, i64, i64, i64, String)>,
    states: Vec<(String, String, i64)>,
) -> Result<OutboxCounters> {
    let count = |n: i64| u64::try_from(n).unwrap_or(0);
    let mut counters = Vec::with_capacity(hooks.len());
    for (hook, executed, failed, total_micros, histogram) in hooks {
        let histogram: Vec<u64> =
            serde_json::from_str(&histogram).map_err(|e| corrupt(&format!("histogram of hook {hook}: {e}")))?;
        let mut row = HookCounters {
            hook,
            executed: count(executed),
            failed: count(failed),
            total_micros: count(total_micros),
            histogram,
            ..HookCounters::default()
        };
        for (_, state, n) in states.iter().filter(|(h, _, _)| *h == row.hook) {
            match state.as_str() {
                "pending" => row.pending = count(*n),
                "delivered" => row.delivered = count(*n),
                _ => row.dead = count(*n),
            }
        }
        counters.push(row);
    }
    Ok(OutboxCounters {
        events_fired: count(fanned_out) + count(waiting),
        events_waiting: count(waiting),
        hooks: counters,
    })
}

/// `outbox_counters` reads these: the fanned-out count and the events waiting;
/// each hook's counters; deliveries per hook and state.
pub(crate) const EVENT_COUNTS_SQL: &str = "SELECT (SELECT value FROM outbox_counters WHERE name = 'events_fanned_out'), \
     (SELECT COUNT(*) FROM outbox WHERE NOT fanned_out)";
pub(crate) const HOOK_COUNTERS_SQL: &str = "SELECT h.name, COALESCE(s.executed, 0), COALESCE(s.failed, 0), \
     COALESCE(s.total_micros, 0), COALESCE(s.histogram, '[]') FROM hooks h LEFT JOIN hook_stats s ON s.hook = h.name \
     ORDER BY h.name";
pub(crate) const DELIVERY_STATES_SQL: &str = "SELECT hook, state, COUNT(*) FROM hook_deliveries GROUP BY hook, state";

/// The columns of a dead letter, as [`DeadLetterRow`] reads them.
pub(crate) const DEAD_LETTER_COLUMNS: &str = "d.id, d.hook, o.event_id, o.type, o.key, CAST(d.attempts AS BIGINT), \
     d.last_error, d.finished_at";

/// A row of [`DEAD_LETTER_COLUMNS`].
pub(crate) type DeadLetterRow = (
    i64,
    String,
    String,
    String,
    Option<String>,
    i64,
    Option<String>,
    Option<i64>,
);

/// A dead letter from its row.
pub(crate) fn dead_letter(row: DeadLetterRow) -> DeadLetter {
    let (delivery, hook, event_id, event_type, subject, attempts, error, at) = row;
    DeadLetter {
        delivery,
        hook,
        event_id,
        event_type,
        subject,
        attempts: u32::try_from(attempts).unwrap_or(0),
        error,
        at: at.map(Timestamp::from_micros),
    }
}
