//! `restore` and `restore status`: bringing an archived version's content
//! back, and following it.

use coffer::backend::RestoreState;
use coffer::{RestoreStatus, Store};

use crate::cli::{RestoreArgs, RestoreCommand};
use crate::commands::invalid_input;
use crate::output::print_json;

pub async fn run(store: &Store, args: RestoreArgs, json: bool) -> anyhow::Result<()> {
    let status = match args.command {
        Some(RestoreCommand::Status { key, version }) => {
            let id = store.resolve_version(&key, &version).await?;
            store.restore_status(&key, &id).await?
        }
        None => {
            let (Some(key), Some(version)) = (args.key, args.version) else {
                return Err(invalid_input("give the KEY and --version ID of the archived version"));
            };
            let tier = args.tier.parse()?;
            let id = store.resolve_version(&key, &version).await?;
            store.restore(&key, &id, args.days, tier).await?
        }
    };
    if json {
        return print_json(&status);
    }
    println!("{}", describe(&status));
    Ok(())
}

/// Look at the pending restores once (what long-running commands do each
/// round), and say which are done unless the output is JSON. A store that
/// does not answer waits for the next round.
pub async fn poll(store: &Store, json: bool) -> anyhow::Result<()> {
    let done = match store.poll_restores().await {
        Ok(done) => done,
        Err(e) if e.is_retryable() => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    if !json {
        for restored in done {
            let asked = &restored.request;
            println!("restored: {} version {} can be read", asked.key, asked.version_id);
        }
    }
    Ok(())
}

/// One line: the version, where it stands, and the restore asked for.
fn describe(status: &RestoreStatus) -> String {
    let asked = status.pending.as_ref().map_or(String::new(), |asked| {
        format!(
            "; asked {} by {} ({}, {} days)",
            asked.requested_at, asked.requested_by, asked.tier, asked.days
        )
    });
    let next = match status.state {
        RestoreState::InProgress { .. } => "; `coffer restore status` follows it",
        RestoreState::Archived { .. } => "; `coffer restore` starts a restore",
        _ => "",
    };
    format!(
        "{} version {}: {}{asked}{next}",
        status.key, status.version_id, status.state
    )
}
