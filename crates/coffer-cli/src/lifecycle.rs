//! `lifecycle plan` and `lifecycle apply`.

use std::process::ExitCode;
use std::time::Duration;

use coffer::lifecycle::{ActionKind, LifecycleAction, LifecyclePlan};
use coffer::{Store, Timestamp};

use crate::cli::LifecycleCommand;
use crate::commands::invalid_input;
use crate::output::{count, print_json};

/// How often `apply --watch` applies the rules without --interval.
const DEFAULT_INTERVAL: Duration = Duration::from_secs(3600);

pub async fn run(store: &Store, command: LifecycleCommand, json: bool) -> anyhow::Result<ExitCode> {
    if store.lifecycle_rules().rules.is_empty() {
        return Err(invalid_input(
            "no lifecycle rules: add [[lifecycle.rules]] to coffer.toml (see the README)",
        ));
    }
    match command {
        LifecycleCommand::Plan { at } => {
            let at = at.as_deref().map(plan_time).transpose()?;
            let plan = store.lifecycle_plan(at).await?;
            if json {
                print_json(&plan)?;
            } else {
                print_plan(&plan, "would");
            }
            Ok(ExitCode::SUCCESS)
        }
        LifecycleCommand::Apply {
            dry_run,
            watch,
            interval,
        } => {
            if !watch {
                return apply_once(store, dry_run, json).await;
            }
            let every = match interval.as_deref() {
                Some(text) => humantime::parse_duration(text)
                    .map_err(|e| invalid_input(&format!("--interval {text:?}: {e}; expected a span like 10m or 1h")))?,
                None => DEFAULT_INTERVAL,
            };
            if every.is_zero() {
                return Err(invalid_input("--interval must be longer than 0"));
            }
            let mut stop = std::pin::pin!(crate::hooks::shutdown_signal());
            let _flushing = store.spawn_hot(coffer::hot::FLUSH_INTERVAL);
            loop {
                apply_once(store, false, json).await?;
                tokio::select! {
                    _ = tokio::time::sleep(every) => {}
                    _ = &mut stop => return Ok(ExitCode::SUCCESS),
                }
            }
        }
    }
}

/// `--at`: a point in time, or a span from now (ahead: planning the past is
/// what a plan of now shows already).
fn plan_time(text: &str) -> anyhow::Result<Timestamp> {
    match humantime::parse_duration(text.trim()) {
        Ok(ahead) => Ok(Timestamp::now().plus(ahead)),
        Err(_) => Ok(Timestamp::parse_point(text)?),
    }
}

async fn apply_once(store: &Store, dry_run: bool, json: bool) -> anyhow::Result<ExitCode> {
    if !dry_run {
        crate::restore::poll(store, json).await?;
    }
    let report = store.lifecycle_apply(dry_run).await?;
    if json {
        print_json(&report)?;
    } else {
        print_plan(&report.plan, if dry_run { "would" } else { "did" });
        for upload in &report.uploads {
            let verb = if dry_run { "would abort" } else { "aborted" };
            println!("{verb} unfinished upload {} (rule {})", upload.path, upload.rule);
        }
        for failed in &report.failed {
            let action = &failed.action;
            println!(
                "failed: rule {} on {} version {}: {}; the next run tries again",
                action.rule, action.key, action.version_id, failed.reason
            );
        }
    }
    Ok(if report.failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(crate::output::EXIT_OTHER)
    })
}

fn describe(action: &LifecycleAction, mood: &str) -> String {
    let what = match (&action.kind, mood) {
        (ActionKind::ExpireCurrent, "would") => "would expire (delete marker)".to_owned(),
        (ActionKind::ExpireCurrent, _) => "expired (delete marker)".to_owned(),
        (ActionKind::ExpireNoncurrent, "would") => "would remove noncurrent version".to_owned(),
        (ActionKind::ExpireNoncurrent, _) => "removed noncurrent version".to_owned(),
        (ActionKind::RemoveDeleteMarker, "would") => "would remove lone delete marker".to_owned(),
        (ActionKind::RemoveDeleteMarker, _) => "removed lone delete marker".to_owned(),
        (ActionKind::Transition { to }, "would") => format!("would move to {to}"),
        (ActionKind::Transition { to }, _) => format!("moved to {to}"),
    };
    format!(
        "{what}: {} version {} (rule {})",
        action.key, action.version_id, action.rule
    )
}

fn print_plan(plan: &LifecyclePlan, mood: &str) {
    for action in &plan.actions {
        println!("{}", describe(action, mood));
    }
    for held in &plan.held {
        println!("held: {}", held.reason);
    }
    let at = plan.at.map(|at| at.to_string()).unwrap_or_default();
    println!(
        "{} at {at} over {}; {} held back by retention or legal hold",
        count(plan.actions.len() as u64, "action"),
        count(plan.versions_seen, "version"),
        plan.held.len()
    );
}
