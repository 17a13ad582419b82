//! `retention show|set|clear` and `legal-hold set|clear`: a version's
//! protection from removal.

use coffer::{ObjectVersion, Retention, Store, Timestamp};
use serde_json::json;

use crate::cli::{LegalHoldCommand, RetentionArgs, RetentionCommand};
use crate::commands::{invalid_input, version_arg};
use crate::output::{print_fields, print_json};

/// The retention `args` ask for, if any.
pub fn requested(args: &RetentionArgs) -> anyhow::Result<Option<Retention>> {
    Ok(Retention::requested(
        args.retain_until.as_deref(),
        args.retain.as_deref(),
        args.mode.as_deref(),
        Timestamp::now(),
    )?)
}

pub async fn retention(store: &Store, command: RetentionCommand, json: bool) -> anyhow::Result<()> {
    match command {
        RetentionCommand::Show { key, version } => {
            let version = store
                .head(&key, version_arg(store, &key, version.as_deref()).await?.as_ref())
                .await?;
            show(&version, json)
        }
        RetentionCommand::Set {
            key,
            version,
            retention,
            bypass_governance,
        } => {
            let Some(retention) = requested(&retention)? else {
                return Err(invalid_input("give --retain-until TIME or --retain SPAN"));
            };
            let id = store.resolve_version(&key, &version).await?;
            let changed = store.set_retention(&key, &id, retention, bypass_governance).await?;
            report(&changed, json)
        }
        RetentionCommand::Clear {
            key,
            version,
            bypass_governance,
        } => {
            let id = store.resolve_version(&key, &version).await?;
            let changed = store.remove_retention(&key, &id, bypass_governance).await?;
            report(&changed, json)
        }
    }
}

pub async fn legal_hold(store: &Store, command: LegalHoldCommand, json: bool) -> anyhow::Result<()> {
    let (key, version, on) = match command {
        LegalHoldCommand::Set { key, version } => (key, version, true),
        LegalHoldCommand::Clear { key, version } => (key, version, false),
    };
    let id = store.resolve_version(&key, &version).await?;
    let changed = store.set_legal_hold(&key, &id, on).await?;
    report(&changed, json)
}

/// One line: the version and what protects it now.
fn report(version: &ObjectVersion, json: bool) -> anyhow::Result<()> {
    if json {
        return show(version, json);
    }
    println!("{} version {}: {}", version.key, version.version_id, describe(version));
    Ok(())
}

fn show(version: &ObjectVersion, json: bool) -> anyhow::Result<()> {
    let protection = version.protection();
    let now = Timestamp::now();
    let removable = protection.check_removal("the version", now, false);
    if json {
        return print_json(&json!({
            "key": version.key,
            "version_id": version.version_id,
            "retention": version.retention,
            "legal_hold": version.legal_hold,
            "protected": protection.is_protected(now),
            "removable": removable.is_ok(),
        }));
    }
    let mut fields = vec![
        ("key", version.key.to_string()),
        ("version_id", version.version_id.to_string()),
        ("retention", describe_retention(version)),
        ("legal_hold", if version.legal_hold { "on" } else { "off" }.to_owned()),
    ];
    fields.push((
        "removable",
        match removable {
            Ok(()) => "yes".to_owned(),
            Err(refusal) => format!("no: {}", refusal.message()),
        },
    ));
    print_fields(&fields);
    Ok(())
}

fn describe_retention(version: &ObjectVersion) -> String {
    match version.retention {
        None => "none".to_owned(),
        Some(r) if r.in_force(Timestamp::now()) => format!("{} until {}", r.mode, r.until),
        Some(r) => format!("{} until {} (expired)", r.mode, r.until),
    }
}

fn describe(version: &ObjectVersion) -> String {
    let hold = if version.legal_hold {
        "legal hold on"
    } else {
        "no legal hold"
    };
    format!("retention {}, {hold}", describe_retention(version))
}
