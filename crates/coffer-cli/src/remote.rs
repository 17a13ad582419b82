//! The backend flags, and the commands only object stores give meaning to:
//! `health`, `url`, `sync`, `tier`, `migrate` and `import --from-store`.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use coffer::access::LinkMethod;
use coffer::settings::BackendOverrides;
use coffer::{Config, Store};
use serde_json::json;

use crate::cli::{BackendArgs, GlobalArgs, TierCommand, UrlArgs, UrlMethod};
use crate::commands::version_arg;
use crate::output::{exit_code, human_size, print_fields, print_json};
use crate::progress::TerminalProgress;

fn invalid(message: String) -> anyhow::Error {
    coffer::Error::new(coffer::ErrorKind::InvalidInput, message).into()
}

/// The backend flags as overrides of the configured backend's settings:
/// the library checks which kind each belongs to and what a kind requires.
pub fn backend_overrides(args: &BackendArgs) -> anyhow::Result<BackendOverrides> {
    let mut overrides = BackendOverrides::default();
    if let Some(name) = &args.store {
        overrides.store(name);
    }
    if let Some(kind) = args.backend {
        overrides.kind(kind);
    }
    let switch = |on: bool| on.then(|| "true".to_owned());
    for (flag, value) in [
        ("path", args.path.as_ref().map(|p| p.display().to_string())),
        ("bucket", args.bucket.clone()),
        ("region", args.region.clone()),
        ("endpoint", args.endpoint.clone()),
        ("access-key", args.access_key.clone()),
        ("secret-key", args.secret_key.clone()),
        ("profile", args.profile.clone()),
        ("storage-class", args.storage_class.clone()),
        ("virtual-host-style", switch(args.virtual_host_style)),
        ("container", args.container.clone()),
        ("account-name", args.account_name.clone()),
        ("account-key", args.account_key.clone()),
        ("sas-token", args.sas_token.clone()),
        ("connection-string", args.connection_string.clone()),
        ("access-tier", args.access_tier.clone()),
        ("create-bucket", switch(args.create_bucket)),
        ("object-lock", switch(args.object_lock)),
    ] {
        if let Some(value) = value {
            overrides.flag(flag, value)?;
        }
    }
    Ok(overrides)
}

/// `coffer health`: exit 0 when the backend answers, 8 when it does not.
pub async fn health(store: &Store, json: bool) -> anyhow::Result<ExitCode> {
    let health = store.health().await;
    if json {
        print_json(&health)?;
    } else {
        let caps = &health.capabilities;
        print_fields(&[
            ("backend", health.backend.clone()),
            (
                "status",
                crate::output::backend_status(health.error.as_deref(), health.error_kind),
            ),
            ("latency", format!("{:.1} ms", health.latency_ms)),
            ("capabilities", crate::output::capabilities_line(caps)),
        ]);
    }
    Ok(match health.ok {
        true => ExitCode::SUCCESS,
        false => ExitCode::from(exit_code(
            health.error_kind.unwrap_or(coffer::ErrorKind::BackendUnavailable),
        )),
    })
}

/// `coffer sync`: drain the spool once, or with `--watch` every interval until stopped.
pub async fn sync(store: &Store, watch: bool, interval: Option<&str>, json: bool) -> anyhow::Result<ExitCode> {
    if !watch {
        let report = store.sync().await?;
        print_drain(&report, json)?;
        return Ok(match report.failed.is_empty() {
            true => ExitCode::SUCCESS,
            false => ExitCode::from(crate::output::EXIT_OTHER),
        });
    }
    let every = match interval {
        Some(text) => humantime::parse_duration(text)
            .map_err(|e| invalid(format!("--interval {text:?}: {e}; expected a span like 10s or 1m")))?,
        None => Duration::from_secs(10),
    };
    let mut stop = std::pin::pin!(crate::hooks::shutdown_signal());
    let _flushing = store.spawn_hot(coffer::hot::FLUSH_INTERVAL);
    loop {
        crate::restore::poll(store, json).await?;
        match store.sync().await {
            Ok(report) if report.moved > 0 || !report.failed.is_empty() => print_drain(&report, json)?,
            Ok(_) => {}
            Err(e) if e.kind() == coffer::ErrorKind::BackendUnavailable => {
                if !json {
                    eprintln!(
                        "coffer: backend still unreachable ({}); retrying in {}",
                        e.message(),
                        coffer::time::format_span(every)
                    );
                }
            }
            Err(e) => return Err(e.into()),
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = &mut stop => return Ok(ExitCode::SUCCESS),
        }
    }
}

fn print_drain(report: &coffer::DrainReport, json: bool) -> anyhow::Result<()> {
    if json {
        return print_json(report);
    }
    println!(
        "moved {} ({}) from the spool to the backend, each verified",
        crate::output::count(report.moved, "file"),
        crate::output::human_size(report.bytes)
    );
    for (path, error) in &report.failed {
        println!("failed: {path}: {error} (kept in the spool)");
    }
    Ok(())
}

/// `coffer url`: a presigned URL for reading a version or uploading the next.
pub async fn url(store: &Store, args: UrlArgs, json: bool) -> anyhow::Result<()> {
    let expires = Duration::from_secs(args.expires);
    if !store.presigns() {
        return link(store, args, json).await;
    }
    match args.method {
        UrlMethod::Get => {
            let version = version_arg(store, &args.key, args.version.as_deref()).await?;
            let url = store.presign_get(&args.key, version.as_ref(), expires).await?;
            if json {
                print_json(&json!({
                    "key": args.key, "method": url.method, "url": url.url, "headers": header_map(&url.headers),
                    "expires_in": args.expires,
                }))?;
            } else {
                println!("{}", url.url);
            }
        }
        UrlMethod::Put => {
            if args.version.is_some() {
                return Err(invalid(
                    "--version names an existing version to read; an upload makes a new one (drop --version)"
                        .to_owned(),
                ));
            }
            let upload = store.presign_put(&args.key, expires).await?;
            if json {
                print_json(&json!({
                    "key": upload.key, "method": upload.url.method, "url": upload.url.url,
                    "headers": header_map(&upload.url.headers), "upload_id": upload.upload_id,
                    "expires_at": upload.expires_at, "commit": commit_command(&upload),
                }))?;
            } else {
                println!("{}", upload.url.url);
                let headers: String = upload
                    .url
                    .headers
                    .iter()
                    .map(|(name, value)| format!(" -H '{name}: {value}'"))
                    .collect();
                eprintln!(
                    "upload with: curl -X PUT{headers} --upload-file FILE '<url>'\nthen commit it: {}",
                    commit_command(&upload)
                );
            }
        }
    }
    Ok(())
}

/// `coffer url` where the backend cannot presign (local disk) or the store
/// is encrypted: a link through `coffer serve`, signed with the server key.
async fn link(store: &Store, args: UrlArgs, json: bool) -> anyhow::Result<()> {
    let (method, version) = match args.method {
        UrlMethod::Get => (
            LinkMethod::Get,
            version_arg(store, &args.key, args.version.as_deref()).await?,
        ),
        UrlMethod::Put if args.version.is_some() => {
            return Err(invalid(
                "--version names an existing version to read; an upload makes a new one (drop --version)".to_owned(),
            ));
        }
        UrlMethod::Put => (LinkMethod::Put, None),
    };
    let url = store
        .link(&args.key, version.as_ref(), method, Duration::from_secs(args.expires))
        .await?;
    if json {
        return print_json(&json!({
            "key": args.key, "method": url.method, "url": url.url, "headers": header_map(&url.headers),
            "expires_in": args.expires, "through_server": true,
        }));
    }
    println!("{}", url.url);
    if method == LinkMethod::Put {
        eprintln!("upload with: curl -X PUT --upload-file FILE '<url>' (coffer serve stores it as the next version)");
    }
    Ok(())
}

fn commit_command(upload: &coffer::PresignedUpload) -> String {
    format!(
        "coffer put '{}' --upload {}",
        upload.key.replace('\'', "'\\''"),
        upload.upload_id
    )
}

fn header_map(headers: &[(String, String)]) -> serde_json::Map<String, serde_json::Value> {
    headers
        .iter()
        .map(|(name, value)| (name.clone(), value.clone().into()))
        .collect()
}

/// `coffer tier move|show`.
pub async fn tier(store: &Store, command: TierCommand, json: bool) -> anyhow::Result<()> {
    match command {
        TierCommand::Move { key, version, to } => {
            let version = store.resolve_version(&key, &version).await?;
            let to: coffer::Tier = to.parse()?;
            let moved = store.move_to_tier(&key, &version, to).await?;
            if json {
                return print_json(&moved);
            }
            match moved.moved {
                true => println!(
                    "moved {} version {} ({}) to the {} tier",
                    moved.key,
                    moved.version_id,
                    human_size(moved.size),
                    moved.tier.as_str()
                ),
                false => println!(
                    "{} version {} is in the {} tier already",
                    moved.key,
                    moved.version_id,
                    moved.tier.as_str()
                ),
            }
        }
        TierCommand::Show { key, version } => {
            let version = version_arg(store, &key, version.as_deref()).await?;
            let tier = store.tier_of(&key, version.as_ref()).await?;
            if json {
                return print_json(&json!({ "key": key, "tier": tier }));
            }
            println!("{}", tier.as_str());
        }
    }
    Ok(())
}

/// `coffer migrate --to NAME [--switch]`.
pub async fn migrate(
    store: &Store,
    config: &Config,
    global: &GlobalArgs,
    to: &str,
    switch: bool,
    jobs: usize,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let config_file = global.config.clone().or_else(|| {
        Path::new(coffer::config::DEFAULT_CONFIG_FILE)
            .is_file()
            .then(|| coffer::config::DEFAULT_CONFIG_FILE.into())
    });
    if switch && config_file.is_none() {
        return Err(invalid(
            "--switch records the new backend in the config file, and there is none (--config FILE or ./coffer.toml)"
                .to_owned(),
        ));
    }
    let target = coffer::backend::open_backend(config.store(to)?, config).await?;
    let options = coffer::MigrateOptions {
        jobs,
        progress: TerminalProgress::for_terminal(!json),
    };
    let report = store.migrate_to(target.as_ref(), &options).await?;
    let switched = match (switch && report.is_complete(), &config_file) {
        (true, Some(file)) => {
            coffer::config::set_active_store(file, to)?;
            true
        }
        _ => false,
    };
    if json {
        let mut shown = serde_json::to_value(&report)?;
        shown["switched"] = switched.into();
        print_json(&shown)?;
    } else {
        for (path, why) in &report.failed {
            println!("failed {path}: {why}");
        }
        println!(
            "copied {} ({}) and {} to {}, each verified; {} and {} were there already; {} failed",
            crate::output::count(report.blobs_copied as u64, "blob"),
            human_size(report.bytes_copied),
            crate::output::count(report.manifests_copied as u64, "manifest"),
            report.target,
            crate::output::count(report.blobs_present as u64, "blob"),
            crate::output::count(report.manifests_present as u64, "manifest"),
            report.failed.len()
        );
        if switched {
            println!("this store now uses {to} (store = \"{to}\" in the config file)");
        } else if switch {
            println!("not switched: run the migration again until nothing fails");
        }
    }
    Ok(match report.is_complete() {
        true => ExitCode::SUCCESS,
        false => ExitCode::from(crate::output::EXIT_OTHER),
    })
}

/// `coffer import --from-store NAME`: a bucket's plain objects become versions.
pub async fn import_store(
    store: &Store,
    config: &Config,
    name: &str,
    source_prefix: String,
    prefix: String,
    jobs: usize,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let source = coffer::backend::open_backend(config.store(name)?, config).await?;
    let options = coffer::ImportBackendOptions {
        source_prefix,
        prefix,
        jobs,
    };
    let report = store.import_backend(source.as_ref(), &options).await?;
    if json {
        print_json(&report)?;
    } else {
        for (path, why) in &report.failed {
            println!("failed {path}: {why}");
        }
        println!(
            "imported {} ({}) from {name}; {} failed",
            crate::output::count(report.files as u64, "object"),
            human_size(report.bytes),
            report.failed.len()
        );
    }
    Ok(match report.failed.is_empty() {
        true => ExitCode::SUCCESS,
        false => ExitCode::from(crate::output::EXIT_OTHER),
    })
}
