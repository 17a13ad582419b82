//! The outbox on SQLite: events, hooks and deliveries, changed through the
//! catalog's one writer (so a claim is atomic), plus the dispatcher lease.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::SqliteConnection;

use super::changes::{INSERT_AUDIT, audit_params};
use super::writer::{Refused, WriteOp, WriteOutcome, wrong_answer};
use super::{SqliteCatalog, db_error};
use crate::catalog::outbox::{
    Claim, ClaimRequest, ClaimScope, ClaimedRow, DeadLetter, Outbox, OutboxCounters, Outcome, plan_claims, plan_lease,
    plan_settle, plan_stats,
};
use crate::catalog::rows::{bind_params, to_i64};
use crate::catalog::sql::Conn;
use crate::catalog::writes::{self, EVENTS_PURGE_BATCH};
use crate::catalog::{plan, reads};
use crate::error::{Error, Result};
use crate::events::{Event, HookDefinition};
use crate::time::Timestamp;

/// Events per insert statement (five parameters each, well under SQLite's limit).
const EVENTS_PER_INSERT: usize = 500;
/// Deliveries per insert statement.
const DELIVERIES_PER_INSERT: usize = 1000;

/// Changes to the outbox, run by the writer.
pub(super) enum OutboxOp {
    Append(Vec<Event>),
    SaveHook { hook: Box<HookDefinition>, replace: bool },
    RemoveHook { name: String, actor: String },
    FanOut { limit: usize },
    Claim(ClaimRequest),
    Settle { owner: String, outcomes: Vec<Outcome> },
    Replay { hook: Option<String> },
    Lease { owner: String, ttl: Duration },
    ReleaseLease { owner: String },
    Purge { before: Timestamp },
}

pub(super) enum OutboxReply {
    Done,
    Count(u64),
    Claims(Vec<Claim>),
    Granted(bool),
}

/// The statement that writes `count` events (`count` > 0) into the outbox;
/// [`bind_events`] binds them.
pub(super) fn insert_events_sql(count: usize) -> String {
    let rows = vec!["(?, ?, ?, ?, ?)"; count].join(", ");
    format!("INSERT INTO outbox (event_id, type, key, at, payload) VALUES {rows};")
}

/// Bind the events of [`insert_events_sql`].
pub(super) fn bind_events<'q>(
    mut query: sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>>,
    events: &'q [Event],
) -> sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>> {
    for event in events {
        query = query
            .bind(&event.id)
            .bind(&event.event_type)
            .bind(&event.subject)
            .bind(event.time.as_micros())
            .bind(event.to_json());
    }
    query
}

/// Write `events` into the outbox (inside the caller's transaction).
pub(super) async fn insert_events(conn: &mut SqliteConnection, events: &[Event]) -> Result<()> {
    for chunk in events.chunks(EVENTS_PER_INSERT) {
        let sql = insert_events_sql(chunk.len());
        bind_events(sqlx::query(&sql), chunk)
            .execute(&mut *conn)
            .await
            .map_err(|e| db_error("writing events to the outbox", e))?;
    }
    Ok(())
}

pub(super) async fn apply(conn: &mut SqliteConnection, op: &OutboxOp) -> Result<OutboxReply, Refused> {
    let dirty = Refused::Dirty;
    match op {
        OutboxOp::Append(events) => insert_events(conn, events)
            .await
            .map(|()| OutboxReply::Done)
            .map_err(dirty),
        OutboxOp::SaveHook { hook, replace } => save_hook(conn, hook, *replace).await.map(|()| OutboxReply::Done),
        OutboxOp::RemoveHook { name, actor } => remove_hook(conn, name, actor).await.map(OutboxReply::Count),
        OutboxOp::FanOut { limit } => fan_out(conn, *limit).await.map(OutboxReply::Count).map_err(dirty),
        OutboxOp::Claim(request) => claim(conn, request).await.map(OutboxReply::Claims).map_err(dirty),
        OutboxOp::Settle { owner, outcomes } => settle(conn, owner, outcomes)
            .await
            .map(|()| OutboxReply::Done)
            .map_err(dirty),
        OutboxOp::Replay { hook } => sqlx::query(
            "UPDATE hook_deliveries SET state = 'pending', attempts = 0, due_at = ?, claimed_by = NULL, \
             finished_at = NULL WHERE state = 'dead' AND (? IS NULL OR hook = ?)",
        )
        .bind(Timestamp::now().as_micros())
        .bind(hook)
        .bind(hook)
        .execute(&mut *conn)
        .await
        .map(|done| OutboxReply::Count(done.rows_affected()))
        .map_err(|e| dirty(db_error("replaying dead deliveries", e))),
        OutboxOp::Lease { owner, ttl } => lease(conn, owner, *ttl).await.map(OutboxReply::Granted).map_err(dirty),
        OutboxOp::ReleaseLease { owner } => sqlx::query("DELETE FROM dispatcher_lease WHERE owner = ?")
            .bind(owner)
            .execute(&mut *conn)
            .await
            .map(|_| OutboxReply::Done)
            .map_err(|e| dirty(db_error("releasing the dispatcher lease", e))),
        OutboxOp::Purge { before } => writes::delete_events_batch(Conn::from(&mut *conn), *before)
            .await
            .map(OutboxReply::Count)
            .map_err(dirty),
    }
}

async fn save_hook(conn: &mut SqliteConnection, hook: &HookDefinition, replace: bool) -> Result<(), Refused> {
    let definition = serde_json::to_string(hook)
        .map_err(|e| Refused::Clean(Error::invalid_input(format!("hook cannot be encoded: {e}"))))?;
    let exists: Option<i64> = sqlx::query_scalar("SELECT 1 FROM hooks WHERE name = ?")
        .bind(&hook.name)
        .fetch_optional(&mut *conn)
        .await
        .map_err(|e| Refused::Clean(db_error("reading hooks", e)))?;
    if exists.is_some() && !replace {
        return Err(Refused::Clean(Error::conflict(format!(
            "hook {} already exists",
            hook.name
        ))));
    }
    let sql = format!(
        "INSERT INTO hooks (name, definition, first_event) \
         VALUES (?, ?, (SELECT COALESCE(MAX(id), 0) + 1 FROM outbox)) \
         ON CONFLICT (name) DO UPDATE SET definition = excluded.definition; \
         INSERT INTO hook_stats (hook) VALUES (?) ON CONFLICT (hook) DO NOTHING; {INSERT_AUDIT}"
    );
    let audit = plan::hook_added(hook, exists.is_some(), Timestamp::now());
    let query = sqlx::query(&sql).bind(&hook.name).bind(definition).bind(&hook.name);
    bind_params!(query, audit_params(&audit))
        .execute(&mut *conn)
        .await
        .map(|_| ())
        .map_err(|e| Refused::Dirty(db_error("saving the hook", e)))
}

async fn remove_hook(conn: &mut SqliteConnection, name: &str, actor: &str) -> Result<u64, Refused> {
    let removed = sqlx::query(
        "DELETE FROM hook_deliveries WHERE hook = ?; DELETE FROM hook_stats WHERE hook = ?; \
         DELETE FROM hooks WHERE name = ?;",
    )
    .bind(name)
    .bind(name)
    .bind(name)
    .execute(&mut *conn)
    .await
    .map_err(|e| Refused::Dirty(db_error("removing the hook", e)))?;
    // Deliveries and counters exist only with their hook: anything removed means the hook was there.
    let gone = u64::from(removed.rows_affected() > 0);
    if gone == 1 {
        let audit = plan::hook_removed(name, actor, Timestamp::now());
        bind_params!(sqlx::query(INSERT_AUDIT), audit_params(&audit))
            .execute(&mut *conn)
            .await
            .map_err(|e| Refused::Dirty(db_error("auditing the hook's removal", e)))?;
    }
    Ok(gone)
}

async fn fan_out(conn: &mut SqliteConnection, limit: usize) -> Result<u64> {
    let Some(plan) = writes::read_fan_out(Conn::from(&mut *conn), limit).await? else {
        return Ok(0);
    };
    let now = Timestamp::now().as_micros();
    for chunk in plan.deliveries.chunks(DELIVERIES_PER_INSERT) {
        let rows = vec!["(?, ?, ?)"; chunk.len()].join(", ");
        let sql = format!(
            "INSERT INTO hook_deliveries (hook, event, due_at) VALUES {rows} ON CONFLICT (hook, event) DO NOTHING"
        );
        let mut query = sqlx::query(&sql);
        for (hook, event) in chunk {
            query = query.bind(hook).bind(event).bind(now);
        }
        query
            .execute(&mut *conn)
            .await
            .map_err(|e| db_error("adding deliveries", e))?;
    }
    sqlx::query(
        "UPDATE outbox SET fanned_out = TRUE WHERE NOT fanned_out AND id <= ?; \
         UPDATE outbox_counters SET value = value + ? WHERE name = 'events_fanned_out';",
    )
    // One writer: nothing older than the events read can be waiting.
    .bind(plan.events.last())
    .bind(to_i64(plan.events.len() as u64))
    .execute(&mut *conn)
    .await
    .map_err(|e| db_error("marking events fanned out", e))?;
    Ok(plan.events.len() as u64)
}

async fn claim(conn: &mut SqliteConnection, request: &ClaimRequest) -> Result<Vec<Claim>> {
    let hooks = serde_json::to_string(&request.hooks).unwrap_or_default();
    let (scope_sql, scope_value) = match &request.scope {
        ClaimScope::All => ("", None),
        ClaimScope::Key(key) => (
            "AND d.event IN (SELECT id FROM outbox WHERE key = ?)",
            Some(key.clone()),
        ),
        ClaimScope::Events(ids) => (
            "AND d.event IN (SELECT id FROM outbox WHERE event_id IN (SELECT value FROM json_each(?)))",
            Some(serde_json::to_string(ids).unwrap_or_default()),
        ),
    };
    // SQLite's RETURNING cannot run a subquery: the payloads are read after.
    let sql = format!(
        "UPDATE hook_deliveries SET claimed_by = ?, due_at = ?, attempts = attempts + 1 \
         WHERE id IN (SELECT d.id FROM hook_deliveries d WHERE d.state = 'pending' AND d.due_at <= ? \
         AND d.hook IN (SELECT value FROM json_each(?)) {scope_sql} ORDER BY d.due_at, d.id LIMIT ?) \
         RETURNING id, hook, attempts, event"
    );
    let mut query = sqlx::query_as(&sql)
        .bind(&request.owner)
        .bind(request.until.as_micros())
        .bind(Timestamp::now().as_micros())
        .bind(hooks);
    if let Some(value) = scope_value {
        query = query.bind(value);
    }
    let claimed: Vec<(i64, String, i64, i64)> = query
        .bind(i64::try_from(request.limit).unwrap_or(i64::MAX))
        .fetch_all(&mut *conn)
        .await
        .map_err(|e| db_error("claiming deliveries", e))?;
    if claimed.is_empty() {
        return Ok(Vec::new());
    }
    let event_ids: Vec<i64> = claimed.iter().map(|row| row.3).collect();
    let payloads: BTreeMap<i64, String> = sqlx::query_as::<_, (i64, String)>(
        "SELECT id, payload FROM outbox WHERE id IN (SELECT value FROM json_each(?))",
    )
    .bind(serde_json::to_string(&event_ids).unwrap_or_default())
    .fetch_all(&mut *conn)
    .await
    .map_err(|e| db_error("reading claimed events", e))?
    .into_iter()
    .collect();
    let rows = claimed
        .into_iter()
        .map(|(delivery, hook, attempts, event)| {
            let payload = payloads.get(&event).cloned().ok_or_else(wrong_answer)?;
            Ok((delivery, hook, attempts, payload))
        })
        .collect::<Result<Vec<ClaimedRow>>>()?;
    plan_claims(rows)
}

async fn settle(conn: &mut SqliteConnection, owner: &str, outcomes: &[Outcome]) -> Result<()> {
    let settled = serde_json::to_string(&plan_settle(outcomes, Timestamp::now())).unwrap_or_default();
    sqlx::query(
        "UPDATE hook_deliveries SET state = j.state, due_at = COALESCE(j.due_at, hook_deliveries.due_at), \
         claimed_by = NULL, last_error = j.error, finished_at = j.finished_at \
         FROM (SELECT value ->> '$.id' AS id, value ->> '$.state' AS state, value ->> '$.due_at' AS due_at, \
               value ->> '$.error' AS error, value ->> '$.finished_at' AS finished_at FROM json_each(?)) AS j \
         WHERE hook_deliveries.id = j.id AND hook_deliveries.claimed_by = ?",
    )
    .bind(settled)
    .bind(owner)
    .execute(&mut *conn)
    .await
    .map_err(|e| db_error("recording deliveries", e))?;
    let hooks: Vec<&str> = outcomes.iter().map(|o| o.hook.as_str()).collect();
    let stored: Vec<(String, String)> =
        sqlx::query_as("SELECT hook, histogram FROM hook_stats WHERE hook IN (SELECT value FROM json_each(?))")
            .bind(serde_json::to_string(&hooks).unwrap_or_default())
            .fetch_all(&mut *conn)
            .await
            .map_err(|e| db_error("reading hook counters", e))?;
    writes::add_hook_stats(Conn::from(&mut *conn), plan_stats(stored, outcomes)?).await
}

/// Take or renew the lease (see [`plan_lease`]).
async fn lease(conn: &mut SqliteConnection, owner: &str, ttl: Duration) -> Result<bool> {
    let now = Timestamp::now();
    let held: Option<(String, i64)> =
        sqlx::query_as("SELECT owner, expires_at FROM dispatcher_lease WHERE name = 'dispatcher'")
            .fetch_optional(&mut *conn)
            .await
            .map_err(|e| db_error("reading the dispatcher lease", e))?;
    let plan = plan_lease(
        held.as_ref().map(|(holder, at)| (holder.as_str(), *at)),
        owner,
        ttl,
        now,
    );
    if !plan.granted {
        return Ok(false);
    }
    sqlx::query(
        "INSERT INTO dispatcher_lease (name, owner, expires_at) VALUES ('dispatcher', ?, ?) \
         ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at",
    )
    .bind(owner)
    .bind(plan.expires_at)
    .execute(&mut *conn)
    .await
    .map_err(|e| db_error("taking the dispatcher lease", e))?;
    if plan.release_others {
        sqlx::query(
            "UPDATE hook_deliveries SET claimed_by = NULL, due_at = ? \
             WHERE state = 'pending' AND claimed_by IS NOT NULL AND claimed_by <> ?",
        )
        .bind(now.as_micros())
        .bind(owner)
        .execute(&mut *conn)
        .await
        .map_err(|e| db_error("releasing a dead dispatcher's claims", e))?;
    }
    Ok(true)
}

impl SqliteCatalog {
    async fn outbox_write(&self, op: OutboxOp) -> Result<OutboxReply> {
        match self.write(WriteOp::Outbox(Box::new(op))).await? {
            WriteOutcome::Outbox(reply) => Ok(reply),
            _ => Err(wrong_answer()),
        }
    }

    async fn outbox_count(&self, op: OutboxOp) -> Result<u64> {
        match self.outbox_write(op).await? {
            OutboxReply::Count(count) => Ok(count),
            _ => Err(wrong_answer()),
        }
    }
}

#[async_trait]
impl Outbox for SqliteCatalog {
    async fn append_events(&self, events: &[Event]) -> Result<()> {
        self.outbox_write(OutboxOp::Append(events.to_vec())).await.map(|_| ())
    }

    async fn save_hook(&self, hook: &HookDefinition, replace: bool) -> Result<()> {
        hook.validate()?;
        let op = OutboxOp::SaveHook {
            hook: Box::new(hook.clone()),
            replace,
        };
        self.outbox_write(op).await.map(|_| ())
    }

    async fn remove_hook(&self, name: &str, actor: &str) -> Result<bool> {
        let op = OutboxOp::RemoveHook {
            name: name.to_owned(),
            actor: actor.to_owned(),
        };
        Ok(self.outbox_count(op).await? > 0)
    }

    async fn hooks(&self) -> Result<Vec<HookDefinition>> {
        reads::hooks(self.reader().await?).await
    }

    async fn fan_out(&self, limit: usize) -> Result<usize> {
        let count = self.outbox_count(OutboxOp::FanOut { limit }).await?;
        Ok(usize::try_from(count).unwrap_or(usize::MAX))
    }

    async fn claim(&self, request: &ClaimRequest) -> Result<Vec<Claim>> {
        match self.outbox_write(OutboxOp::Claim(request.clone())).await? {
            OutboxReply::Claims(claims) => Ok(claims),
            _ => Err(wrong_answer()),
        }
    }

    async fn settle(&self, owner: &str, outcomes: &[Outcome]) -> Result<()> {
        if outcomes.is_empty() {
            return Ok(());
        }
        let op = OutboxOp::Settle {
            owner: owner.to_owned(),
            outcomes: outcomes.to_vec(),
        };
        self.outbox_write(op).await.map(|_| ())
    }

    async fn replay(&self, hook: Option<&str>) -> Result<u64> {
        self.outbox_count(OutboxOp::Replay {
            hook: hook.map(str::to_owned),
        })
        .await
    }

    async fn dead_letters(&self, hook: Option<&str>, limit: usize) -> Result<Vec<DeadLetter>> {
        reads::dead_letters(self.reader().await?, hook, limit).await
    }

    async fn outbox_counters(&self) -> Result<OutboxCounters> {
        reads::counters(self.reader().await?).await
    }

    async fn acquire_lease(&self, owner: &str, ttl: Duration) -> Result<bool> {
        let op = OutboxOp::Lease {
            owner: owner.to_owned(),
            ttl,
        };
        match self.outbox_write(op).await? {
            OutboxReply::Granted(granted) => Ok(granted),
            _ => Err(wrong_answer()),
        }
    }

    async fn release_lease(&self, owner: &str) -> Result<()> {
        let op = OutboxOp::ReleaseLease {
            owner: owner.to_owned(),
        };
        self.outbox_write(op).await.map(|_| ())
    }

    async fn purge_events(&self, before: Timestamp) -> Result<u64> {
        let mut total = 0;
        loop {
            let removed = self.outbox_count(OutboxOp::Purge { before }).await?;
            total += removed;
            if removed < EVENTS_PURGE_BATCH {
                return Ok(total);
            }
        }
    }
}
