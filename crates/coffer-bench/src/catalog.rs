//! The catalog group (`--catalog`): both catalogs filled with the same
//! generated versions, then timed side by side on the reads and writes a
//! busy archive makes. No blobs: the catalogs are told of content that is
//! never written.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use coffer::catalog::{BlobRef, Catalog, KeyQuery, NewVersion, PostgresCatalog, Precondition, SqliteCatalog};
use coffer::lifecycle::{ActionKind, LifecycleConfig, LifecycleRule};
use coffer::testkit::TestDatabase;
use coffer::{Comment, Metadata, ObjectKey, SearchQuery, Tags, Timestamp, VersionContent, VersionId};
use futures::StreamExt;
use tokio::runtime::Runtime;

use crate::report::{ms, verdict};
use crate::samples::Samples;

/// Commits in flight while filling.
const FILL_CONCURRENCY: usize = 64;
/// Departments: the top-level prefixes (each holds keys / DEPARTMENTS keys).
const DEPARTMENTS: u64 = 50;
/// Distinct customer names in the metadata.
const CUSTOMERS: u64 = 2_000;
/// Timed runs of each read.
const READS: usize = 50;
/// Timed single commits.
const COMMITS: usize = 500;
/// Lifecycle removals carried out and timed, each its own transaction.
const LIFECYCLE_ACTIONS: usize = 500;
/// The issue's target: planning lifecycle over this many versions ...
const LIFECYCLE_TARGET_VERSIONS: f64 = 1_000_000.0;
/// ... in under this many seconds.
const MAX_LIFECYCLE_PLAN_S: f64 = 10.0;
/// A lifecycle action should hold the writer for about this long at most.
const MAX_LIFECYCLE_ACTION_MS: f64 = 100.0;

/// How much to generate.
#[derive(Debug, Clone, Copy)]
pub struct Scale {
    /// Versions in all.
    pub versions: u64,
    /// Keys they are spread over.
    pub keys: u64,
}

/// One catalog's figures.
#[derive(Debug, Clone)]
pub struct CatalogFigures {
    /// `sqlite` or `postgres`.
    pub name: &'static str,
    /// Versions written by the fill.
    pub filled: u64,
    /// How long the fill took.
    pub fill_time: Duration,
    /// A page of 1,000 keys under a department prefix, the first read of that range.
    pub list_page: Samples,
    /// The same page read again at once.
    pub list_page_again: Samples,
    /// A search for a customer's name under a department prefix (a selective word).
    pub search_selective: Samples,
    /// Hits the selective searches found, in all.
    pub selective_hits: usize,
    /// A search for a document type under a department prefix (a word in one key in eight).
    pub search_common: Samples,
    /// One put's catalog transaction (`commit_version` of a new version), one at a time.
    pub commit: Samples,
    /// Planning three lifecycle rules over every version, 400 days ahead.
    pub lifecycle_plan: Duration,
    /// Versions the plan read, and the actions it gave.
    pub lifecycle_versions: u64,
    pub lifecycle_actions: usize,
    /// Each lifecycle removal's transaction (the writer's hold), one at a time.
    pub lifecycle_action: Samples,
    /// Bytes the catalog takes on disk.
    pub size: u64,
}

/// Fill each catalog and time it. `COFFER_BENCH_REUSE_SQLITE` (a kept
/// `catalog.db`) and `COFFER_BENCH_REUSE_POSTGRES` (a kept database's URL)
/// time catalogs that a run with `COFFER_BENCH_KEEP=1` filled, without
/// filling them again.
pub fn run(runtime: &Runtime, work: &std::path::Path, scale: Scale) -> Result<Vec<CatalogFigures>> {
    let reused_sqlite = std::env::var_os("COFFER_BENCH_REUSE_SQLITE").map(std::path::PathBuf::from);
    let path = reused_sqlite.clone().unwrap_or_else(|| work.join("catalog.db"));
    let sqlite = Arc::new(runtime.block_on(SqliteCatalog::open(&path))?);
    let fill_time = match reused_sqlite {
        Some(_) => Duration::ZERO,
        None => runtime.block_on(fill("sqlite", sqlite.clone(), scale))?,
    };
    let mut on_sqlite = runtime.block_on(measure("sqlite", sqlite, scale, fill_time))?;
    on_sqlite.size = ["", "-wal", "-shm"]
        .iter()
        .filter_map(|suffix| std::fs::metadata(format!("{}{suffix}", path.display())).ok())
        .map(|m| m.len())
        .sum();

    let (database, url) = match std::env::var("COFFER_BENCH_REUSE_POSTGRES") {
        Ok(url) => (None, url),
        Err(_) => {
            let database = runtime
                .block_on(TestDatabase::create())?
                .context("no PostgreSQL answers (COFFER_TEST_POSTGRES, default postgres://postgres@127.0.0.1:5432)")?;
            let url = database.url().to_owned();
            (Some(database), url)
        }
    };
    let postgres = Arc::new(runtime.block_on(PostgresCatalog::connect(&url))?);
    let fill_time = match database {
        Some(_) => runtime.block_on(fill("postgres", postgres.clone(), scale))?,
        None => Duration::ZERO,
    };
    runtime.block_on(analyze(&url))?;
    let mut on_postgres = runtime.block_on(measure("postgres", postgres.clone(), scale, fill_time))?;
    on_postgres.size = runtime.block_on(postgres.database_size())?;
    if std::env::var_os("COFFER_BENCH_KEEP").is_some() {
        eprintln!("kept for inspection: {} and {url}", path.display());
        std::mem::forget(database);
    }
    Ok(vec![on_sqlite, on_postgres])
}

/// Gather the planner's statistics of the database at `url`, as autovacuum
/// (on by default, off on some test servers) does while a catalog grows.
async fn analyze(url: &str) -> Result<()> {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(url).await?;
    sqlx::query("ANALYZE").execute(&mut conn).await?;
    Ok(())
}

/// Commit the generated versions, 64 in flight; how long that took.
async fn fill(name: &'static str, catalog: Arc<dyn Catalog>, scale: Scale) -> Result<Duration> {
    eprintln!(
        "{name}: filling with {} versions of {} keys",
        scale.versions, scale.keys
    );
    let started = Instant::now();
    let done = Arc::new(AtomicU64::new(0));
    let commits = futures::stream::iter(0..scale.versions)
        .map(|n| {
            let catalog = catalog.clone();
            let done = done.clone();
            async move {
                let version = generated_version(n, scale.keys)?;
                catalog.commit_version(version).await?;
                let count = done.fetch_add(1, Ordering::Relaxed) + 1;
                if count.is_multiple_of(100_000) {
                    eprintln!(
                        "  {count} versions, {:.0}/s",
                        count as f64 / started.elapsed().as_secs_f64()
                    );
                }
                anyhow::Ok(())
            }
        })
        .buffer_unordered(FILL_CONCURRENCY);
    futures::pin_mut!(commits);
    while let Some(outcome) = commits.next().await {
        outcome?;
    }
    Ok(started.elapsed())
}

/// Time `catalog`'s reads and writes (after a fill that took `fill_time`).
async fn measure(
    name: &'static str,
    catalog: Arc<dyn Catalog>,
    scale: Scale,
    fill_time: Duration,
) -> Result<CatalogFigures> {
    let mut list_page = Samples::default();
    let mut list_page_again = Samples::default();
    for run in 0..READS {
        let department = (run as u64 * 7) % DEPARTMENTS;
        let query = KeyQuery {
            prefix: format!("dept{department:02}/"),
            limit: 1000,
            ..KeyQuery::default()
        };
        let started = Instant::now();
        let page = catalog.list_latest(&query).await?;
        list_page.push(started.elapsed());
        anyhow::ensure!(
            page.len() == 1000 || scale.keys < DEPARTMENTS * 1000,
            "short page: {}",
            page.len()
        );
        let started = Instant::now();
        catalog.list_latest(&query).await?;
        list_page_again.push(started.elapsed());
    }

    // Searches, each for a word of one of the latest versions (the fill's
    // last `keys` versions) under that version's department prefix.
    let mut search_selective = Samples::default();
    let mut search_common = Samples::default();
    let mut selective_hits = 0;
    for run in 0..READS as u64 {
        let n = scale.versions - 1 - run * 7919 % scale.keys;
        let department = format!("dept{:02}/", (n % scale.keys) % DEPARTMENTS);
        let selective = SearchQuery {
            text: customer_of(n),
            prefix: Some(department.clone()),
            limit: 100,
            ..SearchQuery::default()
        };
        let started = Instant::now();
        let page = catalog.search(&selective).await?;
        search_selective.push(started.elapsed());
        anyhow::ensure!(!page.hits.is_empty(), "no hit for {selective:?}");
        selective_hits += page.hits.len();
        // The document type of a key in the same department (k + 50 run): a
        // department holds only the types of its keys' parity.
        let common = SearchQuery {
            text: DOC_TYPES[((n % scale.keys + DEPARTMENTS * run) % 8) as usize].to_owned(),
            prefix: Some(department),
            limit: 100,
            ..SearchQuery::default()
        };
        let started = Instant::now();
        let page = catalog.search(&common).await?;
        search_common.push(started.elapsed());
        anyhow::ensure!(!page.hits.is_empty(), "no hit for {common:?}");
    }

    let mut commit = Samples::default();
    for run in 0..COMMITS as u64 {
        let version = generated_version(scale.versions + run, scale.keys)?;
        let started = Instant::now();
        catalog.commit_version(version).await?;
        commit.push(started.elapsed());
    }

    // Lifecycle: three rules planned over every version, 400 days ahead (so
    // that all are due), then the first removals carried out one by one.
    let rules = lifecycle_rules()?;
    let started = Instant::now();
    let ahead = Timestamp::now().plus(Duration::from_secs(400 * 86_400));
    let plan = coffer::lifecycle::plan_catalog(&*catalog, &rules, ahead).await?;
    let lifecycle_plan = started.elapsed();
    let mut lifecycle_action = Samples::default();
    let removals = plan
        .actions
        .iter()
        .filter(|a| a.kind == ActionKind::ExpireNoncurrent)
        .take(LIFECYCLE_ACTIONS);
    for action in removals {
        let key = ObjectKey::new(action.key.as_str())?;
        let id: VersionId = action.version_id.parse()?;
        let started = Instant::now();
        catalog.delete_version(&key, &id, "bench", false).await?;
        lifecycle_action.push(started.elapsed());
    }

    Ok(CatalogFigures {
        name,
        filled: if fill_time.is_zero() { 0 } else { scale.versions },
        lifecycle_plan,
        lifecycle_versions: plan.versions_seen,
        lifecycle_actions: plan.actions.len(),
        lifecycle_action,
        fill_time,
        list_page,
        list_page_again,
        search_selective,
        selective_hits,
        search_common,
        commit,
        size: 0,
    })
}

/// The rules the lifecycle step plans: noncurrent versions go (the newest
/// two kept), one department moves to the cold tier, and old current
/// versions of another expire.
fn lifecycle_rules() -> Result<Vec<LifecycleRule>> {
    let config: LifecycleConfig = toml::from_str(
        r#"
        [[rules]]
        id = "noncurrent"
        noncurrent_expire_after_days = 30
        keep_noncurrent = 2
        [[rules]]
        id = "cold"
        prefix = "dept01/"
        transition_after_days = 90
        transition_to = "cold"
        [[rules]]
        id = "expire"
        prefix = "dept02/"
        expire_after_days = 365
        "#,
    )?;
    config.validate()?;
    Ok(config.rules)
}

/// A small deterministic generator, so both catalogs get the same data.
fn mix(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^ (x >> 33)
}

/// A pronounceable made-up word for `n`: customer names and comment words.
fn word(n: u64) -> String {
    const SYLLABLES: [&str; 16] = [
        "ka", "lo", "mi", "ne", "ru", "sa", "to", "vi", "ber", "dan", "fel", "gor", "hal", "jin", "mor", "pel",
    ];
    let mut x = n;
    let mut out = String::new();
    for _ in 0..3 {
        out.push_str(SYLLABLES[(x % 16) as usize]);
        x /= 16;
    }
    out
}

/// The customer named in the metadata of version `n`.
fn customer_of(n: u64) -> String {
    word(mix(n) % CUSTOMERS)
}

const DOC_TYPES: [&str; 8] = [
    "invoice",
    "receipt",
    "contract",
    "report",
    "statement",
    "order",
    "memo",
    "scan",
];

/// Version `n` of the fill: key `n % keys`, so every key gets its versions in turn.
fn generated_version(n: u64, keys: u64) -> Result<NewVersion> {
    let k = n % keys;
    let department = k % DEPARTMENTS;
    let key = ObjectKey::new(format!(
        "dept{department:02}/{}/{:02}/{}_{k:06}.pdf",
        2020 + (k / DEPARTMENTS) % 5,
        1 + (k / 7) % 12,
        DOC_TYPES[(k % 8) as usize]
    ))?;
    let r = mix(n);
    let mut metadata = Metadata::new();
    metadata.insert("customer".into(), customer_of(n));
    metadata.insert("doc_type".into(), DOC_TYPES[(k % 8) as usize].into());
    metadata.insert(
        "status".into(),
        ["approved", "pending", "rejected"][(r % 3) as usize].into(),
    );
    let mut tags = Tags::new();
    if r.is_multiple_of(5) {
        tags.insert("qc".into(), ["approved", "rejected"][(r / 5 % 2) as usize].into());
    }
    let now = Timestamp::now();
    let comments = if r % 20 == 1 {
        vec![Comment {
            at: now,
            actor: "bench".into(),
            text: format!("checked by {} for {}", word(r / 7 % 500), word(r / 11 % 500)),
        }]
    } else {
        Vec::new()
    };
    let sha256 = format!("{:016x}{:016x}{:016x}{:016x}", n, r, mix(r), mix(n + 1));
    Ok(NewVersion {
        key,
        version_id: VersionId::generate(),
        content: VersionContent::Blob(BlobRef {
            md5: sha256[..32].to_owned(),
            new_path: Some(format!("blobs/{}/{sha256}", &sha256[..2])),
            data_key: None,
            hot: None,
            size: 1000 + r % 100_000,
            sha256,
        }),
        content_type: Some("application/pdf".into()),
        metadata,
        created_at: now,
        created_by: "bench".into(),
        precondition: Precondition::None,
        action: "put",
        audit_detail: serde_json::Value::Null,
        tags,
        comments,
        retention: None,
        legal_hold: false,
    })
}

/// Slowest acceptable list page, ms.
const MAX_LIST_MS: f64 = 20.0;
/// Slowest acceptable search p95, ms.
const MAX_SEARCH_MS: f64 = 50.0;
/// Slowest acceptable put transaction median on PostgreSQL, ms.
const MAX_POSTGRES_COMMIT_MS: f64 = 2.0;

/// Print the catalog group's figures side by side.
/// The plan time scaled to the target's 1,000,000 versions (planning is one
/// pass over the versions, so it grows with their number).
fn lifecycle_at_target(f: &CatalogFigures) -> f64 {
    f.lifecycle_plan.as_secs_f64() * LIFECYCLE_TARGET_VERSIONS / (f.lifecycle_versions.max(1) as f64)
}

pub fn print(system: &crate::system::System, figures: &[CatalogFigures]) {
    println!();
    println!(
        "coffer bench, catalog group (work dir on {}, {} cores)",
        system.disk, system.cores
    );
    let header: Vec<String> = figures.iter().map(|f| format!("{:>22}", f.name)).collect();
    println!("{:<40}{}", "", header.join(""));
    let row = |label: &str, cell: &dyn Fn(&CatalogFigures) -> String| {
        let cells: Vec<String> = figures.iter().map(|f| format!("{:>22}", cell(f))).collect();
        println!("{label:<40}{}", cells.join(""));
    };
    row("fill (versions/s)", &|f| match f.filled {
        0 => "(reused)".to_owned(),
        filled => format!("{:.0}", filled as f64 / f.fill_time.as_secs_f64()),
    });
    row("fill time", &|f| format!("{:.1} s", f.fill_time.as_secs_f64()));
    row("size on disk", &|f| format!("{:.0} MiB", f.size as f64 / 1_048_576.0));
    row("list page of 1,000, first read p50 / p95", &|f| {
        format!("{:.1} / {:.1} ms", ms(f.list_page.median()), ms(f.list_page.p95()))
    });
    row("  target p95 < 20 ms", &|f| {
        verdict(ms(f.list_page.p95()) < MAX_LIST_MS).to_owned()
    });
    row("the same page again p50 / p95", &|f| {
        format!(
            "{:.1} / {:.1} ms",
            ms(f.list_page_again.median()),
            ms(f.list_page_again.p95())
        )
    });
    row("  target p95 < 20 ms", &|f| {
        verdict(ms(f.list_page_again.p95()) < MAX_LIST_MS).to_owned()
    });
    row("search, selective word + prefix", &|f| {
        format!(
            "{:.1} / {:.1} ms",
            ms(f.search_selective.median()),
            ms(f.search_selective.p95())
        )
    });
    row("  hits per search (mean)", &|f| {
        format!("{:.1}", f.selective_hits as f64 / f.search_selective.count() as f64)
    });
    row("  target p95 < 50 ms", &|f| {
        verdict(ms(f.search_selective.p95()) < MAX_SEARCH_MS).to_owned()
    });
    row("search, common word + prefix", &|f| {
        format!(
            "{:.1} / {:.1} ms",
            ms(f.search_common.median()),
            ms(f.search_common.p95())
        )
    });
    row("  target p95 < 50 ms", &|f| {
        verdict(ms(f.search_common.p95()) < MAX_SEARCH_MS).to_owned()
    });
    row("put transaction p50 / p95", &|f| {
        format!("{:.2} / {:.2} ms", ms(f.commit.median()), ms(f.commit.p95()))
    });
    row("  target p50 < 2 ms (PostgreSQL)", &|f| match f.name {
        "postgres" => verdict(ms(f.commit.median()) < MAX_POSTGRES_COMMIT_MS).to_owned(),
        _ => "-".to_owned(),
    });
    row("lifecycle plan, 3 rules over every version", &|f| {
        format!("{:.2} s", f.lifecycle_plan.as_secs_f64())
    });
    row("  versions read / actions planned", &|f| {
        format!("{} / {}", f.lifecycle_versions, f.lifecycle_actions)
    });
    row("  at 1,000,000 versions (scaled)", &|f| {
        format!("{:.1} s", lifecycle_at_target(f))
    });
    row("  target < 10 s at 1,000,000", &|f| {
        verdict(lifecycle_at_target(f) < MAX_LIFECYCLE_PLAN_S).to_owned()
    });
    row("lifecycle removal p50 / p95 / max", &|f| {
        format!(
            "{:.1} / {:.1} / {:.1} ms",
            ms(f.lifecycle_action.median()),
            ms(f.lifecycle_action.p95()),
            ms(f.lifecycle_action.max())
        )
    });
    row("  target max < 100 ms (writer hold)", &|f| {
        verdict(ms(f.lifecycle_action.max()) < MAX_LIFECYCLE_ACTION_MS).to_owned()
    });
}
