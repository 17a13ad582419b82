//! The outbox's rules as plain functions over plain data: from what a
//! transaction read (events, hooks, claimed rows, the lease row, outcomes)
//! to what it must write. Both engines execute these and decide nothing.

use std::time::Duration;

use super::{Claim, Outcome, Settlement, corrupt, parse_hook};
use crate::error::Result;
use crate::events::{Event, LatencyHistogram};
use crate::time::Timestamp;

/// What a fan-out writes for the events it read.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct FanOut {
    /// The deliveries to add: (hook name, outbox id), each due now.
    pub(crate) deliveries: Vec<(String, i64)>,
    /// The events now fanned out (outbox ids, oldest first).
    pub(crate) events: Vec<i64>,
}

/// The fan-out of `events` (outbox id, payload), oldest first, to `hooks`
/// (definition, first event): a delivery for each hook whose filter matches
/// the event and that existed when it was written. `None` when there is no event.
pub(crate) fn plan_fan_out(events: &[(i64, String)], hooks: &[(String, i64)]) -> Result<Option<FanOut>> {
    if events.is_empty() {
        return Ok(None);
    }
    let hooks = hooks
        .iter()
        .map(|(definition, first_event)| parse_hook(definition).map(|hook| (hook, *first_event)))
        .collect::<Result<Vec<_>>>()?;
    let mut deliveries = Vec::new();
    if !hooks.is_empty() {
        for (id, payload) in events {
            let event = Event::from_json(payload)?;
            for (hook, first_event) in &hooks {
                if id >= first_event && hook.filter.matches(&event) {
                    deliveries.push((hook.name.clone(), *id));
                }
            }
        }
    }
    Ok(Some(FanOut {
        deliveries,
        events: events.iter().map(|(id, _)| *id).collect(),
    }))
}

/// A delivery a claim took, as the claim's statement returns it: the
/// delivery, its hook, its attempts (this one counted) and the event's payload.
pub(crate) type ClaimedRow = (i64, String, i64, String);

/// The claims of the rows a claim took, in delivery order.
pub(crate) fn plan_claims(rows: Vec<ClaimedRow>) -> Result<Vec<Claim>> {
    let mut claims = rows
        .into_iter()
        .map(|(delivery, hook, attempts, payload)| {
            Ok(Claim {
                delivery,
                hook,
                attempt: u32::try_from(attempts).unwrap_or(u32::MAX),
                event: Event::from_json(&payload)?,
                payload,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    claims.sort_by_key(|claim| claim.delivery);
    Ok(claims)
}

/// What settling one delivery writes to its row (only while the settling
/// dispatcher still holds the claim).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub(crate) struct Settled {
    pub(crate) id: i64,
    /// `delivered`, `pending` (to retry) or `dead`.
    pub(crate) state: &'static str,
    /// When a retry is due; `None` keeps the row's.
    pub(crate) due_at: Option<i64>,
    /// The attempt's error, if it failed.
    pub(crate) error: Option<String>,
    /// When the delivery ended (delivered or dead); `None` while it is pending.
    pub(crate) finished_at: Option<i64>,
}

/// The rows `outcomes` write, settled at `now`.
pub(crate) fn plan_settle(outcomes: &[Outcome], now: Timestamp) -> Vec<Settled> {
    outcomes
        .iter()
        .map(|outcome| {
            let (state, due_at, error) = match &outcome.settlement {
                Settlement::Delivered => ("delivered", None, None),
                Settlement::Retry { at, error } => ("pending", Some(at.as_micros()), Some(error.clone())),
                Settlement::Dead { error } => ("dead", None, Some(error.clone())),
            };
            Settled {
                id: outcome.delivery,
                state,
                due_at,
                error,
                finished_at: (state != "pending").then(|| now.as_micros()),
            }
        })
        .collect()
}

/// What a batch of outcomes adds to one hook's counters.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct StatsUpdate {
    pub(crate) hook: String,
    pub(crate) executed: i64,
    pub(crate) failed: i64,
    pub(crate) micros: i64,
    /// The hook's whole histogram after the batch, as stored.
    pub(crate) histogram: String,
}

/// The counter updates for `outcomes`, given the hooks' stored histograms
/// (hooks removed meanwhile have none and are skipped).
pub(crate) fn plan_stats(stored: Vec<(String, String)>, outcomes: &[Outcome]) -> Result<Vec<StatsUpdate>> {
    let mut updates = Vec::with_capacity(stored.len());
    for (hook, histogram) in stored {
        let counts: Vec<u64> =
            serde_json::from_str(&histogram).map_err(|e| corrupt(&format!("histogram of hook {hook}: {e}")))?;
        let mut histogram = LatencyHistogram::from_counts(counts);
        let (mut executed, mut failed, mut micros) = (0, 0, 0);
        for outcome in outcomes.iter().filter(|o| o.hook == hook) {
            executed += 1;
            failed += i64::from(outcome.settlement != Settlement::Delivered);
            micros += i64::try_from(outcome.elapsed.as_micros()).unwrap_or(i64::MAX / 4);
            histogram.record(outcome.elapsed);
        }
        let histogram = serde_json::to_string(histogram.counts()).unwrap_or_else(|_| "[]".to_owned());
        updates.push(StatsUpdate {
            hook,
            executed,
            failed,
            micros,
            histogram,
        });
    }
    Ok(updates)
}

/// What taking the dispatcher lease writes.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct LeasePlan {
    /// Whether `owner` holds the lease now; nothing is written when not.
    pub(crate) granted: bool,
    /// When the lease runs out.
    pub(crate) expires_at: i64,
    /// A new holder releases the claims of earlier dispatchers, which are
    /// presumed dead (their lease ran out): each becomes due now.
    pub(crate) release_others: bool,
}

/// The lease for `owner` at `now`, given the lease row `held` (holder, expiry):
/// granted when nobody holds it, `owner` holds it, or the holder's ran out.
pub(crate) fn plan_lease(held: Option<(&str, i64)>, owner: &str, ttl: Duration, now: Timestamp) -> LeasePlan {
    let now = now.as_micros();
    let granted = held.is_none_or(|(holder, expires_at)| holder == owner || expires_at < now);
    LeasePlan {
        granted,
        expires_at: now.saturating_add(i64::try_from(ttl.as_micros()).unwrap_or(i64::MAX / 2)),
        release_others: granted && held.is_none_or(|(holder, _)| holder != owner),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{EventFilter, HookDefinition, HookSpec};

    fn event(id: &str, event_type: &str, key: &str) -> String {
        let mut event = Event::new(event_type, Some(key), serde_json::json!({}));
        event.id = id.to_owned();
        event.to_json()
    }

    fn hook(name: &str, types: &[&str]) -> String {
        let hook = HookDefinition {
            name: name.to_owned(),
            spec: HookSpec::Callback,
            filter: EventFilter {
                events: types.iter().map(|t| (*t).to_owned()).collect(),
                ..EventFilter::default()
            },
            synchronous: false,
            max_attempts: 3,
            created_at: Timestamp::from_micros(0),
            created_by: "test".to_owned(),
        };
        serde_json::to_string(&hook).unwrap()
    }

    #[test]
    fn fan_out_gives_each_hook_the_events_it_wants_from_its_first_event_on() {
        let events = [
            (1, event("a", "object.created", "x")),
            (2, event("b", "object.deleted", "x")),
            (3, event("c", "object.created", "y")),
        ];
        let hooks = [
            (hook("all", &[]), 1),
            (hook("created", &["object.created"]), 1),
            (hook("late", &[]), 3),
        ];
        let plan = plan_fan_out(&events, &hooks).unwrap().unwrap();
        let mut deliveries = plan.deliveries.clone();
        deliveries.sort();
        assert_eq!(
            deliveries,
            [
                ("all".into(), 1),
                ("all".into(), 2),
                ("all".into(), 3),
                ("created".into(), 1),
                ("created".into(), 3),
                ("late".into(), 3)
            ]
        );
        assert_eq!(plan.events, [1, 2, 3]);
        assert_eq!(plan_fan_out(&[], &hooks).unwrap(), None);
        // Without hooks the events are still marked fanned out.
        let plan = plan_fan_out(&events, &[]).unwrap().unwrap();
        assert!(plan.deliveries.is_empty());
        assert_eq!(plan.events, [1, 2, 3]);
    }

    #[test]
    fn claims_come_in_delivery_order_with_their_attempt() {
        let rows = vec![
            (7, "h".to_owned(), 2, event("b", "object.created", "k")),
            (3, "h".to_owned(), 1, event("a", "object.created", "k")),
        ];
        let claims = plan_claims(rows).unwrap();
        assert_eq!(
            claims.iter().map(|c| (c.delivery, c.attempt)).collect::<Vec<_>>(),
            [(3, 1), (7, 2)]
        );
        assert_eq!(claims[0].event.id, "a");
        assert!(plan_claims(vec![(1, "h".into(), 1, "not json".into())]).is_err());
    }

    #[test]
    fn settling_ends_delivered_and_dead_deliveries_and_reschedules_retries() {
        let now = Timestamp::from_micros(1_000);
        let outcome = |delivery, settlement| Outcome {
            delivery,
            hook: "h".into(),
            settlement,
            elapsed: Duration::from_millis(3),
        };
        let settled = plan_settle(
            &[
                outcome(1, Settlement::Delivered),
                outcome(
                    2,
                    Settlement::Retry {
                        at: Timestamp::from_micros(5_000),
                        error: "503".into(),
                    },
                ),
                outcome(3, Settlement::Dead { error: "gone".into() }),
            ],
            now,
        );
        assert_eq!(
            settled[0],
            Settled {
                id: 1,
                state: "delivered",
                due_at: None,
                error: None,
                finished_at: Some(1_000)
            }
        );
        assert_eq!(
            settled[1],
            Settled {
                id: 2,
                state: "pending",
                due_at: Some(5_000),
                error: Some("503".into()),
                finished_at: None
            }
        );
        assert_eq!(
            settled[2],
            Settled {
                id: 3,
                state: "dead",
                due_at: None,
                error: Some("gone".into()),
                finished_at: Some(1_000)
            }
        );
        let stats = plan_stats(
            vec![("h".into(), "[]".into())],
            &[
                outcome(1, Settlement::Delivered),
                outcome(3, Settlement::Dead { error: "x".into() }),
            ],
        )
        .unwrap();
        assert_eq!((stats[0].executed, stats[0].failed, stats[0].micros), (2, 1, 6_000));
        assert!(plan_stats(vec![("h".into(), "oops".into())], &[]).is_err());
    }

    #[test]
    fn the_lease_goes_to_a_new_owner_only_when_the_old_one_ran_out() {
        let now = Timestamp::from_micros(1_000_000);
        let ttl = Duration::from_secs(30);
        let free = plan_lease(None, "me", ttl, now);
        assert_eq!(
            free,
            LeasePlan {
                granted: true,
                expires_at: 31_000_000,
                release_others: true
            }
        );
        let renewed = plan_lease(Some(("me", 1_500_000)), "me", ttl, now);
        assert!(renewed.granted && !renewed.release_others);
        let taken = plan_lease(Some(("other", 1_500_000)), "me", ttl, now);
        assert!(!taken.granted && !taken.release_others);
        let expired = plan_lease(Some(("other", 999_999)), "me", ttl, now);
        assert!(expired.granted && expired.release_others);
    }
}
