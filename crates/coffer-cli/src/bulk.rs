//! `delete` (of a key, a version, or every key under a prefix), `undelete`,
//! and `list --versions` / `list --deleted`.

use coffer::{ListOptions, Store};

use crate::cli::DeleteArgs;
use crate::commands::{invalid_input, report_change, version_arg};
use crate::output::{count, human_size, print_json, print_table};

pub async fn delete(store: &Store, args: DeleteArgs, json: bool) -> anyhow::Result<()> {
    match (args.key, args.prefix) {
        (_, Some(prefix)) => delete_prefix(store, &prefix, args.dry_run, json).await,
        // Checked here: clap 4.6's `requires` did not refuse `--dry-run` without `--prefix`.
        (_, None) if args.dry_run => Err(invalid_input(
            "--dry-run goes with --prefix (it lists the keys a delete --prefix would hide)",
        )),
        (Some(key), None) => match version_arg(store, &key, args.version.as_deref()).await? {
            Some(id) => {
                let removed = if args.bypass_governance {
                    store.delete_version_bypassing_governance(&key, &id).await?
                } else {
                    store.delete_version(&key, &id).await?
                };
                report_change(&removed, "removed version", json)
            }
            None => {
                let marker = store.delete(&key).await?;
                report_change(&marker, "deleted (delete marker)", json)
            }
        },
        (None, None) => Err(invalid_input("give a KEY or --prefix")),
    }
}

async fn delete_prefix(store: &Store, prefix: &str, dry_run: bool, json: bool) -> anyhow::Result<()> {
    let report = store.delete_prefix(prefix, dry_run).await?;
    if json {
        return print_json(&report);
    }
    for version in &report.deleted {
        if report.dry_run {
            println!("would delete {} (latest version {})", version.key, version.version_id);
        } else {
            println!("deleted {} (delete marker {})", version.key, version.version_id);
        }
    }
    let keys = count(report.deleted.len() as u64, "key");
    if report.dry_run {
        println!(
            "would delete {keys} under {prefix:?}; nothing was changed (without --dry-run, each gets a delete marker)"
        );
    } else {
        println!("deleted {keys} under {prefix:?} (delete markers; `coffer undelete KEY` brings one back)");
    }
    Ok(())
}

pub async fn undelete(store: &Store, key: &str, comment: Option<&str>, json: bool) -> anyhow::Result<()> {
    let restored = store.undelete(key, comment).await?;
    report_change(&restored, "undeleted: new", json)
}

/// `list --versions` (every version of each key) or `list --deleted`.
pub async fn list(store: &Store, options: &ListOptions, versions: bool, json: bool) -> anyhow::Result<()> {
    let page = if versions {
        store.list_versions(options).await?
    } else {
        store.list_deleted(options).await?
    };
    if json {
        return print_json(&page);
    }
    let rows: Vec<Vec<String>> = page
        .objects
        .iter()
        .map(|v| {
            vec![
                v.key.to_string(),
                v.version_id.to_string(),
                if v.is_latest { "*".into() } else { String::new() },
                if v.is_delete_marker {
                    "delete marker".into()
                } else {
                    human_size(v.size)
                },
                v.created_at.to_string(),
                v.created_by.clone(),
            ]
        })
        .collect();
    print_table(&["KEY", "VERSION", "LATEST", "SIZE", "MODIFIED", "BY"], &rows);
    if let Some(next) = &page.next_start_after {
        println!("(more: --start-after {next:?})");
    }
    Ok(())
}
