//! The outbox checks: hooks, deliveries, claims and settlements on any catalog.

use super::{Context, Outcome};
use crate::catalog::Catalog;
use crate::error::ErrorKind;
use crate::time::Timestamp;
use crate::version::VersionId;

/// The outbox: a hook gets the events written after it that its filter
/// passes; concurrent claims never take the same delivery; settlements move
/// deliveries to delivered, later retry or dead, with the hook's counters;
/// replay makes dead deliveries due again; removal takes the hook's rows.
pub async fn catalog_outbox(catalog: &dyn Catalog) -> Outcome {
    use crate::catalog::{ClaimRequest, ClaimScope, Outcome as Attempt, Settlement};
    use crate::events::{Event, EventFilter, HookDefinition, HookSpec};
    let name = format!("conformance-{}", VersionId::generate());
    let event_type = format!("conformance.{}", VersionId::generate());
    let before = Event::new(&event_type, None, serde_json::json!({ "n": 0 }));
    catalog
        .append_events(std::slice::from_ref(&before))
        .await
        .ctx("append an early event")?;
    let hook = HookDefinition {
        name: name.clone(),
        spec: HookSpec::Callback,
        filter: EventFilter {
            events: vec![event_type.clone()],
            ..EventFilter::default()
        },
        synchronous: false,
        max_attempts: 3,
        created_at: Timestamp::now(),
        created_by: "conformance".into(),
    };
    catalog.save_hook(&hook, false).await.ctx("save_hook")?;
    let again = catalog.save_hook(&hook, false).await;
    check!(
        again.as_ref().is_err_and(|e| e.kind() == ErrorKind::Conflict),
        "a second hook of the same name: {again:?}"
    );
    let wanted: Vec<Event> = (1..=3)
        .map(|n| Event::new(&event_type, Some("cat/outbox"), serde_json::json!({ "n": n })))
        .collect();
    let other = Event::new("conformance.other", None, serde_json::json!({}));
    let mut written = wanted.clone();
    written.push(other);
    catalog.append_events(&written).await.ctx("append events")?;
    while catalog.fan_out(1000).await.ctx("fan_out")? > 0 {}

    let request = |owner: &str| ClaimRequest {
        owner: owner.to_owned(),
        hooks: vec![name.clone()],
        limit: 2,
        until: Timestamp::from_micros(Timestamp::now().as_micros() + 60_000_000),
        scope: ClaimScope::All,
    };
    let (request_a, request_b) = (request("a"), request("b"));
    let (a, b) = futures::join!(catalog.claim(&request_a), catalog.claim(&request_b));
    let (a, b) = (a.ctx("claim a")?, b.ctx("claim b")?);
    let mut ids: Vec<&str> = a.iter().chain(&b).map(|c| c.event.id.as_str()).collect();
    ids.sort_unstable();
    let mut expected: Vec<&str> = wanted.iter().map(|e| e.id.as_str()).collect();
    expected.sort_unstable();
    check!(ids == expected, "claims took {ids:?}, not each of {expected:?} once");
    check!(
        a.iter()
            .chain(&b)
            .all(|c| c.attempt == 1 && c.payload == c.event.to_json()),
        "claims are first attempts carrying the stored document"
    );
    let (first, rest) = if a.len() == 2 { (&a, &b) } else { (&b, &a) };
    let first_owner = if a.len() == 2 { "a" } else { "b" };
    let rest_owner = if a.len() == 2 { "b" } else { "a" };
    let attempt = |claim: &crate::catalog::Claim, settlement: Settlement| Attempt {
        delivery: claim.delivery,
        hook: claim.hook.clone(),
        settlement,
        elapsed: std::time::Duration::from_millis(2),
    };
    let later = Timestamp::from_micros(Timestamp::now().as_micros() + 3_600_000_000);
    let outcomes = [
        attempt(&first[0], Settlement::Delivered),
        attempt(&first[1], Settlement::Dead { error: "gone".into() }),
    ];
    catalog.settle(first_owner, &outcomes).await.ctx("settle")?;
    let retry = [attempt(
        &rest[0],
        Settlement::Retry {
            at: later,
            error: "busy".into(),
        },
    )];
    catalog.settle(rest_owner, &retry).await.ctx("settle a retry")?;
    let due = catalog.claim(&request("c")).await.ctx("claim again")?;
    check!(due.is_empty(), "nothing is due (a retry in an hour), got {}", due.len());

    let counters = catalog.outbox_counters().await.ctx("outbox_counters")?;
    let mine = counters.hooks.iter().find(|h| h.hook == name);
    let shape = mine.map(|h| (h.executed, h.failed, h.delivered, h.dead, h.pending));
    check!(shape == Some((3, 2, 1, 1, 1)), "hook counters {shape:?}");
    check!(counters.events_waiting == 0, "every event fanned out");
    let dead = catalog.dead_letters(Some(&name), 10).await.ctx("dead_letters")?;
    check!(
        dead.len() == 1 && dead[0].event_id == first[1].event.id && dead[0].error.as_deref() == Some("gone"),
        "dead letters {dead:?}"
    );
    check!(catalog.replay(Some(&name)).await.ctx("replay")? == 1, "one replayed");
    let replayed = catalog.claim(&request("c")).await.ctx("claim the replayed")?;
    check!(
        replayed.len() == 1 && replayed[0].event.id == first[1].event.id && replayed[0].attempt == 1,
        "the replayed delivery is due again from its first attempt"
    );
    check!(
        catalog.remove_hook(&name, "conformance").await.ctx("remove_hook")?,
        "hook removed"
    );
    check!(
        !catalog.remove_hook(&name, "conformance").await.ctx("remove again")?,
        "no second removal"
    );
    let counters = catalog.outbox_counters().await.ctx("outbox_counters after removal")?;
    check!(
        !counters.hooks.iter().any(|h| h.hook == name),
        "removed hook still counted"
    );
    Ok(())
}
