//! Throughput and memory benchmarks for coffer, all measured in one run on one disk.
//!
//! ```text
//! cargo run --release -p coffer-bench -- [--size-mib N] [--small N] [--dir PATH] [--quick]
//! cargo run --release -p coffer-bench -- --versions [--size-mib N] [--dir PATH] [--quick]
//! cargo run --release -p coffer-bench -- --catalog [--dir PATH] [--quick]
//! cargo run --release -p coffer-bench -- --hooks [--dir PATH] [--quick]
//! cargo run --release -p coffer-bench -- --s3 [--size-mib N] [--dir PATH] [--quick]
//! cargo run --release -p coffer-bench -- --encryption [--size-mib N] [--small N] [--dir PATH] [--quick]
//! cargo run --release -p coffer-bench -- --bundles [--size-mib N] [--dir PATH] [--quick]
//! cargo run --release -p coffer-bench -- --serve [--size-mib N] [--dir PATH] [--quick]
//! ```
//!
//! The encryption, bundles and server groups are documented in their own
//! modules (`encryption.rs`, `bundles.rs`, `serve.rs`).
//!
//! Without `--versions`, `--catalog`, `--hooks`, `--s3`, `--encryption`, `--hot`,
//! `--bundles` or `--serve` the bench runs the large-object and small-put groups below;
//! with one of them, only that group (last sections).
//!
//! Everything happens in a fresh temporary directory created inside `--dir`
//! (default: the current directory, so the figures are for the disk the repo
//! is on, not a tmpfs), removed at the end. The coffer CLI is built first
//! (`cargo build -p coffer-cli` in the bench's own profile; not for the
//! versions and catalog groups, which use the library only) so the figures are
//! never those of a stale binary.
//!
//! # Large object (`--size-mib`, default 1024)
//!
//! A file of pseudo-random bytes (xorshift) is generated once and fsynced.
//!
//! - **put, plain copy+fsync**: `std::fs::copy` of the file, then fsync of the
//!   copy and of its directory. The baseline: what the disk gives a durable copy.
//! - **put, coffer CLI**: `coffer put KEY --file SRC` as a child process, wall
//!   time (process start included) and the child's peak RSS.
//! - **get, plain copy+fsync**: the same plain copy again, taken right before
//!   the coffer get so the page cache is in a comparable state.
//! - **get, coffer CLI**: `coffer get KEY --output OUT`, wall time plus an fsync
//!   of OUT after the process exits (a no-op if coffer already synced it, so
//!   both sides of the ratio are durable), and peak RSS. OUT is then compared
//!   byte for byte with the source; any difference fails the run.
//! - **copy**: `coffer copy SRC DST` as a child process (process start
//!   included), and `Store::copy` timed inside this process on an open store.
//!
//! Targets: coffer/plain throughput ratio >= 0.90 for put and get, peak RSS
//! < 64 MiB whatever the object size, copy < 50 ms (a copy moves no bytes).
//!
//! Peak RSS comes from `getrusage(RUSAGE_CHILDREN)`, which reports the maximum
//! over every child a process has waited for; so each measured command runs
//! under a fresh re-invocation of this binary (`__measure`), whose only child
//! is that command.
//!
//! # Small durable puts (`--small`, default 10,000 objects of 4 KiB, distinct content)
//!
//! - **1 process**: `Store::put_bytes` through the library, 64 puts in flight.
//! - **4 processes**: four re-invocations of this binary (`__put-worker`) put a
//!   quarter each, 64 in flight each, into one shared store; the rate is over
//!   the wall time of the whole group (process start and store open included).
//!   The store must then hold every object and pass its consistency check.
//! - **disk new-file loop**: new 4 KiB files created, written and fsynced with
//!   their directory, as many at a time as the small-put run: the ceiling of any
//!   store that keeps one file per object; a coffer put writes two.
//! - **sqlite bare commit loop**: the limit a put that commits alone would hit:
//!   one 100-byte row per transaction, WAL and `synchronous=FULL` as coffer
//!   uses; and the same with 64 rows per transaction, which shows what group
//!   commit buys.
//!
//! Target: >= 2,000 puts/s in one process.
//!
//! # Versions (`--versions`: the speed targets of issue 4)
//!
//! Everything goes through the library (`Store::open` of a
//! `Config { data_dir, .. }` in the work directory); the CLI is not built.
//! `--size-mib` sets the large object; `--quick` makes it 64 MiB and uses
//! 1,000 versions and files instead of 10,000. Each timed pair is repeated
//! 3 times (a copy of a large object of 1 GiB or more twice), alternating
//! which side goes first, and the medians are reported. A `sync` (untimed)
//! precedes every timed import and verify, so neither side pays for the
//! other's writes. The page cache cannot be dropped without root: the sources
//! are written and fsynced beforehand and are read from the cache by both sides.
//!
//! - **rollback**: the large object (pseudo-random, as above) is put as
//!   version 1 of a key, a 1 KiB content as version 2; then
//!   `Store::rollback(key, v1, Some("bench"))` is timed 20 times (each makes a
//!   new version), alternating with rollbacks of a 1 KiB object's key, the
//!   peer: a rollback references the old bytes, so the two should take the
//!   same time. Targets: median and max < 50 ms; constant time: the large
//!   object's median at most twice the 1 KiB one's.
//! - **history**: a key gets 10,000 versions of distinct 64-byte contents
//!   (`put_bytes`, 64 in flight); `Store::history(key, None)` and
//!   `Store::versions(key)` are timed 20 times each, beside the peer, a bare
//!   `SELECT` of the key's rows from the catalog's SQLite file on a read-only
//!   connection. Target: median and p95 < 50 ms.
//! - **import**: a tree of 10,000 files of 16 KiB (distinct content, 100
//!   subdirectories), then a directory holding the large object:
//!   `Store::import_dir` (8 jobs) into a fresh store, against the peer
//!   `cp -r SRC DST && sync` (a shell, timed as a whole). Target: coffer/peer
//!   throughput ratio >= 0.70.
//! - **verify**: `Store::verify` (orphans younger than an hour left alone) of
//!   the rollback store, which holds the large blob, against the peer
//!   `sha256sum` over the same blob files (`<data_dir>/store/blobs/**`, a child
//!   process). The report must be clean. Target: throughput ratio >= 0.80.
//!   For reference only, `openssl dgst -sha256` over the same files when there
//!   is an `openssl`: coreutils' `sha256sum` may not use the CPU's SHA
//!   instructions, which makes it a slow peer.
//!
//! # Catalog (`--catalog`: the speed targets of issue 5)
//!
//! A SQLite catalog in the work directory and a PostgreSQL catalog in a fresh
//! database (on `COFFER_TEST_POSTGRES`, default
//! `postgres://postgres@127.0.0.1:5432/postgres`, dropped at the end) are each
//! filled with the same 1,000,000 generated versions of 200,000 keys (five
//! each) through `Catalog::commit_version`, 64 in flight: keys
//! `deptNN/YEAR/MM/TYPE_NNNNNN.pdf` under 50 department prefixes, metadata
//! (customer from 2,000 made-up names, doc_type, status), a `qc` tag on one
//! version in five and a comment on one in twenty. No blobs are written.
//!
//! - **fill**: versions per second over the whole fill, and the catalog's
//!   size on disk afterwards (the SQLite file with its WAL; PostgreSQL's
//!   `pg_database_size`).
//! - **list page**: `list_latest` of the first 1,000 keys under a department
//!   prefix, for 50 departments: the first read of that range, then the same
//!   page again at once. Target: < 20 ms.
//! - **search**, 50 queries each, every one a word of one of the latest
//!   versions with that version's department prefix as the filter (page of
//!   100): a *selective* word, the customer's name (one version in 2,000
//!   carries a given name, so about 100 current keys, 2 under one prefix), and
//!   a *common* word, a document type (one key in eight: 25,000 current keys,
//!   500 under one prefix, all of which must be ranked). Target: p95 < 50 ms.
//! - **put transaction**: `commit_version` of a new version of an existing
//!   key, one at a time, 500 times. Target: median < 2 ms on PostgreSQL.
//!
//! # Hooks (`--hooks`: the speed targets of the integration hooks)
//!
//! A store with a SQLite catalog (the embedded default, in the work
//! directory) and one with a PostgreSQL catalog (a fresh database, as in the
//! catalog group; the bench fails if no server answers) are measured in
//! turn, each with a webhook hook (no filter, default settings) to a
//! receiver on 127.0.0.1 that runs in the bench process
//! (`coffer::testkit::WebhookReceiver`: HTTP/1.1 with keep-alive; it shares
//! the machine's cores with the senders).
//!
//! - **fill**: 100,000 application events (20,000 with `--quick`),
//!   `Store::fire_event("batch.completed", ..)`, 64 in flight; events per
//!   second.
//! - **delivery, in process**: a dispatcher with the default options
//!   (`Dispatcher::drain`, then `release`) fans every event out and delivers
//!   it; the dispatcher must report every one delivered and the receiver must
//!   have accepted every one. Events per second over the drain, and the
//!   webhook's mean and p95 attempt time from `Store::hook_stats`.
//! - **delivery, `coffer hooks run --once`**: a fresh batch of as many
//!   events is fired (untimed), then the CLI delivers it as a child process,
//!   as a user runs it (`--data-dir`, plus `--catalog` for PostgreSQL); wall
//!   time with process start and store open, and peak RSS (as for the large
//!   object). The receiver must then hold both batches, with nothing left
//!   waiting or dead-lettered.
//!
//! Target: >= 5,000 events/s delivered, on each catalog, both ways.
//!
//! - **event cost**: a change writes its events in its own transaction, so
//!   their cost is measured by A/B: 1,000 `Catalog::commit_version` of a put
//!   (the version, its blob and audit rows, and 2 outbox events,
//!   `object.archived` and `version.created`) interleaved with 1,000 of a
//!   `reindex` (the same rows, and no events: a reindex is silent), each the
//!   first version of a new key with a blob of its own (never written) and
//!   three metadata entries, one commit at a time. The outbox must have grown
//!   by exactly 2 events per put. The event cost is the difference of the
//!   medians.
//! - **put**: `Store::put_bytes` of 4 KiB of distinct content on a new key,
//!   one at a time, 1,000 times: what a user's put costs, events included.
//!
//! Target: event cost < 10% of the put's median, on each catalog.
//!
//! With `COFFER_BENCH_KEEP=1` in the environment the work directory and the
//! PostgreSQL database are kept (their paths are printed) for inspection.

mod args;
mod bundles;
mod catalog;
mod cli;
mod data;
mod disk_limit;
mod encryption;
mod history;
mod hooks;
mod hot;
mod import;
mod large;
mod limit;
mod measure;
mod objects;
mod report;
mod rollback;
mod samples;
mod serve;
mod small;
mod sqlite_limit;
mod system;
mod verify;
mod versions;

use std::ffi::OsString;

use anyhow::{Context, Result};

fn main() -> Result<()> {
    let argv: Vec<OsString> = std::env::args_os().skip(1).collect();
    match argv.first().and_then(|a| a.to_str()) {
        Some(measure::SUBCOMMAND) => measure::run_subcommand(&argv[1..]),
        Some(small::WORKER_SUBCOMMAND) => small::run_worker_subcommand(&argv[1..]),
        _ => run_bench(&args::Args::parse(&argv)?),
    }
}

fn run_bench(args: &args::Args) -> Result<()> {
    // The versions, catalog and hot store groups use the library only: no CLI to build.
    let coffer = if args.versions || args.catalog || args.hot {
        None
    } else if args.serve {
        Some(cli::build_with(&["server"])?)
    } else {
        Some(cli::build()?)
    };
    let parent = args
        .dir
        .canonicalize()
        .with_context(|| format!("no directory {}", args.dir.display()))?;
    let work = tempfile::Builder::new()
        .prefix("coffer-bench-")
        .tempdir_in(&parent)
        .with_context(|| format!("cannot create a work directory in {}", parent.display()))?;
    let system = system::describe(work.path());
    eprintln!("work dir {} on {}", work.path().display(), system.disk);
    let runtime = tokio::runtime::Runtime::new().context("cannot start the tokio runtime")?;

    match coffer {
        None if args.hot => {
            let figures = hot::run(&runtime, work.path(), args.small, args.hot_seconds)?;
            hot::print(&system, &figures);
        }
        None if args.catalog => {
            let (versions, keys) = args.catalog_scale;
            let figures = catalog::run(&runtime, work.path(), catalog::Scale { versions, keys })?;
            catalog::print(&system, &figures);
        }
        None => {
            let sizes = versions::Sizes {
                size_mib: args.size_mib,
                history_versions: args.history_versions,
                import_files: args.import_files,
            };
            let figures = versions::run(&runtime, work.path(), sizes)?;
            report::print_versions(&system, &figures);
        }
        Some(coffer) if args.s3 => {
            let sizes = objects::Sizes {
                large_mib: args.size_mib,
                files: args.s3_scale.0,
                list_keys: args.s3_scale.1,
            };
            let figures = objects::run(&coffer, work.path(), sizes)?;
            objects::print(&system, &figures);
        }
        Some(coffer) if args.encryption => {
            let figures = encryption::run(&runtime, &coffer, work.path(), args.size_mib, args.small)?;
            encryption::print(&system, &figures);
        }
        Some(coffer) if args.bundles => {
            let figures = bundles::run(&runtime, &coffer, work.path(), args.size_mib, args.bundle_rounds)?;
            bundles::print(&system, &figures);
        }
        Some(coffer) if args.serve => {
            let sizes = serve::Sizes {
                large_mib: args.size_mib,
                files: args.s3_scale.0,
                rounds: args.serve_rounds,
            };
            let figures = serve::run(&coffer, work.path(), sizes)?;
            serve::print(&system, &figures);
        }
        Some(coffer) if args.hooks => {
            let figures = hooks::run(&runtime, &coffer, work.path(), args.hook_events)?;
            hooks::print(&system, &figures);
        }
        Some(coffer) => {
            let large = large::run(&runtime, &coffer, work.path(), args.size_mib)?;
            let small = small::run(&runtime, work.path(), args.small)?;
            let sqlite = runtime.block_on(sqlite_limit::run(work.path(), args.sqlite_commits))?;
            let disk = runtime.block_on(disk_limit::run(work.path(), args.small))?;
            report::print(&system, &large, &small, &sqlite, (args.small, disk));
        }
    }
    if std::env::var_os("COFFER_BENCH_KEEP").is_some() {
        let kept = work.keep();
        eprintln!("work directory kept: {}", kept.display());
        return Ok(());
    }
    work.close().context("cannot remove the work directory")
}
