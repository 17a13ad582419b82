//! Commands of version management and integrity: history, rollback, compare,
//! tag, comment, prune, audit, search, verify, reindex, import and export.

use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use coffer::catalog::SqliteCatalog;
use coffer::{
    AuditQuery, ExportOptions, ImportOptions, ObjectKey, PrunePolicy, PruneReport, SearchQuery, Store, TextDiff,
    Timestamp, ValueChange, VerifyOptions,
};

use crate::cli::{AuditArgs, AuditCommand, ImportSelection, PruneArgs, SearchArgs, VerifyArgs};
use crate::commands::{invalid_input, parse_pair_list, parse_pairs, report_change};
use crate::output::{self, count, human_size, print_fields, print_json, print_table};
use crate::progress::TerminalProgress;

/// A version's comments in one cell: the newest, and how many more.
fn comments_cell(comments: &[coffer::Comment]) -> String {
    match comments {
        [] => String::new(),
        [only] => only.text.replace('\n', " "),
        [.., last] => format!("{} (+{} more)", last.text.replace('\n', " "), comments.len() - 1),
    }
}

/// Tags in one cell: `a=1,b=2`.
pub fn tags_cell(tags: &coffer::Tags) -> String {
    tags.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

pub async fn history(store: &Store, key: &str, limit: Option<usize>, json: bool) -> anyhow::Result<()> {
    let history = store.history(key, limit).await?;
    if json {
        return print_json(&history);
    }
    let rows: Vec<Vec<String>> = history
        .iter()
        .map(|entry| {
            let v = &entry.version;
            vec![
                v.version_id.to_string(),
                if v.is_latest { "*".into() } else { String::new() },
                v.created_at.to_string(),
                v.created_by.clone(),
                if v.is_delete_marker {
                    "delete marker".into()
                } else {
                    human_size(v.size)
                },
                format!("{:+}", entry.size_change),
                tags_cell(&v.tags),
                comments_cell(&v.comments),
            ]
        })
        .collect();
    print_table(
        &[
            "VERSION", "LATEST", "CREATED", "BY", "SIZE", "CHANGE", "TAGS", "COMMENT",
        ],
        &rows,
    );
    Ok(())
}

pub async fn rollback(
    store: &Store,
    key: &str,
    version: &str,
    comment: Option<&str>,
    json: bool,
) -> anyhow::Result<()> {
    let target = store.resolve_version(key, version).await?;
    let rolled = store.rollback(key, &target, comment).await?;
    report_change(&rolled, &format!("rolled back to {target}: new"), json)
}

pub async fn compare(store: &Store, key: &str, from: &str, to: &str, json: bool) -> anyhow::Result<()> {
    let comparison = store
        .compare(
            key,
            &store.resolve_version(key, from).await?,
            &store.resolve_version(key, to).await?,
        )
        .await?;
    if json {
        return print_json(&comparison);
    }
    let c = &comparison;
    let mut fields = vec![
        ("from", format!("{} ({})", c.from.version_id, human_size(c.from.size))),
        ("to", format!("{} ({})", c.to.version_id, human_size(c.to.size))),
        ("size change", format!("{:+} bytes", c.size_change)),
        (
            "content",
            if c.same_content {
                "same (equal SHA-256)".to_owned()
            } else {
                "different".to_owned()
            },
        ),
    ];
    let change = |change: &ValueChange| {
        format!(
            "{} -> {}",
            change.before.as_deref().unwrap_or("(none)"),
            change.after.as_deref().unwrap_or("(none)")
        )
    };
    if let Some(content_type) = &c.content_type {
        fields.push(("content type", change(content_type)));
    }
    for (name, diff) in &c.metadata {
        fields.push(("metadata", format!("{name}: {}", change(diff))));
    }
    for (name, diff) in &c.tags {
        fields.push(("tag", format!("{name}: {}", change(diff))));
    }
    if let TextDiff::Skipped(why) = &c.text_diff {
        fields.push(("text diff", format!("none ({why})")));
    }
    print_fields(&fields);
    if let TextDiff::Unified(diff) = &c.text_diff
        && !diff.is_empty()
    {
        println!();
        print!("{diff}");
    }
    Ok(())
}

pub async fn tag(
    store: &Store,
    key: &str,
    version: &str,
    tags: &[String],
    remove: &[String],
    json: bool,
) -> anyhow::Result<()> {
    let version_id = store.resolve_version(key, version).await?;
    let set = parse_pairs("tag", tags)?;
    let tagged = store.tag(key, &version_id, set, remove).await?;
    if json {
        return print_json(&tagged);
    }
    println!(
        "tags of {} version {}: {}",
        tagged.key,
        tagged.version_id,
        if tagged.tags.is_empty() {
            "(none)".to_owned()
        } else {
            tags_cell(&tagged.tags)
        }
    );
    Ok(())
}

pub async fn comment(store: &Store, key: &str, version: &str, text: &str, json: bool) -> anyhow::Result<()> {
    let commented = store
        .comment(key, &store.resolve_version(key, version).await?, text)
        .await?;
    if json {
        return print_json(&commented);
    }
    println!(
        "commented on {} version {} ({})",
        commented.key,
        commented.version_id,
        count(commented.comments.len() as u64, "comment")
    );
    Ok(())
}

pub async fn prune(store: &Store, args: PruneArgs, json: bool) -> anyhow::Result<()> {
    let policy = PrunePolicy {
        keep: args.keep,
        keep_tagged: args.keep_tagged,
    };
    let report: PruneReport = match (&args.key, &args.prefix) {
        (Some(key), None) => store.prune(key, policy, args.dry_run).await?,
        (None, Some(prefix)) => store.prune_prefix(prefix, policy, args.dry_run).await?,
        _ => return Err(invalid_input("give either KEY or --prefix, not both")),
    };
    if json {
        return print_json(&report);
    }
    let verb = if report.dry_run { "would remove" } else { "removed" };
    for v in &report.removed {
        let size = if v.is_delete_marker {
            "delete marker".to_owned()
        } else {
            human_size(v.size)
        };
        println!("{verb} {} version {} ({size})", v.key, v.version_id);
    }
    for held in &report.held {
        println!("kept {}", held.reason);
    }
    println!(
        "{verb} {}; {} ({}) {}",
        count(report.removed.len() as u64, "version"),
        count(report.blobs_freed, "blob"),
        human_size(report.bytes_freed),
        if report.dry_run { "would be freed" } else { "freed" }
    );
    Ok(())
}

pub async fn audit(store: &Store, args: AuditArgs, json: bool) -> anyhow::Result<()> {
    if let Some(AuditCommand::Purge { before, dry_run }) = args.command {
        return audit_purge(store, before.as_deref(), dry_run, json).await;
    }
    let query = AuditQuery {
        key: args.key.map(ObjectKey::new).transpose()?,
        prefix: args.prefix,
        actor: args.actor,
        action: args.action,
        since: parse_time(&args.since)?,
        until: parse_time(&args.until)?,
        // An export without --limit writes every row (the library's 0).
        limit: match (&args.export, args.limit) {
            (_, Some(0)) => return Err(invalid_input("--limit must be at least 1")),
            (Some(_), limit) => limit.unwrap_or(0),
            (None, limit) => limit.unwrap_or(100),
        },
        ..AuditQuery::default()
    };
    if let Some(file) = &args.export {
        let rows = store.export_audit(&query, file).await?;
        let summary = format!("exported {} to {}", count(rows, "audit row"), file.display());
        // Rows written to standard output or a stream (`-`, /dev/stdout, a
        // FIFO): the summary goes to stderr, not among them.
        let streamed = file.as_os_str() == "-" || std::fs::metadata(file).is_ok_and(|m| !m.is_file());
        if streamed {
            eprintln!("{summary}");
        } else if json {
            return print_json(&serde_json::json!({ "rows": rows, "file": file }));
        } else {
            println!("{summary}");
        }
        return Ok(());
    }
    let rows = store.audit(&query).await?;
    if json {
        return print_json(&rows);
    }
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.id.to_string(),
                r.at.to_string(),
                r.actor.clone(),
                r.action.clone(),
                r.key.clone().unwrap_or_default(),
                r.version_id.clone().unwrap_or_default(),
                if r.detail.is_null() {
                    String::new()
                } else {
                    r.detail.to_string()
                },
            ]
        })
        .collect();
    print_table(&["ID", "AT", "ACTOR", "ACTION", "KEY", "VERSION", "DETAIL"], &rows);
    Ok(())
}

async fn audit_purge(store: &Store, before: Option<&str>, dry_run: bool, json: bool) -> anyhow::Result<()> {
    let before = before.map(Timestamp::parse_human).transpose()?;
    let report = store.purge_audit(before, dry_run).await?;
    if json {
        return print_json(&report);
    }
    println!(
        "{} {} older than {} (retention {})",
        if report.dry_run { "would remove" } else { "removed" },
        count(report.removed, "audit row"),
        report.before,
        report.retention
    );
    Ok(())
}

/// A time argument (`--since`, `--until` ...), parsed like `audit` does.
fn parse_time(text: &Option<String>) -> anyhow::Result<Option<Timestamp>> {
    Ok(text.as_deref().map(Timestamp::parse_human).transpose()?)
}

pub async fn search(store: &Store, args: SearchArgs, json: bool) -> anyhow::Result<()> {
    let query = SearchQuery {
        text: args.text,
        prefix: args.prefix,
        tags: parse_pair_list("tag", &args.tags)?,
        metadata: parse_pair_list("metadata", &args.metadata)?,
        content_type: args.content_type,
        since: parse_time(&args.since)?,
        until: parse_time(&args.until)?,
        all_versions: args.all_versions,
        limit: args.limit,
        cursor: args.cursor,
    };
    let page = store.search(&query).await?;
    if json {
        return print_json(&page);
    }
    let ranked = !query.text.trim().is_empty();
    let rows: Vec<Vec<String>> = page
        .hits
        .iter()
        .map(|hit| {
            let v = &hit.version;
            let mut row = vec![
                v.key.to_string(),
                v.version_id.to_string(),
                if v.is_latest { "*".into() } else { String::new() },
                human_size(v.size),
                v.created_at.to_string(),
                tags_cell(&v.tags),
            ];
            if ranked {
                row.push(output::score(hit.score));
            }
            row
        })
        .collect();
    let mut header = vec!["KEY", "VERSION", "LATEST", "SIZE", "MODIFIED", "TAGS"];
    if ranked {
        header.push("SCORE");
    }
    print_table(&header, &rows);
    if let Some(cursor) = &page.next_cursor {
        println!("(more: --cursor {cursor})");
    }
    Ok(())
}

pub async fn verify(store: &Store, args: VerifyArgs, json: bool) -> anyhow::Result<ExitCode> {
    let min_orphan_age = humantime::parse_duration(&args.min_age)
        .map_err(|e| invalid_input(&format!("invalid --min-age {:?}: {e}", args.min_age)))?;
    let options = VerifyOptions {
        prefix: args.prefix,
        repair: args.repair,
        min_orphan_age,
        jobs: args.jobs,
        progress: TerminalProgress::for_terminal(!json),
    };
    let started = Instant::now();
    let report = store.verify(&options).await?;
    let repaired = report.problems.iter().filter(|p| p.repaired).count();
    // Damaged content a repair marked still stands: its versions cannot be read.
    let remaining = report.problems.iter().filter(|p| p.remains).count();
    if json {
        print_json(&report)?;
    } else {
        for problem in &report.problems {
            let versions: Vec<String> = problem.versions.iter().map(|(k, v)| format!("{k}@{v}")).collect();
            println!(
                "{}{}: {}{}",
                if problem.repaired { "[repaired] " } else { "" },
                problem.kind,
                problem.detail,
                if versions.is_empty() {
                    String::new()
                } else {
                    format!(" (versions: {})", versions.join(", "))
                }
            );
        }
        println!(
            "checked {}, {} ({}) in {:.1}s: {}{}{}",
            count(report.versions as u64, "version"),
            count(report.blobs as u64, "blob"),
            human_size(report.bytes),
            started.elapsed().as_secs_f64(),
            count(report.problems.len() as u64, "problem"),
            if args.repair && remaining > 0 {
                format!(
                    ", {repaired} repaired; {} remaining",
                    count(remaining as u64, "problem")
                )
            } else if args.repair {
                format!(", {repaired} repaired")
            } else {
                String::new()
            },
            if report.recent_unreferenced > 0 {
                format!(
                    "; {} younger than {} left alone",
                    count(report.recent_unreferenced as u64, "unreferenced object"),
                    args.min_age
                )
            } else {
                String::new()
            }
        );
    }
    Ok(if remaining == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(output::exit_code(coffer::ErrorKind::IntegrityMismatch))
    })
}

pub async fn reindex(store: &Store, into: &Path, json: bool) -> anyhow::Result<()> {
    if into.exists() {
        return Err(coffer::Error::new(
            coffer::ErrorKind::Conflict,
            format!("{} exists; reindex writes a new catalog file", into.display()),
        )
        .into());
    }
    let target = SqliteCatalog::open(into).await?;
    let report = store.reindex_into(&target).await?;
    if json {
        return print_json(&report);
    }
    for skipped in &report.skipped {
        println!("skipped {skipped}");
    }
    println!(
        "rebuilt {} of {} from {} into {}",
        count(report.versions as u64, "version"),
        count(report.keys as u64, "key"),
        count(report.manifests as u64, "manifest"),
        target
    );
    println!("use it with --catalog sqlite://{}", into.display());
    Ok(())
}

fn rate(bytes: u64, elapsed: Duration) -> String {
    let seconds = elapsed.as_secs_f64().max(1e-6);
    format!("{}/s", human_size((bytes as f64 / seconds) as u64))
}

pub async fn import(
    store: &Store,
    dir: &Path,
    selection: ImportSelection,
    prefix: String,
    jobs: usize,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let options = ImportOptions {
        prefix,
        jobs,
        force: selection.force,
        dry_run: selection.dry_run,
        exclude: selection.exclude,
        progress: TerminalProgress::for_terminal(!json && !selection.dry_run),
    };
    let started = Instant::now();
    let report = store.import_dir(dir, &options).await?;
    let elapsed = started.elapsed();
    if json {
        print_json(&report)?;
    } else {
        for key in &report.would_import {
            println!("would import {key}");
        }
        for (path, why) in &report.failed {
            println!("failed {path}: {why}");
        }
        for path in &report.skipped {
            println!("skipped {path} (not a regular file)");
        }
        let done = match options.dry_run {
            true => format!(
                "would import {} ({})",
                count(report.files as u64, "file"),
                human_size(report.bytes)
            ),
            false => format!(
                "imported {} ({}) in {:.1}s, {}",
                count(report.files as u64, "file"),
                human_size(report.bytes),
                elapsed.as_secs_f64(),
                rate(report.bytes, elapsed)
            ),
        };
        println!(
            "{done}; {} unchanged (skipped), {} excluded, {} failed, {} skipped (not a regular file)",
            report.unchanged,
            report.excluded,
            report.failed.len(),
            report.skipped.len()
        );
    }
    Ok(if report.failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(output::EXIT_OTHER)
    })
}

pub async fn export(
    store: &Store,
    dir: &Path,
    prefix: String,
    version_at: Option<&str>,
    jobs: usize,
    no_clobber: bool,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let options = ExportOptions {
        prefix,
        as_of: version_at.map(Timestamp::parse_human).transpose()?,
        jobs,
        no_clobber,
        progress: TerminalProgress::for_terminal(!json),
    };
    let started = Instant::now();
    let report = store.export_dir(dir, &options).await?;
    let elapsed = started.elapsed();
    if json {
        print_json(&report)?;
    } else {
        for (key, why) in &report.failed {
            println!("failed {key}: {why}");
        }
        println!(
            "exported {} ({}) to {} in {:.1}s, {}; {} failed{}",
            count(report.files as u64, "file"),
            human_size(report.bytes),
            dir.display(),
            elapsed.as_secs_f64(),
            rate(report.bytes, elapsed),
            report.failed.len(),
            if options.no_clobber {
                format!(", {} skipped (existing)", report.skipped)
            } else {
                String::new()
            }
        );
    }
    Ok(if report.failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(output::EXIT_OTHER)
    })
}
