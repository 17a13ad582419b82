//! The statements both engines' write paths share, each one SQL text run
//! inside the engine's transaction on a [`Conn`]; the engines keep only
//! what their dialects really need around them (SQLite's writer task,
//! PostgreSQL's locks and array statements).

use super::outbox::{FanOut, StatsUpdate, plan_fan_out};
use super::plan::{PURGE_BATCH, PurgePlan};
use super::rows::{Param, to_i64};
use super::sql::Conn;
use crate::error::Result;
use crate::retention::Protection;
use crate::time::Timestamp;

/// Events one purge of the outbox removes per transaction.
pub(super) const EVENTS_PURGE_BATCH: u64 = 10_000;

/// Read up to `limit` events not yet fanned out, oldest first (taking them
/// from concurrent fan-outs), and the hooks, and plan their fan-out.
pub(super) async fn read_fan_out(mut conn: Conn<'_>, limit: usize) -> Result<Option<FanOut>> {
    let sql = format!(
        "SELECT id, payload FROM outbox WHERE NOT fanned_out ORDER BY id LIMIT ?{}",
        conn.dialect().skip_locked
    );
    let events: Vec<(i64, String)> = conn
        .all("reading the outbox", &sql, vec![Param::Int(to_i64(limit as u64))])
        .await?;
    if events.is_empty() {
        return Ok(None);
    }
    let hooks: Vec<(String, i64)> = conn
        .all("reading hooks", "SELECT definition, first_event FROM hooks", Vec::new())
        .await?;
    plan_fan_out(&events, &hooks)
}

/// Remove up to [`PURGE_BATCH`] audit rows of `purge` (older than its line,
/// no newer than its `up_to_id`), oldest first, keeping the rows of versions
/// under legal hold or a retention in force; the engine has told its
/// `audit_no_delete` trigger to let these deletes pass.
pub(super) async fn delete_audit_batch(mut conn: Conn<'_>, purge: &PurgePlan) -> Result<u64> {
    let params = vec![
        Param::Int(purge.before.as_micros()),
        Param::Int(purge.up_to_id),
        Param::Int(Timestamp::now().as_micros()),
        Param::Int(to_i64(PURGE_BATCH)),
    ];
    conn.execute(
        "purging the audit log",
        "DELETE FROM audit WHERE id IN (SELECT a.id FROM audit a WHERE a.at < ? AND a.id <= ? \
         AND NOT EXISTS (SELECT 1 FROM versions v WHERE v.key = a.key AND v.version_id = a.version_id \
                         AND (v.legal_hold OR v.retain_until > ?)) \
         ORDER BY a.id LIMIT ?)",
        params,
    )
    .await
}

/// Remove up to [`EVENTS_PURGE_BATCH`] events older than `before` that every
/// hook is done with (no pending or dead delivery), oldest first.
pub(super) async fn delete_events_batch(mut conn: Conn<'_>, before: Timestamp) -> Result<u64> {
    conn.execute(
        "purging old events",
        "DELETE FROM outbox WHERE id IN (SELECT o.id FROM outbox o WHERE o.fanned_out AND o.at < ? \
         AND NOT EXISTS (SELECT 1 FROM hook_deliveries d WHERE d.event = o.id AND d.state <> 'delivered') \
         ORDER BY o.id LIMIT ?)",
        vec![Param::Int(before.as_micros()), Param::Int(to_i64(EVENTS_PURGE_BATCH))],
    )
    .await
}

/// Add a settle's attempts to its hooks' counters (see
/// [`plan_stats`](super::outbox::plan_stats)).
pub(super) async fn add_hook_stats(mut conn: Conn<'_>, updates: Vec<StatsUpdate>) -> Result<()> {
    for update in updates {
        let params = vec![
            Param::Int(update.executed),
            Param::Int(update.failed),
            Param::Int(update.micros),
            Param::Text(update.histogram),
            Param::Text(update.hook),
        ];
        conn.execute(
            "updating hook counters",
            "UPDATE hook_stats SET executed = executed + ?, failed = failed + ?, total_micros = total_micros + ?, \
             histogram = ? WHERE hook = ?",
            params,
        )
        .await?;
    }
    Ok(())
}

/// Record a version's new protection (its retention and legal hold).
pub(super) async fn set_protection(
    mut conn: Conn<'_>,
    key: &str,
    version_id: &str,
    protection: &Protection,
) -> Result<()> {
    let retention = protection.retention;
    let params = vec![
        retention.map_or(Param::Null, |r| Param::Text(r.mode.as_str().to_owned())),
        retention.map_or(Param::Null, |r| Param::Int(r.until.as_micros())),
        Param::Int(i64::from(protection.legal_hold)),
        Param::Text(key.to_owned()),
        Param::Text(version_id.to_owned()),
    ];
    let sql = format!(
        "UPDATE versions SET retention_mode = ?, retain_until = ?, legal_hold = {} WHERE key = ? AND version_id = ?",
        conn.dialect().int_as_bool("?")
    );
    conn.execute("changing the version's protection", &sql, params).await?;
    Ok(())
}

/// Record where a blob's content lies now (`None`: where a put leaves it).
pub(super) async fn set_placement(conn: Conn<'_>, sha256: &str, placement: Option<&str>) -> Result<()> {
    set_blob_text(conn, "recording where content lies", "placement", sha256, placement).await
}

/// Record a restore of the blob `sha256` as pending (`request`, as JSON), or as done (`None`).
pub(super) async fn set_restore_pending(conn: Conn<'_>, sha256: &str, request: Option<&str>) -> Result<()> {
    set_blob_text(conn, "recording a restore", "restore_pending", sha256, request).await
}

/// Record a blob's wrapped data key anew.
pub(super) async fn set_data_key(conn: Conn<'_>, sha256: &str, data_key: &str) -> Result<()> {
    set_blob_text(conn, "recording a data key", "data_key", sha256, Some(data_key)).await
}

/// Set the store setting `name` to `value` (`None`: remove it); with
/// `if_absent`, only if it is not set yet.
pub(super) async fn set_setting(mut conn: Conn<'_>, name: &str, value: Option<&str>, if_absent: bool) -> Result<()> {
    let (sql, params) = match value {
        None => (
            "DELETE FROM store_settings WHERE name = ?",
            vec![Param::Text(name.to_owned())],
        ),
        Some(value) => (
            match if_absent {
                true => "INSERT INTO store_settings (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING",
                false => {
                    "INSERT INTO store_settings (name, value) VALUES (?, ?) \
                     ON CONFLICT (name) DO UPDATE SET value = excluded.value"
                }
            },
            vec![Param::Text(name.to_owned()), Param::Text(value.to_owned())],
        ),
    };
    conn.execute("changing a store setting", sql, params).await?;
    Ok(())
}

/// Set the text column `column` of the blob `sha256` (`None`: to NULL).
async fn set_blob_text(mut conn: Conn<'_>, what: &str, column: &str, sha256: &str, value: Option<&str>) -> Result<()> {
    let params = vec![
        value.map_or(Param::Null, |v| Param::Text(v.to_owned())),
        Param::Text(sha256.to_owned()),
    ];
    let sql = format!("UPDATE blobs SET {column} = ? WHERE sha256 = ?");
    conn.execute(what, &sql, params).await?;
    Ok(())
}

/// Append an audit row about no key in particular (a bundle, a token).
pub(super) async fn write_audit(
    conn: &mut Conn<'_>,
    at: Timestamp,
    actor: &str,
    action: &str,
    detail: serde_json::Value,
) -> Result<()> {
    let params = vec![
        Param::Int(at.as_micros()),
        Param::Text(actor.to_owned()),
        Param::Text(action.to_owned()),
        Param::Null,
        Param::Null,
        Param::Text(detail.to_string()),
    ];
    let sql = format!(
        "INSERT INTO audit (at, actor, action, key, version_id, detail) VALUES (?, ?, ?, ?, ?, {})",
        conn.dialect().json_param("?")
    );
    conn.execute("writing the audit row", &sql, params).await.map(drop)
}
