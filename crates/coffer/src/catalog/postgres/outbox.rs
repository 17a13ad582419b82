//! The outbox on PostgreSQL: dispatchers in any number of processes share
//! the deliveries through row locks (`FOR UPDATE SKIP LOCKED`).

use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::PgConnection;

use super::changes::insert_audit;
use super::{ATTEMPTS, PostgresCatalog, begin, db_error, finish};
use crate::catalog::outbox::{
    Claim, ClaimRequest, ClaimScope, ClaimedRow, DeadLetter, Outbox, OutboxCounters, Outcome, plan_claims, plan_settle,
    plan_stats,
};
use crate::catalog::sql::Conn;
use crate::catalog::writes::{self, EVENTS_PURGE_BATCH};
use crate::catalog::{plan, reads};
use crate::error::{Error, Result};
use crate::events::{Event, HookDefinition};
use crate::time::Timestamp;

/// Events as the columns of the outbox, for `unnest`.
pub(super) struct EventColumns<'a> {
    pub(super) ids: Vec<&'a str>,
    pub(super) types: Vec<&'a str>,
    pub(super) keys: Vec<Option<&'a str>>,
    pub(super) times: Vec<i64>,
    pub(super) payloads: Vec<String>,
}

impl<'a> EventColumns<'a> {
    pub(super) fn of(events: &'a [Event]) -> Self {
        EventColumns {
            ids: events.iter().map(|e| e.id.as_str()).collect(),
            types: events.iter().map(|e| e.event_type.as_str()).collect(),
            keys: events.iter().map(|e| e.subject.as_deref()).collect(),
            times: events.iter().map(|e| e.time.as_micros()).collect(),
            payloads: events.iter().map(Event::to_json).collect(),
        }
    }
}

/// Write `events` into the outbox (inside the caller's transaction).
pub(super) async fn insert_events(conn: &mut PgConnection, events: &[Event]) -> Result<()> {
    if events.is_empty() {
        return Ok(());
    }
    let columns = EventColumns::of(events);
    sqlx::query(
        "INSERT INTO outbox (event_id, type, key, at, payload) \
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::text[])",
    )
    .bind(columns.ids)
    .bind(columns.types)
    .bind(columns.keys)
    .bind(columns.times)
    .bind(columns.payloads)
    .execute(&mut *conn)
    .await
    .map(|_| ())
    .map_err(|e| db_error("writing events to the outbox", e))
}

async fn save_hook(conn: &mut PgConnection, hook: &HookDefinition, replace: bool) -> Result<()> {
    let definition =
        serde_json::to_string(hook).map_err(|e| Error::invalid_input(format!("hook cannot be encoded: {e}")))?;
    let existed: Option<bool> = sqlx::query_scalar(
        "WITH old AS (SELECT name FROM hooks WHERE name = $1 FOR UPDATE), \
         saved AS (INSERT INTO hooks (name, definition, first_event) \
                   SELECT $1, $2, (SELECT COALESCE(MAX(id), 0) + 1 FROM outbox) WHERE $3 OR NOT EXISTS (SELECT 1 FROM old) \
                   ON CONFLICT (name) DO UPDATE SET definition = excluded.definition RETURNING name) \
         SELECT EXISTS (SELECT 1 FROM old) FROM saved",
    )
    .bind(&hook.name)
    .bind(definition)
    .bind(replace)
    .fetch_optional(&mut *conn)
    .await
    .map_err(|e| match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            Error::conflict(format!("hook {} already exists", hook.name))
        }
        _ => db_error("saving the hook", e),
    })?;
    let Some(replaced) = existed else {
        return Err(Error::conflict(format!("hook {} already exists", hook.name)));
    };
    sqlx::query("INSERT INTO hook_stats (hook) VALUES ($1) ON CONFLICT (hook) DO NOTHING")
        .bind(&hook.name)
        .execute(&mut *conn)
        .await
        .map_err(|e| db_error("saving the hook", e))?;
    insert_audit(conn, &plan::hook_added(hook, replaced, Timestamp::now())).await
}

async fn remove_hook(conn: &mut PgConnection, name: &str, actor: &str) -> Result<bool> {
    let removed = sqlx::query("DELETE FROM hooks WHERE name = $1")
        .bind(name)
        .execute(&mut *conn)
        .await
        .map_err(|e| db_error("removing the hook", e))?
        .rows_affected();
    if removed == 0 {
        return Ok(false);
    }
    // Deliveries go with the hook (ON DELETE CASCADE); its counters go here.
    sqlx::query("DELETE FROM hook_stats WHERE hook = $1")
        .bind(name)
        .execute(&mut *conn)
        .await
        .map_err(|e| db_error("removing the hook", e))?;
    insert_audit(conn, &plan::hook_removed(name, actor, Timestamp::now())).await?;
    Ok(true)
}

async fn fan_out(conn: &mut PgConnection, limit: usize) -> Result<u64> {
    let Some(plan) = writes::read_fan_out(Conn::from(&mut *conn), limit).await? else {
        return Ok(0);
    };
    let (names, event_ids): (Vec<String>, Vec<i64>) = plan.deliveries.into_iter().unzip();
    sqlx::query(
        "WITH added AS (INSERT INTO hook_deliveries (hook, event, due_at) \
           SELECT h, e, $3 FROM unnest($1::text[], $2::bigint[]) AS d(h, e) ON CONFLICT (hook, event) DO NOTHING), \
         marked AS (UPDATE outbox SET fanned_out = TRUE WHERE id = ANY($4) RETURNING id) \
         UPDATE outbox_counters SET value = value + (SELECT COUNT(*) FROM marked) WHERE name = 'events_fanned_out'",
    )
    .bind(names)
    .bind(event_ids)
    .bind(Timestamp::now().as_micros())
    .bind(&plan.events)
    .execute(&mut *conn)
    .await
    .map_err(|e| db_error("adding deliveries", e))?;
    Ok(plan.events.len() as u64)
}

async fn claim(conn: &mut PgConnection, request: &ClaimRequest) -> Result<Vec<Claim>> {
    let scope = match &request.scope {
        ClaimScope::All => "",
        ClaimScope::Key(_) => "AND d.event IN (SELECT id FROM outbox WHERE key = $6)",
        ClaimScope::Events(_) => "AND d.event IN (SELECT id FROM outbox WHERE event_id = ANY($7))",
    };
    let sql = format!(
        "WITH c AS (SELECT d.id FROM hook_deliveries d WHERE d.state = 'pending' AND d.due_at <= $3 \
                    AND d.hook = ANY($4) {scope} ORDER BY d.due_at, d.id LIMIT $5 FOR UPDATE SKIP LOCKED) \
         UPDATE hook_deliveries d SET claimed_by = $1, due_at = $2, attempts = d.attempts + 1 FROM c \
         WHERE d.id = c.id \
         RETURNING d.id, d.hook, d.attempts::bigint, (SELECT payload FROM outbox o WHERE o.id = d.event)"
    );
    let (key, event_ids) = match &request.scope {
        ClaimScope::All => (None, Vec::new()),
        ClaimScope::Key(key) => (Some(key.as_str()), Vec::new()),
        ClaimScope::Events(ids) => (None, ids.iter().map(String::as_str).collect()),
    };
    let rows: Vec<ClaimedRow> = sqlx::query_as(&sql)
        .bind(&request.owner)
        .bind(request.until.as_micros())
        .bind(Timestamp::now().as_micros())
        .bind(&request.hooks)
        .bind(i64::try_from(request.limit).unwrap_or(i64::MAX))
        .bind(key)
        .bind(event_ids)
        .fetch_all(&mut *conn)
        .await
        .map_err(|e| db_error("claiming deliveries", e))?;
    plan_claims(rows)
}

async fn settle(conn: &mut PgConnection, owner: &str, outcomes: &[Outcome]) -> Result<()> {
    let settled = plan_settle(outcomes, Timestamp::now());
    let ids: Vec<i64> = settled.iter().map(|s| s.id).collect();
    let states: Vec<&str> = settled.iter().map(|s| s.state).collect();
    let due: Vec<Option<i64>> = settled.iter().map(|s| s.due_at).collect();
    let errors: Vec<Option<&str>> = settled.iter().map(|s| s.error.as_deref()).collect();
    let finished: Vec<Option<i64>> = settled.iter().map(|s| s.finished_at).collect();
    sqlx::query(
        "UPDATE hook_deliveries d SET state = j.state, due_at = COALESCE(j.due_at, d.due_at), claimed_by = NULL, \
         last_error = j.error, finished_at = j.finished_at \
         FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::text[], $5::bigint[]) \
           AS j(id, state, due_at, error, finished_at) \
         WHERE d.id = j.id AND d.claimed_by = $6",
    )
    .bind(ids)
    .bind(states)
    .bind(due)
    .bind(errors)
    .bind(finished)
    .bind(owner)
    .execute(&mut *conn)
    .await
    .map_err(|e| db_error("recording deliveries", e))?;
    let mut hooks: Vec<&str> = outcomes.iter().map(|o| o.hook.as_str()).collect();
    hooks.sort_unstable();
    hooks.dedup();
    // Locked in name order, so dispatchers settling the same hooks never deadlock.
    let stored: Vec<(String, String)> =
        sqlx::query_as("SELECT hook, histogram FROM hook_stats WHERE hook = ANY($1) ORDER BY hook FOR UPDATE")
            .bind(hooks)
            .fetch_all(&mut *conn)
            .await
            .map_err(|e| db_error("reading hook counters", e))?;
    writes::add_hook_stats(Conn::from(&mut *conn), plan_stats(stored, outcomes)?).await
}

#[async_trait]
impl Outbox for PostgresCatalog {
    async fn append_events(&self, events: &[Event]) -> Result<()> {
        in_transaction!(self, None, |conn| insert_events(conn, events))
    }

    async fn save_hook(&self, hook: &HookDefinition, replace: bool) -> Result<()> {
        hook.validate()?;
        in_transaction!(self, None, |conn| save_hook(conn, hook, replace))
    }

    async fn remove_hook(&self, name: &str, actor: &str) -> Result<bool> {
        in_transaction!(self, None, |conn| remove_hook(conn, name, actor))
    }

    async fn hooks(&self) -> Result<Vec<HookDefinition>> {
        reads::hooks(self.reader().await?).await
    }

    async fn fan_out(&self, limit: usize) -> Result<usize> {
        let count = in_transaction!(self, None, |conn| fan_out(conn, limit))?;
        Ok(usize::try_from(count).unwrap_or(usize::MAX))
    }

    async fn claim(&self, request: &ClaimRequest) -> Result<Vec<Claim>> {
        in_transaction!(self, None, |conn| claim(conn, request))
    }

    async fn settle(&self, owner: &str, outcomes: &[Outcome]) -> Result<()> {
        if outcomes.is_empty() {
            return Ok(());
        }
        in_transaction!(self, None, |conn| settle(conn, owner, outcomes))
    }

    async fn replay(&self, hook: Option<&str>) -> Result<u64> {
        sqlx::query(
            "UPDATE hook_deliveries SET state = 'pending', attempts = 0, due_at = $1, claimed_by = NULL, \
             finished_at = NULL WHERE state = 'dead' AND ($2::text IS NULL OR hook = $2)",
        )
        .bind(Timestamp::now().as_micros())
        .bind(hook)
        .execute(&self.pool)
        .await
        .map(|done| done.rows_affected())
        .map_err(|e| db_error("replaying dead deliveries", e))
    }

    async fn dead_letters(&self, hook: Option<&str>, limit: usize) -> Result<Vec<DeadLetter>> {
        reads::dead_letters(self.reader().await?, hook, limit).await
    }

    async fn outbox_counters(&self) -> Result<OutboxCounters> {
        reads::counters(self.reader().await?).await
    }

    /// Dispatchers on PostgreSQL need no lease: claims lock rows.
    async fn acquire_lease(&self, _owner: &str, _ttl: Duration) -> Result<bool> {
        Ok(true)
    }

    async fn release_lease(&self, _owner: &str) -> Result<()> {
        Ok(())
    }

    async fn purge_events(&self, before: Timestamp) -> Result<u64> {
        let mut total = 0;
        loop {
            let removed = in_transaction!(self, None, |conn| writes::delete_events_batch(Conn::from(conn), before))?;
            total += removed;
            if removed < EVENTS_PURGE_BATCH {
                return Ok(total);
            }
        }
    }
}
