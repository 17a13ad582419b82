//! One function per command: build the call from the arguments, call `Store`, print.

use std::process::ExitCode;

use coffer::{
    ByteRange, Config, CopyOptions, GetOptions, ListOptions, Metadata, ObjectVersion, PutOptions, Store, VersionId,
};
use futures::StreamExt;
use serde_json::json;
use tokio::io::AsyncWriteExt;

#[cfg(feature = "catalog-postgres")]
use crate::catalog;
use crate::cli::{Cli, Command, GetArgs, GlobalArgs, ListArgs, MetadataCommand, PutArgs};
use crate::output::{self, human_size, print_fields, print_json, print_table};
use crate::progress::{TerminalProgress, announce_total};
use crate::{bulk, hooks, info, keys, lifecycle, manage, protection, remote, restore};

/// Run the command and turn its outcome into an exit code and a one-line error.
pub async fn run(cli: Cli) -> ExitCode {
    let json = cli.global.json;
    let verbose = cli.global.verbose || std::env::var_os("RUST_LOG").is_some();
    match dispatch(cli).await {
        Ok(code) => code,
        Err(err) => {
            let (code, kind, message) = match err.downcast_ref::<coffer::Error>() {
                Some(e) => (output::exit_code(e.kind()), e.kind().as_str(), e.message().to_owned()),
                None => (output::EXIT_OTHER, "other", format!("{err:#}")),
            };
            let message = message.replace('\n', " ");
            if json {
                eprintln!("{}", json!({ "error": { "kind": kind, "message": message } }));
            } else {
                eprintln!("coffer: {message}");
            }
            if verbose {
                output::print_causes(err.downcast_ref::<coffer::Error>());
            }
            ExitCode::from(code)
        }
    }
}

fn config(global: &GlobalArgs) -> anyhow::Result<Config> {
    let backend = remote::backend_overrides(&global.backend)?;
    let mut config = Config::load_with(global.config.as_deref(), backend)?;
    if let Some(dir) = &global.data_dir {
        config.data_dir = dir.clone();
    }
    if let Some(url) = &global.catalog {
        config.catalog_url = Some(url.clone());
    }
    if let Some(user) = &global.user {
        config.user = Some(user.clone());
    }
    if let Some(spool) = &global.spool {
        config.spool = Some(spool.clone());
    }
    Ok(config)
}

async fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    let mut config = config(&cli.global)?;
    let json = cli.global.json;
    // Completion scripts need no store.
    if let Command::Completions { shell } = &cli.command {
        let mut command = <Cli as clap::CommandFactory>::command();
        let mut script = Vec::new();
        clap_complete::generate(*shell, &mut command, "coffer", &mut script);
        print!("{}", String::from_utf8_lossy(&script));
        return Ok(ExitCode::SUCCESS);
    }
    // A new key file is made without a store.
    if let Command::Keys(crate::cli::KeysCommand::Generate { file }) = &cli.command {
        return keys::generate(file, json).map(|()| ExitCode::SUCCESS);
    }
    // `init --encrypt` encrypts the new store with the key it names.
    let encrypt = match &cli.command {
        Command::Init(args) => args.encrypt.as_deref().map(keys::encryption_from_spec).transpose()?,
        _ => None,
    };
    if let Some(encryption) = &encrypt {
        config.encryption = encryption.clone();
    }
    // Catalog commands work on catalogs alone, without opening (or creating) a store.
    if let Command::Catalog(command) = cli.command {
        #[cfg(feature = "catalog-postgres")]
        return catalog::run(&config, command, json).await.map(|()| ExitCode::SUCCESS);
        // Its one command copies into PostgreSQL.
        #[cfg(not(feature = "catalog-postgres"))]
        {
            let crate::cli::CatalogCommand::Migrate { .. } = command;
            return Err(coffer::Error::not_built("catalog migrate (into PostgreSQL)", "catalog-postgres").into());
        }
    }
    // `coffer serve` comes with the cargo feature `server`.
    #[cfg(not(feature = "server"))]
    if let Command::Serve(_) = &cli.command {
        return Err(coffer::Error::not_built("coffer serve", "server").into());
    }
    if jobs_flag(&cli.command) == Some(0) {
        return Err(invalid_input("--jobs must be at least 1"));
    }
    let store = if creates_store(&cli.command) {
        Store::open(&config).await?
    } else {
        Store::open_existing(&config).await?
    };
    match cli.command {
        Command::Catalog(_) | Command::Completions { .. } => {}
        Command::Hooks(command) => return hooks::run(&store, command, json).await,
        Command::Events(command) => hooks::events(&store, command, json).await?,
        Command::Init(_) => {
            if let Some(source) = config.encryption.source()?.filter(|_| encrypt.is_some()) {
                let file = cli
                    .global
                    .config
                    .clone()
                    .unwrap_or_else(|| coffer::config::DEFAULT_CONFIG_FILE.into());
                // The key must open the store before the config names it.
                if let Some(problem) = store.key_status().await?.key_error {
                    return Err(coffer::Error::new(coffer::ErrorKind::KeyUnavailable, problem).into());
                }
                keys::record_encryption(&config, &file, &source, json)?;
            }
            init(&store, &config, json).await?
        }
        Command::Keys(command) => keys::run(&store, command, json).await?,
        Command::Put(args) => put(&store, args, json).await?,
        Command::Get(args) => get(&store, args, json).await?,
        Command::Exists { key } => return exists(&store, &key, json).await,
        Command::Metadata {
            command:
                Some(MetadataCommand::Set {
                    key,
                    entries,
                    remove,
                    content_type,
                }),
            ..
        } => {
            let set = parse_pairs("metadata", &entries)?;
            let changed = store.update_metadata(&key, set, &remove, content_type).await?;
            report_change(&changed, "new version with the changed metadata:", json)?;
        }
        Command::Metadata {
            key: Some(key),
            version,
            ..
        } => metadata(&store, &key, version.as_deref(), json).await?,
        Command::Metadata { .. } => return Err(invalid_input("give a KEY")),
        Command::List(args) => list(&store, args, json).await?,
        Command::Copy {
            source,
            destination,
            version,
        } => {
            let options = CopyOptions {
                source_version: version_arg(&store, &source, version.as_deref()).await?,
                ..CopyOptions::default()
            };
            let copied = store.copy(&source, &destination, options).await?;
            report_change(&copied, "copied", json)?;
        }
        Command::Delete(args) => bulk::delete(&store, args, json).await?,
        Command::Undelete { key, comment } => bulk::undelete(&store, &key, comment.as_deref(), json).await?,
        Command::Versions { key, limit } => versions(&store, &key, limit, json).await?,
        Command::Info => info::info(&store, json).await?,
        Command::Hot(command) => info::hot(&store, command, json).await?,
        Command::Bundle(command) => crate::bundle::run(&store, command, json).await?,
        Command::Token(command) => crate::tokens::run(&store, command, json).await?,
        Command::Health => return remote::health(&store, json).await,
        #[cfg(feature = "server")]
        Command::Serve(args) => crate::serve::run(&store, &config, args).await?,
        #[cfg(not(feature = "server"))]
        Command::Serve(_) => {} // refused before the store was opened
        Command::Url(args) => remote::url(&store, args, json).await?,
        Command::Sync { watch, interval } => return remote::sync(&store, watch, interval.as_deref(), json).await,
        Command::History { key, limit } => manage::history(&store, &key, limit, json).await?,
        Command::Rollback { key, version, comment } => {
            manage::rollback(&store, &key, &version, comment.as_deref(), json).await?
        }
        Command::Compare { key, from, to } => manage::compare(&store, &key, &from, &to, json).await?,
        Command::Tag {
            key,
            version,
            tags,
            remove,
        } => manage::tag(&store, &key, &version, &tags, &remove, json).await?,
        Command::Comment { key, version, text } => manage::comment(&store, &key, &version, &text, json).await?,
        Command::Prune(args) => manage::prune(&store, args, json).await?,
        Command::Retention(command) => protection::retention(&store, command, json).await?,
        Command::LegalHold(command) => protection::legal_hold(&store, command, json).await?,
        Command::Lifecycle(command) => return lifecycle::run(&store, command, json).await,
        Command::Restore(args) => restore::run(&store, args, json).await?,
        Command::Audit(args) => manage::audit(&store, args, json).await?,
        Command::Search(args) => manage::search(&store, args, json).await?,
        Command::Verify(args) => return manage::verify(&store, args, json).await,
        Command::Reindex { into } => manage::reindex(&store, &into, json).await?,
        Command::Import {
            dir,
            selection,
            from_store,
            source_prefix,
            prefix,
            jobs,
        } => {
            return match (dir, from_store) {
                (_, Some(name)) => {
                    remote::import_store(&store, &config, &name, source_prefix, prefix, jobs, json).await
                }
                (Some(dir), None) => manage::import(&store, &dir, selection, prefix, jobs, json).await,
                (None, None) => Err(anyhow::anyhow!("a directory or --from-store is needed")),
            };
        }
        Command::Migrate { to, switch, jobs } => {
            return remote::migrate(&store, &config, &cli.global, &to, switch, jobs, json).await;
        }
        Command::Tier(command) => remote::tier(&store, command, json).await?,
        Command::Export {
            dir,
            prefix,
            version_at,
            jobs,
            no_clobber,
        } => return manage::export(&store, &dir, prefix, version_at.as_deref(), jobs, no_clobber, json).await,
    }
    Ok(ExitCode::SUCCESS)
}

/// Only `init` and the writes that can start a store (put, import, adding a
/// hook; reindex, which rebuilds a lost catalog) create one; every other
/// command needs an existing store and creates nothing.
fn creates_store(command: &Command) -> bool {
    match command {
        // A dry run changes nothing: it creates no store either.
        Command::Import { selection, .. } => !selection.dry_run,
        _ => matches!(
            command,
            Command::Init(_)
                | Command::Put(_)
                | Command::Reindex { .. }
                | Command::Hooks(crate::cli::HooksCommand::Add(_))
                | Command::Token(crate::cli::TokenCommand::Create(_))
                | Command::Serve(_)
        ),
    }
}

/// The `--jobs` of a command that takes one (0 is refused, as every limit of 0).
fn jobs_flag(command: &Command) -> Option<usize> {
    match command {
        Command::Import { jobs, .. } | Command::Export { jobs, .. } | Command::Migrate { jobs, .. } => Some(*jobs),
        Command::Verify(args) => Some(args.jobs),
        _ => None,
    }
}

/// An optional version argument: an id, or `latest` (see [`Store::resolve_version`]).
pub async fn version_arg(store: &Store, key: &str, text: Option<&str>) -> anyhow::Result<Option<VersionId>> {
    match text {
        None => Ok(None),
        Some(text) => Ok(Some(store.resolve_version(key, text).await?)),
    }
}

/// An error of kind invalid input (exit code 5).
pub fn invalid_input(message: &str) -> anyhow::Error {
    coffer::Error::new(coffer::ErrorKind::InvalidInput, message).into()
}

/// `NAME=VALUE` arguments (metadata, tags) as a map.
pub fn parse_pairs(what: &str, pairs: &[String]) -> anyhow::Result<Metadata> {
    Ok(parse_pair_list(what, pairs)?.into_iter().collect())
}

/// `NAME=VALUE` arguments as a list, in the order given.
pub fn parse_pair_list(what: &str, pairs: &[String]) -> anyhow::Result<Vec<(String, String)>> {
    pairs
        .iter()
        .map(|pair| {
            let (name, value) = pair
                .split_once('=')
                .ok_or_else(|| invalid_input(&format!("{what} {pair:?} is not NAME=VALUE")))?;
            Ok((name.to_owned(), value.to_owned()))
        })
        .collect()
}

async fn init(store: &Store, config: &Config, json: bool) -> anyhow::Result<()> {
    let info = store.info().await?;
    if json {
        print_json(&json!({ "data_dir": config.data_dir, "backend": info.backend, "catalog": info.catalog }))
    } else {
        println!("initialized coffer store in {}", config.data_dir.display());
        print_fields(&[("backend", info.backend), ("catalog", info.catalog)]);
        Ok(())
    }
}

pub fn report_change(version: &ObjectVersion, what: &str, json: bool) -> anyhow::Result<()> {
    if json {
        return print_json(version);
    }
    if version.is_delete_marker {
        println!("{what} {} version {}", version.key, version.version_id);
    } else {
        println!(
            "{what} {} version {} ({}, etag {})",
            version.key,
            version.version_id,
            human_size(version.size),
            version.etag.as_deref().unwrap_or("-")
        );
    }
    Ok(())
}

async fn put(store: &Store, args: PutArgs, json: bool) -> anyhow::Result<()> {
    let if_none_match = match args.if_none_match.as_deref() {
        None => false,
        Some("*") => true,
        Some(other) => {
            return Err(coffer::Error::new(
                coffer::ErrorKind::InvalidInput,
                format!("--if-none-match accepts only '*', not {other:?}"),
            )
            .into());
        }
    };
    let progress = TerminalProgress::for_terminal(!json);
    let options = PutOptions {
        content_type: args.content_type,
        metadata: parse_pairs("metadata", &args.metadata)?,
        tags: parse_pairs("tag", &args.tags)?,
        if_match: args.if_match,
        if_none_match,
        storage_class: args.storage_class,
        retention: protection::requested(&args.retention)?,
        legal_hold: args.legal_hold,
        progress: progress.clone(),
    };
    if let Some(upload) = &args.upload {
        let upload_id: VersionId = upload.parse()?;
        let version = store.commit_upload(&args.key, &upload_id, options).await?;
        return report_change(&version, "stored (from the upload)", json);
    }
    let version = match &args.file {
        Some(path) => {
            let file = tokio::fs::File::open(path)
                .await
                .map_err(|e| io_error(&format!("cannot open {}", path.display()), e))?;
            if let Ok(meta) = file.metadata().await {
                announce_total(&progress, meta.len());
            }
            store.put(&args.key, file, options).await?
        }
        None => {
            // Without --file a put reads standard input: at a terminal, say so rather than wait silently.
            if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
                eprintln!("reading from standard input (Ctrl-D to end)");
            }
            store.put(&args.key, tokio::io::stdin(), options).await?
        }
    };
    if store.is_spooled(&version).await {
        // Stored and durable, but on this machine until the backend answers again.
        if json {
            let mut shown = serde_json::to_value(&version)?;
            shown["spooled"] = true.into();
            return print_json(&shown);
        }
        report_change(&version, "stored", json)?;
        eprintln!("coffer: the backend did not answer; the content waits in the local spool (coffer sync moves it)");
        return Ok(());
    }
    report_change(&version, "stored", json)
}

fn io_error(context: &str, err: std::io::Error) -> coffer::Error {
    coffer::Error::new(coffer::ErrorKind::Io, format!("{context}: {err}"))
}

async fn get(store: &Store, mut args: GetArgs, json: bool) -> anyhow::Result<()> {
    // `--output -` is standard output, as with no --output.
    args.output = args.output.filter(|path| path.as_os_str() != "-");
    let options = GetOptions {
        version_id: version_arg(store, &args.key, args.version.as_deref()).await?,
        range: args.range.as_deref().map(str::parse::<ByteRange>).transpose()?,
        progress: TerminalProgress::for_terminal(!json && args.output.is_some()),
    };
    let output = args
        .output
        .as_deref()
        .map(|path| output_file(path, &args.key))
        .transpose()?;
    let result = store.get(&args.key, options).await?;
    match &output {
        Some(path) => {
            coffer::body::save_to_file(path, result.body).await?;
            if json {
                print_json(
                    &json!({ "version": result.version, "range": [result.range.start, result.range.end], "output": path }),
                )?;
            }
        }
        None => {
            let mut stdout = tokio::io::stdout();
            let mut body = result.body;
            while let Some(chunk) = body.next().await {
                stdout.write_all(&chunk?).await.map_err(output::stdout_failed)?;
            }
            stdout.flush().await.map_err(output::stdout_failed)?;
        }
    }
    Ok(())
}

/// Where `get --output PATH` writes: PATH, or for a directory (one that
/// exists, or PATH ending in `/`) the key's last segment inside it.
fn output_file(path: &std::path::Path, key: &str) -> anyhow::Result<std::path::PathBuf> {
    let names_dir = path.as_os_str().to_string_lossy().ends_with('/');
    if !names_dir && !path.is_dir() {
        return Ok(path.to_path_buf());
    }
    if !path.is_dir() {
        return Err(io_error(
            &format!("cannot write into {}", path.display()),
            std::io::Error::from(std::io::ErrorKind::NotFound),
        )
        .into());
    }
    match key.rsplit('/').next() {
        Some(name) if !name.is_empty() => Ok(path.join(name)),
        _ => Err(invalid_input(&format!(
            "key {key:?} has no last segment to name a file in {}",
            path.display()
        ))),
    }
}

async fn exists(store: &Store, key: &str, json: bool) -> anyhow::Result<ExitCode> {
    let exists = store.exists(key).await?;
    if json {
        print_json(&json!({ "key": key, "exists": exists }))?;
    }
    Ok(if exists {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(output::exit_code(coffer::ErrorKind::NotFound))
    })
}

async fn metadata(store: &Store, key: &str, version: Option<&str>, json: bool) -> anyhow::Result<()> {
    let version = store
        .head(key, version_arg(store, key, version).await?.as_ref())
        .await?;
    if json {
        return print_json(&version);
    }
    print_fields(&output::version_fields(&version));
    Ok(())
}

async fn list(store: &Store, args: ListArgs, json: bool) -> anyhow::Result<()> {
    let options = ListOptions {
        prefix: args.prefix,
        delimiter: args.delimiter,
        max_keys: args.max_keys,
        start_after: args.start_after,
    };
    if args.versions || args.deleted {
        return bulk::list(store, &options, args.versions, json).await;
    }
    let page = store.list(&options).await?;
    if json {
        return print_json(&page);
    }
    let mut rows: Vec<Vec<String>> = page
        .common_prefixes
        .iter()
        .map(|p| vec![p.clone(), "PREFIX".into(), String::new(), String::new()])
        .collect();
    rows.extend(page.objects.iter().map(|v| {
        vec![
            v.key.to_string(),
            human_size(v.size),
            v.created_at.to_string(),
            v.version_id.to_string(),
        ]
    }));
    rows.sort_by(|a, b| a[0].cmp(&b[0]));
    print_table(&["KEY", "SIZE", "MODIFIED", "VERSION"], &rows);
    if let Some(next) = &page.next_start_after {
        println!("(more: --start-after {next:?})");
    }
    Ok(())
}

async fn versions(store: &Store, key: &str, limit: Option<usize>, json: bool) -> anyhow::Result<()> {
    let versions = match limit {
        Some(limit) => store.latest_versions(key, limit).await?,
        None => store.versions(key).await?,
    };
    if json {
        return print_json(&versions);
    }
    let rows: Vec<Vec<String>> = versions
        .iter()
        .map(|v| {
            vec![
                v.version_id.to_string(),
                if v.is_latest { "*".into() } else { String::new() },
                match (v.is_delete_marker, &v.damaged) {
                    (true, _) => "delete marker".into(),
                    (false, None) => human_size(v.size),
                    (false, Some(_)) => format!("{} DAMAGED", human_size(v.size)),
                },
                v.created_at.to_string(),
                v.created_by.clone(),
                v.etag.clone().unwrap_or_default(),
                manage::tags_cell(&v.tags),
                if v.comments.is_empty() {
                    String::new()
                } else {
                    v.comments.len().to_string()
                },
            ]
        })
        .collect();
    print_table(
        &["VERSION", "LATEST", "SIZE", "CREATED", "BY", "ETAG", "TAGS", "COMMENTS"],
        &rows,
    );
    Ok(())
}
