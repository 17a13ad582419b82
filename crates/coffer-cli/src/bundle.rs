//! `coffer bundle`: each command is one `Store` call, its answer printed.

use std::path::Path;

use anyhow::Context as _;
use coffer::bundle::{BundleQuery, BundleRecord, BundleRef, FetchOptions, Layout};
use coffer::{GetOptions, Store};
use futures::StreamExt;
use serde_json::{Map, Value};
use tokio::io::AsyncWriteExt;

use crate::cli::{BundleCommand, StartArgs};
use crate::commands::{invalid_input, parse_pair_list};
use crate::output::{self, human_size, print_fields, print_json};

pub async fn run(store: &Store, command: BundleCommand, json: bool) -> anyhow::Result<()> {
    match command {
        BundleCommand::Start(args) => {
            let bundle = store.start_bundle(bundle_ref(args)?).await?;
            match json {
                true => print_json(bundle.record())?,
                false => println!("{}", bundle.id()),
            }
        }
        BundleCommand::Add {
            bundle,
            url,
            content_type,
            status,
            file,
            stdin: _,
        } => {
            let context = store.open_bundle(&bundle).await?;
            let body = match file.filter(|f| f.as_os_str() != "-") {
                Some(path) => {
                    let file = tokio::fs::File::open(&path)
                        .await
                        .with_context(|| format!("cannot read {}", path.display()))
                        .map_err(|e| coffer::Error::new(coffer::ErrorKind::Io, format!("{e:#}")))?;
                    coffer::body::reader_stream(file)
                }
                None => coffer::body::reader_stream(tokio::io::stdin()),
            };
            let added = context
                .add_resource(&url, content_type.as_deref(), status, body)
                .await?;
            match json {
                true => print_json(&added)?,
                false => {
                    for resource in added {
                        println!(
                            "{} {} ({})",
                            resource.position,
                            resource.name,
                            human_size(resource.size)
                        );
                    }
                }
            }
        }
        BundleCommand::Complete { bundle, meta } => {
            let done = store.complete_bundle(&bundle, json_pairs("meta", &meta)?).await?;
            report(&done, "completed", json)?;
        }
        BundleCommand::Abort { bundle } => {
            store.abort_bundle(&bundle).await?;
            match json {
                true => print_json(&serde_json::json!({ "bundle_id": bundle, "aborted": true }))?,
                false => println!("aborted {bundle}"),
            }
        }
        BundleCommand::Resume { bundle } => {
            let context = store.resume_bundle(&bundle).await?;
            report(context.record(), "resumed", json)?;
        }
        BundleCommand::Fetch {
            urls,
            start,
            complete_meta,
            jobs,
        } => {
            let options = FetchOptions {
                jobs,
                ..FetchOptions::default()
            };
            let metadata = json_pairs("complete-meta", &complete_meta)?;
            let done = store
                .fetch_bundle(&urls, bundle_ref(start)?, metadata, &options)
                .await?;
            report(&done, "fetched", json)?;
        }
        BundleCommand::List { pending } => {
            let query = BundleQuery {
                open_only: pending,
                ..BundleQuery::default()
            };
            let bundles = store.bundles(&query).await?;
            if json {
                return print_json(&bundles);
            }
            for bundle in bundles {
                let state = match bundle.is_open() {
                    true => "open",
                    false => "complete",
                };
                println!(
                    "{}  {:8}  {:9}  {}  {}",
                    bundle.bundle_id,
                    state,
                    bundle.layout,
                    output::count(bundle.resources_count, "resource"),
                    bundle.primary_url.as_deref().unwrap_or("-")
                );
            }
        }
        BundleCommand::Show { bundle } => {
            let record = store.bundle_info(&bundle).await?;
            let resources = store.bundle_resources(&bundle).await?;
            if json {
                return print_json(&serde_json::json!({ "bundle": record, "resources": resources }));
            }
            report(&record, "bundle", false)?;
            for r in resources {
                println!(
                    "  {:>5}  {:>3}  {:>10}  {}  {}",
                    r.position,
                    r.status_code,
                    human_size(r.size),
                    r.name,
                    r.url
                );
            }
        }
        BundleCommand::Get {
            bundle,
            resource,
            output,
        } => {
            let body = match resource {
                Some(which) => {
                    let resource = store.bundle_resource(&bundle, &which).await?;
                    store.read_bundle_resource(&resource).await?
                }
                None => {
                    let record = store.bundle_info(&bundle).await?;
                    let (Some(version), true) = (&record.version_id, record.layout == Layout::Zip.as_str()) else {
                        return Err(invalid_input(&format!(
                            "bundle {bundle} has no zip ({} layout{}): get one resource with --resource, or export it",
                            record.layout,
                            if record.is_open() { ", or not completed yet" } else { "" }
                        )));
                    };
                    let options = GetOptions {
                        version_id: Some(version.parse()?),
                        ..GetOptions::default()
                    };
                    store.get(&record.storage_key, options).await?.body
                }
            };
            write_out(body, output.as_deref()).await?;
        }
        BundleCommand::Export { bundle, dir, warc } => {
            let export = match (dir, warc) {
                (_, Some(file)) => store.export_bundle_warc(&bundle, &file).await?,
                (Some(dir), None) => store.export_bundle(&bundle, &dir).await?,
                (None, None) => return Err(invalid_input("give a DIR or --warc FILE")),
            };
            match json {
                true => print_json(&export)?,
                false => println!(
                    "wrote {} ({}) to {}",
                    output::count(export.resources, "resource"),
                    human_size(export.bytes),
                    export.path.display()
                ),
            }
        }
        BundleCommand::Recover { abort_older_than } => {
            let age = abort_older_than
                .map(|text| {
                    humantime::parse_duration(text.trim()).map_err(|e| {
                        invalid_input(&format!("--abort-older-than {text:?}: {e}; expected a span like 1h"))
                    })
                })
                .transpose()?;
            let report = store.recover_bundles(age).await?;
            if json {
                return print_json(&report);
            }
            println!(
                "ran the callbacks of {}, delivered {}, aborted {}",
                output::count(report.callbacks_run.len() as u64, "bundle"),
                output::count(report.delivered, "event"),
                output::count(report.aborted.len() as u64, "open bundle")
            );
            for (id, error) in &report.callbacks_failed {
                println!("callbacks failed again for {id}: {error}");
            }
            for bundle in &report.open {
                println!(
                    "open: {} (started {} by {})",
                    bundle.bundle_id, bundle.created_at, bundle.created_by
                );
            }
        }
    }
    Ok(())
}

fn bundle_ref(args: StartArgs) -> anyhow::Result<BundleRef> {
    Ok(BundleRef {
        primary_url: args.primary_url,
        recipe_id: args.recipe,
        meta: json_pairs("meta", &args.meta)?,
        layout: args.layout.as_deref().map(Layout::parse).transpose()?,
        unzip: args.unzip.then_some(true),
    })
}

/// `NAME=VALUE` arguments as a JSON object of strings.
fn json_pairs(what: &str, pairs: &[String]) -> anyhow::Result<Map<String, Value>> {
    Ok(parse_pair_list(what, pairs)?
        .into_iter()
        .map(|(name, value)| (name, Value::String(value)))
        .collect())
}

fn report(bundle: &BundleRecord, what: &str, json: bool) -> anyhow::Result<()> {
    if json {
        return print_json(bundle);
    }
    let state = match (bundle.is_open(), bundle.callbacks_pending) {
        (true, _) => "open".to_owned(),
        (false, false) => format!(
            "complete ({})",
            bundle.completed_at.map(|t| t.to_string()).unwrap_or_default()
        ),
        (false, true) => "complete, callbacks pending (coffer bundle recover runs them)".to_owned(),
    };
    print_fields(&[
        (what, bundle.bundle_id.clone()),
        ("state", state),
        ("layout", bundle.layout.clone()),
        ("storage key", bundle.storage_key.clone()),
        ("resources", bundle.resources_count.to_string()),
        ("primary url", bundle.primary_url.clone().unwrap_or_default()),
        ("recipe", bundle.recipe_id.clone().unwrap_or_default()),
    ]);
    Ok(())
}

async fn write_out(mut body: coffer::ByteStream, output: Option<&Path>) -> anyhow::Result<()> {
    match output.filter(|p| p.as_os_str() != "-") {
        Some(path) => {
            coffer::body::save_to_file(path, body).await?;
        }
        None => {
            let mut stdout = tokio::io::stdout();
            while let Some(chunk) = body.next().await {
                stdout.write_all(&chunk?).await.map_err(output::stdout_failed)?;
            }
            stdout.flush().await.map_err(output::stdout_failed)?;
        }
    }
    Ok(())
}
