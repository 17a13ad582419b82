//! `coffer info` and `coffer hot`: what the store is and holds, and the
//! hot store's state and work on demand.

use coffer::{HotStatus, Store, Timestamp};

use crate::cli::HotCommand;
use crate::output::{self, human_size, print_fields, print_json, print_table};

pub async fn info(store: &Store, json: bool) -> anyhow::Result<()> {
    let info = store.info().await?;
    if json {
        return print_json(&info);
    }
    let s = &info.stats;
    let caps = &info.capabilities;
    print_fields(&[
        ("backend", info.backend.clone()),
        (
            "status",
            crate::output::backend_status(info.backend_error.as_deref(), info.backend_error_kind),
        ),
        (
            "spool",
            match &info.spool {
                None => "none".to_owned(),
                Some(spool) if spool.files == 0 => format!("{} (empty)", spool.path),
                Some(spool) => format!(
                    "{}: {} ({}) waiting for the backend (coffer sync)",
                    spool.path,
                    output::count(spool.files, "file"),
                    human_size(spool.bytes)
                ),
            },
        ),
        ("capabilities", crate::output::capabilities_line(caps)),
        (
            "protection",
            match (&info.native_guard, info.backend_ok) {
                (Some(guard), _) => format!("{guard}: coffer locks protected versions' objects there too"),
                (None, true) => "coffer's alone: the store has no lock of its own".to_owned(),
                (None, false) => "unknown while the backend does not answer".to_owned(),
            },
        ),
        (
            "encryption",
            info.encryption
                .clone()
                .unwrap_or_else(|| "none client-side ([encryption] is off)".to_owned()),
        ),
        (
            "server-side",
            info.server_side_encryption.clone().unwrap_or_else(|| "none".to_owned()),
        ),
        ("catalog", info.catalog.clone()),
        ("hot", hot_line(&info.hot)),
        ("objects", format!("{} ({})", s.objects, human_size(s.object_bytes))),
        (
            "versions",
            format!(
                "{} ({}), {}",
                s.versions,
                human_size(s.version_bytes),
                output::count(s.delete_markers as u64, "delete marker")
            ),
        ),
        (
            "stored",
            format!(
                "{} ({}) after dedup",
                output::count(s.blobs as u64, "blob"),
                human_size(s.blob_bytes)
            ),
        ),
        (
            "damaged",
            match s.damaged_versions {
                0 => "none".to_owned(),
                1 => "1 version unreadable until healed (coffer verify lists it)".to_owned(),
                n => format!("{n} versions unreadable until healed (coffer verify lists them)"),
            },
        ),
        (
            "audit",
            format!(
                "{}, reads {}",
                info.audit_retention
                    .as_ref()
                    .map_or("no retention (never purged)".to_owned(), |r| format!("retention {r}")),
                if info.audit_reads { "recorded" } else { "not recorded" }
            ),
        ),
    ]);
    Ok(())
}

/// Run a `hot` command.
pub async fn hot(store: &Store, command: HotCommand, json: bool) -> anyhow::Result<()> {
    match command {
        HotCommand::Status => {
            let status = store.hot_status().await?;
            if json {
                return print_json(&status);
            }
            let s = &status.stats;
            print_fields(&[
                ("engine", status.engine.clone()),
                ("takes", hot_takes(&status)),
                (
                    "held",
                    format!("{} ({})", output::count(s.objects, "object"), human_size(s.bytes)),
                ),
                ("waiting", waiting_line(&status)),
                (
                    "expired",
                    format!("{} since the store began", output::count(s.expired, "hot copy")),
                ),
            ]);
        }
        HotCommand::Flush => {
            let report = store.flush_hot().await?;
            if json {
                return print_json(&report);
            }
            println!(
                "flushed {} and {} ({}) to the backend",
                output::count(report.versions, "manifest"),
                output::count(report.blobs, "blob"),
                human_size(report.bytes)
            );
        }
        HotCommand::Query { prefix, since, limit } => {
            let since = match since {
                Some(text) => Timestamp::parse_human(&text)?,
                None => Timestamp::from_micros(0),
            };
            let found = store.hot_query(&prefix, since, limit).await?;
            if json {
                return print_json(&found);
            }
            let rows: Vec<Vec<String>> = found
                .iter()
                .map(|o| {
                    vec![
                        o.key.clone(),
                        o.version_id.clone(),
                        human_size(o.size),
                        o.content_type.clone(),
                        o.created_at.to_string(),
                    ]
                })
                .collect();
            print_table(&["KEY", "VERSION", "SIZE", "CONTENT TYPE", "CREATED"], &rows);
        }
        HotCommand::Expire { dry_run } => {
            let expired = store.expire_hot(Timestamp::now(), dry_run).await?;
            if json {
                return print_json(&serde_json::json!({
                    "expired": expired.copies,
                    "clickhouse_days": expired.clickhouse_days,
                    "dry_run": dry_run,
                }));
            }
            let what = output::count(expired.copies, "hot copy");
            match dry_run {
                true => println!("would drop {what} (flushed, older than the store's hot.days)"),
                false => println!("dropped {what}; their reads come from the backend now"),
            }
            if !expired.clickhouse_days.is_empty() {
                let verb = if dry_run { "would drop" } else { "dropped" };
                let days = output::count(expired.clickhouse_days.len() as u64, "ClickHouse day");
                println!("{verb} {days}: {}", expired.clickhouse_days.join(", "));
            }
        }
    }
    Ok(())
}

/// Which puts go hot, for how long.
fn hot_takes(status: &HotStatus) -> String {
    match status.max_object_size {
        0 => "nothing (hot.max_object_size = 0)".to_owned(),
        max => format!("puts up to {}, kept {} days", human_size(max), status.days),
    }
}

/// What waits for the flusher.
fn waiting_line(status: &HotStatus) -> String {
    let s = &status.stats;
    match s.oldest_pending {
        None => "nothing: the backend holds every version".to_owned(),
        Some(oldest) => format!(
            "{} and {} ({}) for the backend, the oldest from {oldest} (coffer hot flush)",
            output::count(s.pending_versions, "manifest"),
            output::count(s.unflushed_objects, "blob"),
            human_size(s.unflushed_bytes)
        ),
    }
}

/// The hot store in `info`: what it takes and what waits.
fn hot_line(status: &HotStatus) -> String {
    format!("{}; waiting: {}", hot_takes(status), waiting_line(status))
}
