//! `coffer hooks ...` and `coffer events ...`.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use coffer::Store;
use coffer::events::sinks::{
    AmqpConfig, ExecConfig, FileLogConfig, FileLogFormat, NatsConfig, SqsConfig, WebhookConfig,
};
use coffer::events::{
    Backoff, DispatchReport, DispatcherOptions, EventFilter, HookDefinition, HookSpec, MetadataPredicate,
};
use serde_json::json;

use crate::cli::{AddHook, EventsCommand, HookOptions, HooksCommand, RunArgs};
use crate::commands::invalid_input;
use crate::output::{self, print_fields, print_json, print_table};

pub async fn run(store: &Store, command: HooksCommand, json: bool) -> anyhow::Result<ExitCode> {
    match command {
        HooksCommand::Add(add) => add_hook(store, add, json).await?,
        HooksCommand::List => list(store, json).await?,
        HooksCommand::Remove { name } => {
            store.remove_hook(&name).await?;
            if json {
                print_json(&json!({ "removed": name }))?;
            } else {
                println!("removed hook {name}");
            }
        }
        HooksCommand::Test { name } => {
            let took = store.test_hook(&name).await?;
            let ms = took.as_secs_f64() * 1000.0;
            if json {
                print_json(&json!({ "hook": name, "delivered": true, "ms": ms }))?;
            } else {
                println!("hook {name}: test event delivered in {ms:.1} ms");
            }
        }
        HooksCommand::Stats => stats(store, json).await?,
        HooksCommand::Replay { name } => {
            let replayed = store.replay_hooks(name.as_deref()).await?;
            if json {
                print_json(&json!({ "replayed": replayed }))?;
            } else {
                println!("{} will be retried", output::count(replayed, "dead delivery"));
            }
        }
        HooksCommand::Dead { name, limit } => dead(store, name.as_deref(), limit, json).await?,
        HooksCommand::Run(args) => run_dispatcher(store, args, json).await?,
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn events(store: &Store, command: EventsCommand, json: bool) -> anyhow::Result<()> {
    let EventsCommand::Fire { event_type, data, key } = command;
    let data: serde_json::Value =
        serde_json::from_str(&data).map_err(|e| invalid_input(&format!("--data is not JSON: {e}")))?;
    let event = store.fire_event(&event_type, key.as_deref(), data).await?;
    if json {
        return print_json(&event);
    }
    println!("fired {} {}", event.event_type, event.id);
    Ok(())
}

/// A span of a flag (`10s`, `30d`): above zero.
pub fn span(flag: &str, text: &str) -> anyhow::Result<Duration> {
    let span = humantime::parse_duration(text.trim())
        .map_err(|e| invalid_input(&format!("{flag} {text:?}: {e}; expected a span like 10s or 2m")))?;
    if span.is_zero() {
        return Err(invalid_input(&format!("{flag} must be above zero")));
    }
    Ok(span)
}

fn millis(flag: &str, text: &str) -> anyhow::Result<u64> {
    Ok(u64::try_from(span(flag, text)?.as_millis()).unwrap_or(u64::MAX))
}

fn filter(options: &HookOptions) -> anyhow::Result<EventFilter> {
    Ok(EventFilter {
        events: options
            .events
            .iter()
            .map(|e| e.trim().to_owned())
            .filter(|e| !e.is_empty())
            .collect(),
        prefix: options.prefix.clone(),
        glob: options.glob.clone(),
        metadata: options
            .conditions
            .iter()
            .map(|c| MetadataPredicate::parse(c))
            .collect::<coffer::Result<_>>()?,
    })
}

async fn add_hook(store: &Store, add: AddHook, json: bool) -> anyhow::Result<()> {
    let (name, spec, options) = match add {
        AddHook::Webhook {
            name,
            url,
            method,
            headers,
            secret,
            timeout,
            template,
            template_file,
            options,
        } => {
            let mut config = WebhookConfig::new(url);
            config.method = method.to_ascii_uppercase();
            config.timeout_ms = millis("--timeout", &timeout)?;
            config.secret = secret;
            config.headers = headers
                .iter()
                .map(|header| match header.split_once(':') {
                    Some((name, value)) => Ok((name.trim().to_owned(), value.trim().to_owned())),
                    None => Err(invalid_input(&format!("--header {header:?}: expected NAME:VALUE"))),
                })
                .collect::<anyhow::Result<BTreeMap<_, _>>>()?;
            config.template = match template_file {
                Some(path) => Some(std::fs::read_to_string(&path).map_err(|e| {
                    coffer::Error::new(coffer::ErrorKind::Io, format!("cannot read {}: {e}", path.display()))
                })?),
                None => template,
            };
            (name, HookSpec::Webhook(config), options)
        }
        AddHook::Filelog {
            name,
            path,
            format,
            options,
        } => {
            let format = match format.as_str() {
                "json" => FileLogFormat::Json,
                "text" => FileLogFormat::Text,
                other => return Err(invalid_input(&format!("--format {other:?}: expected json or text"))),
            };
            // Relative paths are taken from here, not from wherever a dispatcher later runs.
            let path = std::path::absolute(&path).unwrap_or(path);
            (name, HookSpec::Filelog(FileLogConfig { path, format }), options)
        }
        AddHook::Exec {
            name,
            command,
            timeout,
            options,
        } => {
            let timeout_ms = millis("--timeout", &timeout)?;
            (name, HookSpec::Exec(ExecConfig { command, timeout_ms }), options)
        }
        AddHook::Nats {
            name,
            url,
            subject,
            stream,
            user,
            password,
            token,
            options,
        } => {
            let config = NatsConfig {
                url,
                subject,
                stream,
                user,
                password,
                token,
            };
            (name, HookSpec::Nats(config), options)
        }
        AddHook::Amqp {
            name,
            url,
            exchange,
            routing_key,
            queue,
            options,
        } => {
            let config = AmqpConfig {
                url,
                exchange,
                routing_key,
                queue,
            };
            (name, HookSpec::Amqp(config), options)
        }
        AddHook::Sqs {
            name,
            queue_url,
            region,
            endpoint,
            access_key,
            secret_key,
            session_token,
            options,
        } => {
            let config = SqsConfig {
                queue_url,
                region,
                endpoint,
                access_key_id: access_key,
                secret_access_key: secret_key,
                session_token,
            };
            (name, HookSpec::Sqs(config), options)
        }
    };
    let mut hook = store.new_hook(&name, spec, filter(&options)?);
    hook.synchronous = options.sync;
    hook.max_attempts = options.attempts;
    store.add_hook(&hook, options.replace).await?;
    if json {
        return print_json(&hook.redacted());
    }
    println!("added {} hook {name}", hook.spec.kind());
    Ok(())
}

/// A hook's filter in one line: `object.* under invoices/ where doc_type=invoice`.
fn describe_filter(filter: &EventFilter) -> String {
    let mut parts = vec![if filter.events.is_empty() {
        "all events".to_owned()
    } else {
        filter.events.join(",")
    }];
    if let Some(prefix) = &filter.prefix {
        parts.push(format!("under {prefix}"));
    }
    if let Some(glob) = &filter.glob {
        parts.push(format!("matching {glob}"));
    }
    if !filter.metadata.is_empty() {
        let conditions: Vec<String> = filter.metadata.iter().map(ToString::to_string).collect();
        parts.push(format!("where {}", conditions.join(" and ")));
    }
    parts.join(" ")
}

/// Where a hook delivers, without secrets.
fn describe_target(hook: &HookDefinition) -> String {
    match &hook.spec.redacted() {
        HookSpec::Webhook(c) => format!("{} {}", c.method, c.url),
        HookSpec::Filelog(c) => format!(
            "{} ({})",
            c.path.display(),
            if c.format == FileLogFormat::Json {
                "json"
            } else {
                "text"
            }
        ),
        HookSpec::Exec(c) => c.command.clone(),
        HookSpec::Callback => "in-process callback".to_owned(),
        HookSpec::Nats(c) => format!("{} {}", c.url, c.subject),
        HookSpec::Amqp(c) => format!("{} exchange {:?} key {}", c.url, c.exchange, c.routing_key),
        HookSpec::Sqs(c) => c.queue_url.clone(),
    }
}

async fn list(store: &Store, json: bool) -> anyhow::Result<()> {
    let hooks = store.hooks().await?;
    if json {
        let shown: Vec<HookDefinition> = hooks.iter().map(HookDefinition::redacted).collect();
        return print_json(&shown);
    }
    let rows: Vec<Vec<String>> = hooks
        .iter()
        .map(|hook| {
            vec![
                hook.name.clone(),
                hook.spec.kind().to_owned(),
                describe_target(hook),
                describe_filter(&hook.filter),
                if hook.synchronous { "sync" } else { "async" }.to_owned(),
                hook.max_attempts.to_string(),
            ]
        })
        .collect();
    print_table(&["NAME", "KIND", "TARGET", "EVENTS", "MODE", "ATTEMPTS"], &rows);
    Ok(())
}

async fn stats(store: &Store, json: bool) -> anyhow::Result<()> {
    let report = store.hook_stats().await?;
    if json {
        return print_json(&report);
    }
    print_fields(&[
        ("events fired", report.events_fired.to_string()),
        ("events waiting", report.events_waiting.to_string()),
    ]);
    println!();
    let row = |s: &coffer::events::HookStats| {
        // No attempt yet: no rate or time to show.
        let ms = |value: f64| match s.executed {
            0 => "-".to_owned(),
            _ => format!("{value:.2}"),
        };
        vec![
            s.hook.clone(),
            s.kind.clone(),
            s.executed.to_string(),
            s.failed.to_string(),
            s.delivered.to_string(),
            s.success_rate
                .map_or_else(|| "never ran".to_owned(), |rate| format!("{:.1}%", rate * 100.0)),
            ms(s.avg_ms),
            ms(s.p95_ms),
            s.queue_depth.to_string(),
            s.dead_letters.to_string(),
        ]
    };
    let mut rows: Vec<Vec<String>> = report.hooks.iter().map(row).collect();
    let mut total = row(&report.total);
    total[0] = "(all)".to_owned();
    rows.push(total);
    print_table(
        &[
            "HOOK",
            "KIND",
            "EXECUTED",
            "FAILED",
            "DELIVERED",
            "SUCCESS",
            "AVG MS",
            "P95 MS",
            "QUEUED",
            "DEAD",
        ],
        &rows,
    );
    Ok(())
}

async fn dead(store: &Store, name: Option<&str>, limit: usize, json: bool) -> anyhow::Result<()> {
    let dead = store.dead_letters(name, limit).await?;
    if json {
        return print_json(&dead);
    }
    let rows: Vec<Vec<String>> = dead
        .iter()
        .map(|d| {
            vec![
                d.hook.clone(),
                d.event_id.clone(),
                d.event_type.clone(),
                d.subject.clone().unwrap_or_default(),
                d.attempts.to_string(),
                d.error.clone().unwrap_or_default(),
            ]
        })
        .collect();
    print_table(&["HOOK", "EVENT", "TYPE", "KEY", "ATTEMPTS", "LAST ERROR"], &rows);
    Ok(())
}

async fn run_dispatcher(store: &Store, args: RunArgs, json: bool) -> anyhow::Result<()> {
    for (flag, value) in [("--batch", args.batch), ("--concurrency", args.concurrency)] {
        if value == 0 {
            return Err(invalid_input(&format!("{flag} must be at least 1")));
        }
    }
    let options = DispatcherOptions {
        batch: args.batch,
        concurrency: args.concurrency,
        claim_timeout: span("--claim-timeout", &args.claim_timeout)?,
        lease_ttl: span("--lease", &args.lease)?,
        backoff: Backoff {
            base: span("--backoff", &args.backoff)?,
            max: span("--max-backoff", &args.max_backoff)?,
        },
        retention: Some(span("--retention", &args.retention)?),
        ..DispatcherOptions::default()
    };
    let report = if args.once {
        let mut dispatcher = store.dispatcher(options);
        let report = dispatcher.drain().await;
        dispatcher.release().await?;
        report?
    } else {
        if !json {
            let hooks = store.hooks().await?.len();
            eprintln!(
                "coffer: delivering events to {} until stopped (SIGINT or SIGTERM)",
                output::count(hooks as u64, "hook")
            );
        }
        let mut progress = RunProgress::for_terminal(!json);
        // Completed restores fire object.restored while events are delivered.
        let _polling = store.spawn_restore_poll(coffer::RESTORE_POLL_INTERVAL);
        // So does the hot store's flusher (and its daily expiry).
        let _flushing = store.spawn_hot(coffer::hot::FLUSH_INTERVAL);
        store
            .dispatcher(options)
            .run_observed(shutdown_signal(), |total| progress.show(total))
            .await?
    };
    if json {
        return print_json(&report);
    }
    println!(
        "delivered {}, retrying {}, dead-lettered {} ({}, {} fanned out)",
        report.delivered,
        report.retrying,
        report.dead,
        output::count(report.attempts, "attempt"),
        output::count(report.fanned_out, "event")
    );
    Ok(())
}

/// The running totals of `hooks run`, on stderr every few seconds while
/// stderr is a terminal.
struct RunProgress {
    enabled: bool,
    last: Option<Instant>,
}

impl RunProgress {
    const EVERY: Duration = Duration::from_secs(5);

    fn for_terminal(enabled: bool) -> Self {
        RunProgress {
            enabled: enabled && std::io::stderr().is_terminal(),
            last: None,
        }
    }

    fn show(&mut self, total: &DispatchReport) {
        if !self.enabled || self.last.is_some_and(|at| at.elapsed() < Self::EVERY) {
            return;
        }
        self.last = Some(Instant::now());
        eprintln!(
            "coffer: delivered {}, failed {} (retrying {}, dead-lettered {}) so far",
            total.delivered,
            total.retrying + total.dead,
            total.retrying,
            total.dead
        );
    }
}

/// Completes on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
}
