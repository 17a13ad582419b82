//! The backend flags, and the commands only object stores give meaning to:
//! `health`, `url`, `sync`, `tier`, `migrate` and `import --from-store`.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use coffer::{BackendConfig, Config, Store};
use serde_json::json;

use crate::cli::{BackendArgs, BackendKind, GlobalArgs, TierCommand, UrlArgs, UrlMethod};
use crate::commands::parse_version;
use crate::output::{exit_code, human_size, print_fields, print_json};
use crate::progress::TerminalProgress;

fn invalid(message: String) -> anyhow::Error {
    coffer::Error::new(coffer::ErrorKind::InvalidInput, message).into()
}

/// Apply the backend flags to `config`: `--store` picks a named store, then
/// `--backend` and the settings of that kind override what the config says.
pub fn apply_backend_args(config: &mut Config, args: &BackendArgs) -> anyhow::Result<()> {
    if let Some(name) = &args.store {
        config.select_store(name)?;
    }
    match args.backend {
        Some(BackendKind::Local) if !matches!(config.backend, BackendConfig::Fs { .. }) => {
            config.backend = BackendConfig::Fs { root: None };
        }
        #[cfg(feature = "backend-s3")]
        Some(BackendKind::S3) if !matches!(config.backend, BackendConfig::S3(_)) => {
            config.backend = BackendConfig::S3(Box::default());
        }
        #[cfg(not(feature = "backend-s3"))]
        Some(BackendKind::S3) => return Err(coffer::Error::not_built("--backend s3", "backend-s3").into()),
        #[cfg(feature = "backend-azblob")]
        Some(BackendKind::Azure) if !matches!(config.backend, BackendConfig::Azure(_)) => {
            config.backend = BackendConfig::Azure(Box::default());
        }
        #[cfg(not(feature = "backend-azblob"))]
        Some(BackendKind::Azure) => return Err(coffer::Error::not_built("--backend azure", "backend-azblob").into()),
        _ => {}
    }
    let kind = match &config.backend {
        BackendConfig::Fs { .. } | BackendConfig::Memory => "local",
        #[cfg(feature = "backend-s3")]
        BackendConfig::S3(_) => "s3",
        #[cfg(feature = "backend-azblob")]
        BackendConfig::Azure(_) => "azure",
    };
    // Each flag belongs to one kind (or two); one given for another kind is a mistake worth naming.
    let given = |name: &'static str, set: bool, kinds: &[&str]| -> anyhow::Result<()> {
        if set && !kinds.contains(&kind) {
            return Err(invalid(format!(
                "--{name} is a setting of the {} backend, and this store's backend is {kind} (use --backend)",
                kinds.join(" or ")
            )));
        }
        Ok(())
    };
    given("path", args.path.is_some(), &["local"])?;
    for (name, set) in [
        ("bucket", args.bucket.is_some()),
        ("region", args.region.is_some()),
        ("access-key", args.access_key.is_some()),
        ("secret-key", args.secret_key.is_some()),
        ("profile", args.profile.is_some()),
        ("storage-class", args.storage_class.is_some()),
        ("virtual-host-style", args.virtual_host_style),
    ] {
        given(name, set, &["s3"])?;
    }
    for (name, set) in [
        ("container", args.container.is_some()),
        ("account-name", args.account_name.is_some()),
        ("account-key", args.account_key.is_some()),
        ("sas-token", args.sas_token.is_some()),
        ("connection-string", args.connection_string.is_some()),
        ("access-tier", args.access_tier.is_some()),
    ] {
        given(name, set, &["azure"])?;
    }
    given("endpoint", args.endpoint.is_some(), &["s3", "azure"])?;
    given("create-bucket", args.create_bucket, &["s3", "azure"])?;
    #[cfg(any(feature = "backend-s3", feature = "backend-azblob"))]
    let set = |setting: &mut Option<String>, flag: &Option<String>| {
        if let Some(value) = flag {
            *setting = Some(value.clone());
        }
    };
    match &mut config.backend {
        BackendConfig::Fs { root } => {
            if let Some(path) = &args.path {
                *root = Some(path.clone());
            }
        }
        BackendConfig::Memory => {}
        #[cfg(feature = "backend-s3")]
        BackendConfig::S3(s3) => {
            if let Some(bucket) = &args.bucket {
                s3.bucket = bucket.clone();
            }
            set(&mut s3.region, &args.region);
            set(&mut s3.endpoint, &args.endpoint);
            set(&mut s3.access_key_id, &args.access_key);
            set(&mut s3.secret_access_key, &args.secret_key);
            set(&mut s3.profile, &args.profile);
            set(&mut s3.storage_class, &args.storage_class);
            s3.virtual_host_style |= args.virtual_host_style;
            s3.create_bucket |= args.create_bucket;
            if s3.bucket.is_empty() {
                return Err(invalid(
                    "the S3 backend needs a bucket (--bucket, COFFER_S3_BUCKET or bucket in the config)".to_owned(),
                ));
            }
        }
        #[cfg(feature = "backend-azblob")]
        BackendConfig::Azure(azure) => {
            if let Some(container) = &args.container {
                azure.container = container.clone();
            }
            set(&mut azure.account_name, &args.account_name);
            set(&mut azure.account_key, &args.account_key);
            set(&mut azure.sas_token, &args.sas_token);
            set(&mut azure.connection_string, &args.connection_string);
            set(&mut azure.endpoint, &args.endpoint);
            set(&mut azure.access_tier, &args.access_tier);
            azure.create_container |= args.create_bucket;
            if azure.container.is_empty() {
                return Err(invalid(
                    "the Azure backend needs a container (--container, COFFER_AZURE_CONTAINER or container in the config)"
                        .to_owned(),
                ));
            }
        }
    }
    Ok(())
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
            ("status", crate::output::backend_status(health.error.as_deref())),
            ("latency", format!("{:.1} ms", health.latency_ms)),
            ("capabilities", crate::output::capabilities_line(caps)),
        ]);
    }
    Ok(match health.ok {
        true => ExitCode::SUCCESS,
        false => ExitCode::from(exit_code(coffer::ErrorKind::BackendUnavailable)),
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
    loop {
        match store.sync().await {
            Ok(report) if report.moved > 0 || !report.failed.is_empty() => print_drain(&report, json)?,
            Ok(_) => {}
            Err(e) if e.kind() == coffer::ErrorKind::BackendUnavailable => {
                if !json {
                    eprintln!(
                        "coffer: backend still unreachable ({}); retrying in {}",
                        e.message(),
                        humantime::format_duration(every)
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
        "moved {} files ({}) from the spool to the backend, each verified",
        report.moved,
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
    match args.method {
        UrlMethod::Get => {
            let version = parse_version(args.version.as_deref())?;
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
            let version = parse_version(Some(&version))?.ok_or_else(|| anyhow::anyhow!("a version id is needed"))?;
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
            let version = parse_version(version.as_deref())?;
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
        Path::new(coffer::DEFAULT_CONFIG_FILE)
            .is_file()
            .then(|| coffer::DEFAULT_CONFIG_FILE.into())
    });
    if switch && config_file.is_none() {
        return Err(invalid(
            "--switch records the new backend in the config file, and there is none (--config FILE or ./coffer.toml)"
                .to_owned(),
        ));
    }
    let target = coffer::open_backend(config.store(to)?, config).await?;
    let options = coffer::MigrateOptions {
        jobs,
        progress: TerminalProgress::for_terminal(!json),
    };
    let report = store.migrate_to(target.as_ref(), &options).await?;
    let switched = match (switch && report.is_complete(), &config_file) {
        (true, Some(file)) => {
            coffer::set_active_store(file, to)?;
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
            "copied {} blobs ({}) and {} manifests to {}, each verified; {} blobs and {} manifests were there already; {} failed",
            report.blobs_copied,
            human_size(report.bytes_copied),
            report.manifests_copied,
            report.target,
            report.blobs_present,
            report.manifests_present,
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
    let source = coffer::open_backend(config.store(name)?, config).await?;
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
            "imported {} objects ({}) from {name}; {} failed",
            report.files,
            human_size(report.bytes),
            report.failed.len()
        );
    }
    Ok(match report.failed.is_empty() {
        true => ExitCode::SUCCESS,
        false => ExitCode::from(crate::output::EXIT_OTHER),
    })
}
