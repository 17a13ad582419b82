//! The hooks group (`--hooks`): the integration hooks' targets, on a SQLite
//! and a PostgreSQL catalog side by side. Events are delivered to a webhook
//! receiver on 127.0.0.1 in this process, first by a dispatcher in this
//! process, then by `coffer hooks run --once` as a child process; and the
//! extra cost of a put's events is measured by A/B inside one run.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use coffer::catalog::{BlobRef, Catalog, NewVersion, Precondition};
use coffer::events::sinks::WebhookConfig;
use coffer::events::{DispatcherOptions, EventFilter, HookSpec};
use coffer::testkit::{TestDatabase, WebhookReceiver};
use coffer::{Config, Metadata, ObjectKey, PutOptions, Store, Tags, Timestamp, VersionContent, VersionId};
use futures::StreamExt;
use tokio::runtime::Runtime;

use crate::data::XorShift;
use crate::limit;
use crate::measure::{ChildRun, measure};
use crate::report::{ms, per_sec, verdict};
use crate::samples::Samples;

/// Events fired at once while filling the outbox.
pub const IN_FLIGHT: usize = 64;
/// Commits of each kind (put, reindex) in the event-cost A/B, and puts timed after it.
pub const COMMITS: usize = 1_000;
/// Size of each object the timed puts write.
pub const PUT_SIZE: usize = 4096;
/// The application event the outbox is filled with.
const EVENT_TYPE: &str = "batch.completed";

/// One catalog's figures.
#[derive(Debug, Clone)]
pub struct HooksFigures {
    /// `sqlite` or `postgres`.
    pub name: &'static str,
    /// Events in each batch delivered.
    pub events: usize,
    /// Time to fire the first batch (`Store::fire_event`, [`IN_FLIGHT`] at once).
    pub fill: Duration,
    /// Time a dispatcher in this process took to deliver the first batch.
    pub delivery: Duration,
    /// Mean attempt time of the webhook over that delivery, ms (the hook's stats).
    pub attempt_avg_ms: f64,
    /// 95th percentile attempt time over that delivery, ms (the hook's stats).
    pub attempt_p95_ms: f64,
    /// `coffer hooks run --once` delivering the second batch, process start included.
    pub cli_delivery: ChildRun,
    /// `commit_version` of a put: the version and its 2 events.
    pub put_commit: Samples,
    /// `commit_version` of a reindex: the same rows, no events.
    pub reindex_commit: Samples,
    /// `Store::put_bytes` of 4 KiB, one at a time.
    pub put: Samples,
}

impl HooksFigures {
    /// A put's events' extra cost: the difference of the commits' medians,
    /// in seconds (negative when noise outweighs it).
    pub fn event_cost_secs(&self) -> f64 {
        self.put_commit.median().as_secs_f64() - self.reindex_commit.median().as_secs_f64()
    }
}

/// Where one catalog's store lies, for this process and for the CLI.
struct Target {
    name: &'static str,
    config: Config,
    /// The CLI's options that open the same store.
    cli_args: Vec<OsString>,
}

/// Measure both catalogs with batches of `events` events; `coffer` is the CLI.
pub fn run(runtime: &Runtime, coffer: &Path, work: &Path, events: usize) -> Result<Vec<HooksFigures>> {
    let sqlite_dir = work.join("sqlite");
    let sqlite = Target {
        name: "sqlite",
        config: Config::embedded(&sqlite_dir),
        cli_args: vec!["--data-dir".into(), sqlite_dir.into()],
    };
    let on_sqlite = runtime.block_on(measure_catalog(sqlite, coffer, events))?;

    let database = runtime
        .block_on(TestDatabase::create())
        .context("cannot create a PostgreSQL database for the bench")?
        .context("no PostgreSQL answers (COFFER_TEST_POSTGRES, default postgres://postgres@127.0.0.1:5432)")?;
    let pg_dir = work.join("pg");
    let postgres = Target {
        name: "postgres",
        config: Config {
            catalog_url: Some(database.url().to_owned()),
            ..Config::embedded(&pg_dir)
        },
        cli_args: vec![
            "--data-dir".into(),
            pg_dir.into(),
            "--catalog".into(),
            database.url().into(),
        ],
    };
    let on_postgres = runtime.block_on(measure_catalog(postgres, coffer, events))?;
    if std::env::var_os("COFFER_BENCH_KEEP").is_some() {
        eprintln!("kept for inspection: {}", database.url());
        std::mem::forget(database);
    }
    Ok(vec![on_sqlite, on_postgres])
}

async fn measure_catalog(target: Target, coffer: &Path, events: usize) -> Result<HooksFigures> {
    let name = target.name;
    let store = Store::open(&target.config)
        .await
        .with_context(|| format!("cannot open the {name} store"))?;
    let receiver = WebhookReceiver::start()
        .await
        .context("cannot start the webhook receiver")?;
    let hook = store.new_hook(
        "bench",
        HookSpec::Webhook(WebhookConfig::new(receiver.url())),
        EventFilter::default(),
    );
    store
        .add_hook(&hook, false)
        .await
        .context("cannot add the webhook hook")?;
    // At least 100 events/s, or the run is taken for hung.
    let time_limit = limit::for_work(events as u64, Duration::from_millis(10));

    eprintln!("{name}: firing {events} events, {IN_FLIGHT} in flight");
    let fill = limit::within(time_limit, "firing the events", fire_events(&store, 0..events)).await?;

    eprintln!("{name}: delivering them with a dispatcher in this process");
    let started = Instant::now();
    let mut dispatcher = store.dispatcher(DispatcherOptions::default());
    let report = limit::within(time_limit, "the delivery", async {
        dispatcher.drain().await.context("the dispatcher failed")
    })
    .await?;
    dispatcher
        .release()
        .await
        .context("the dispatcher could not give its lease up")?;
    let delivery = started.elapsed();
    ensure!(
        report.delivered == events as u64,
        "{name}: the dispatcher delivered {} of {events} events ({report:?})",
        report.delivered
    );
    ensure!(
        receiver.accepted_count() == events,
        "{name}: the receiver accepted {} of {events} events",
        receiver.accepted_count()
    );
    let stats = store.hook_stats().await.context("cannot read the hook statistics")?;
    let (attempt_avg_ms, attempt_p95_ms) = (stats.total.avg_ms, stats.total.p95_ms);

    eprintln!("{name}: firing {events} more events, then delivering them with `coffer hooks run --once`");
    limit::within(time_limit, "firing the events", fire_events(&store, events..2 * events)).await?;
    let cli_delivery = run_cli_delivery(coffer, target.cli_args, time_limit).await?;
    ensure!(
        receiver.accepted_count() == 2 * events,
        "{name}: after `coffer hooks run --once` the receiver has accepted {} of {} events",
        receiver.accepted_count(),
        2 * events
    );
    let stats = store.hook_stats().await.context("cannot read the hook statistics")?;
    ensure!(
        stats.total.queue_depth == 0 && stats.total.dead_letters == 0,
        "{name}: after `coffer hooks run --once` {} deliveries wait and {} are dead-lettered",
        stats.total.queue_depth,
        stats.total.dead_letters
    );

    eprintln!("{name}: {COMMITS} commits of a put and of a reindex, interleaved");
    let (put_commit, reindex_commit) = commits_ab(&store).await?;
    eprintln!("{name}: {COMMITS} puts of {} KiB, one at a time", PUT_SIZE / 1024);
    let put = puts(&store).await?;
    Ok(HooksFigures {
        name,
        events,
        fill,
        delivery,
        attempt_avg_ms,
        attempt_p95_ms,
        cli_delivery,
        put_commit,
        reindex_commit,
        put,
    })
}

/// Fire event `n` for each `n` in `numbers`, [`IN_FLIGHT`] at once; returns the time taken.
async fn fire_events(store: &Store, numbers: std::ops::Range<usize>) -> Result<Duration> {
    let started = Instant::now();
    let fired = futures::stream::iter(numbers)
        .map(|n| async move {
            store
                .fire_event(EVENT_TYPE, Some(&format!("bench/{n}")), serde_json::json!({ "n": n }))
                .await
                .with_context(|| format!("cannot fire event {n}"))
        })
        .buffer_unordered(IN_FLIGHT);
    futures::pin_mut!(fired);
    while let Some(outcome) = fired.next().await {
        outcome?;
    }
    Ok(started.elapsed())
}

/// `coffer <store options> hooks run --once` as a child process, while this
/// process's runtime keeps serving the receiver.
async fn run_cli_delivery(coffer: &Path, store_args: Vec<OsString>, time_limit: Duration) -> Result<ChildRun> {
    let coffer: PathBuf = coffer.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut args: Vec<&OsStr> = store_args.iter().map(OsString::as_os_str).collect();
        args.extend(["hooks", "run", "--once"].map(OsStr::new));
        measure(coffer.as_os_str(), &args, time_limit)
    })
    .await
    .context("the thread running `coffer hooks run --once` failed")?
}

/// [`COMMITS`] commits of a put and as many of a reindex, alternating, each
/// alone on a new key; returns their timings (put, reindex). Fails unless
/// the puts, and only they, wrote 2 events each.
async fn commits_ab(store: &Store) -> Result<(Samples, Samples)> {
    let catalog: &Arc<dyn Catalog> = store.catalog();
    let waiting_before = store.hook_stats().await.context("cannot count events")?.events_waiting;
    let mut put_commit = Samples::default();
    let mut reindex_commit = Samples::default();
    for n in 0..COMMITS {
        for (action, samples) in [("put", &mut put_commit), ("reindex", &mut reindex_commit)] {
            let version = new_version(action, n)?;
            let started = Instant::now();
            catalog
                .commit_version(version)
                .await
                .with_context(|| format!("commit of a {action} failed"))?;
            samples.push(started.elapsed());
        }
    }
    let written = store.hook_stats().await.context("cannot count events")?.events_waiting - waiting_before;
    if written != 2 * COMMITS as u64 {
        bail!("{COMMITS} puts and {COMMITS} reindexes wrote {written} events; expected 2 per put and none per reindex");
    }
    Ok((put_commit, reindex_commit))
}

/// Version `n` of the A/B: the first version of its own key, with a blob of
/// its own (the catalog is told of content that is never written) and three
/// metadata entries, recorded as `action`.
fn new_version(action: &'static str, n: usize) -> Result<NewVersion> {
    let key = ObjectKey::new(format!("cost/{action}/{n:04}.pdf"))?;
    let seed = (u64::from(action == "put") << 32) | n as u64;
    let sha256: String = XorShift::new(seed)
        .bytes(32)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let mut metadata = Metadata::new();
    metadata.insert("customer".into(), format!("customer {}", n % 97));
    metadata.insert("doc_type".into(), "invoice".into());
    metadata.insert("status".into(), ["approved", "pending"][n % 2].into());
    Ok(NewVersion {
        key,
        version_id: VersionId::generate(),
        content: VersionContent::Blob(BlobRef {
            md5: sha256[..32].to_owned(),
            new_path: Some(format!("blobs/{}/{sha256}", &sha256[..2])),
            data_key: None,
            hot: None,
            size: 50_000 + n as u64,
            sha256,
        }),
        content_type: Some("application/pdf".into()),
        metadata,
        created_at: Timestamp::now(),
        created_by: "bench".into(),
        precondition: Precondition::None,
        action,
        audit_detail: serde_json::Value::Null,
        tags: Tags::new(),
        comments: Vec::new(),
        retention: None,
        legal_hold: false,
    })
}

/// [`COMMITS`] puts of distinct [`PUT_SIZE`] contents on new keys, one at a time.
async fn puts(store: &Store) -> Result<Samples> {
    let mut put = Samples::default();
    for n in 0..COMMITS {
        let key = format!("cost/object/{n:04}.bin");
        let body = XorShift::new(0xB0D1_0000 + n as u64).bytes(PUT_SIZE);
        let started = Instant::now();
        store
            .put_bytes(&key, body, PutOptions::default())
            .await
            .with_context(|| format!("put {key} failed"))?;
        put.push(started.elapsed());
    }
    Ok(put)
}

/// Slowest acceptable delivery rate, events/s.
const MIN_EVENTS_PER_SEC: f64 = 5_000.0;
/// Largest acceptable ratio of a put's events' cost to the put's median.
const MAX_EVENT_COST_RATIO: f64 = 0.10;

/// Print the hooks group's figures side by side.
pub fn print(system: &crate::system::System, figures: &[HooksFigures]) {
    println!();
    println!(
        "coffer bench, hooks group (work dir on {}, {} cores; the receiver runs in the bench process)",
        system.disk, system.cores
    );
    let header: Vec<String> = figures.iter().map(|f| format!("{:>22}", f.name)).collect();
    println!("{:<48}{}", "", header.join(""));
    let row = |label: &str, cell: &dyn Fn(&HooksFigures) -> String| {
        let cells: Vec<String> = figures.iter().map(|f| format!("{:>22}", cell(f))).collect();
        println!("{label:<48}{}", cells.join(""));
    };
    row("events per batch", &|f| f.events.to_string());
    row(&format!("fire_event, {IN_FLIGHT} in flight (events/s)"), &|f| {
        format!("{:.0}", per_sec(f.events, f.fill))
    });
    row("delivery, dispatcher in process (events/s)", &|f| {
        format!("{:.0}", per_sec(f.events, f.delivery))
    });
    row("  time", &|f| format!("{:.2} s", f.delivery.as_secs_f64()));
    row("  webhook attempt avg / p95", &|f| {
        format!("{:.2} / {:.2} ms", f.attempt_avg_ms, f.attempt_p95_ms)
    });
    row("  target >= 5,000 events/s", &|f| {
        verdict(per_sec(f.events, f.delivery) >= MIN_EVENTS_PER_SEC).to_owned()
    });
    row("delivery, coffer hooks run --once (events/s)", &|f| {
        format!("{:.0}", per_sec(f.events, f.cli_delivery.wall))
    });
    row("  wall time, process start included", &|f| {
        format!("{:.2} s", f.cli_delivery.wall.as_secs_f64())
    });
    row("  peak RSS", &|f| format!("{:.0} MiB", f.cli_delivery.peak_rss_mib()));
    row("  target >= 5,000 events/s", &|f| {
        verdict(per_sec(f.events, f.cli_delivery.wall) >= MIN_EVENTS_PER_SEC).to_owned()
    });
    row("commit_version, put (2 events) p50 / p95", &|f| {
        format!("{:.3} / {:.3} ms", ms(f.put_commit.median()), ms(f.put_commit.p95()))
    });
    row("commit_version, reindex (no event) p50 / p95", &|f| {
        format!(
            "{:.3} / {:.3} ms",
            ms(f.reindex_commit.median()),
            ms(f.reindex_commit.p95())
        )
    });
    row("event cost (difference of the p50s)", &|f| {
        format!("{:.3} ms", f.event_cost_secs() * 1000.0)
    });
    row(&format!("put_bytes {} KiB p50 / p95", PUT_SIZE / 1024), &|f| {
        format!("{:.3} / {:.3} ms", ms(f.put.median()), ms(f.put.p95()))
    });
    row("event cost / put p50", &|f| {
        format!("{:.1} %", 100.0 * event_cost_ratio(f))
    });
    row("  target < 10 %", &|f| {
        verdict(event_cost_ratio(f) < MAX_EVENT_COST_RATIO).to_owned()
    });
}

fn event_cost_ratio(figures: &HooksFigures) -> f64 {
    figures.event_cost_secs() / figures.put.median().as_secs_f64()
}
