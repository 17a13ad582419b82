//! The table of figures.

use std::time::Duration;

use crate::large::LargeFigures;
use crate::measure::ChildRun;
use crate::small::{self, SmallFigures};
use crate::sqlite_limit::{self, SqliteFigures};
use crate::system::System;

/// Lowest acceptable coffer/plain throughput ratio.
const MIN_RATIO: f64 = 0.90;
/// Highest acceptable peak RSS of the CLI, MiB.
const MAX_RSS_MIB: f64 = 64.0;
/// Slowest acceptable copy, ms.
const MAX_COPY_MS: f64 = 50.0;
/// Slowest acceptable small-put rate from one process, puts/s.
const MIN_PUTS_PER_SEC: f64 = 2000.0;

/// Print every figure to stdout.
pub fn print(
    system: &System,
    large: &LargeFigures,
    small: &SmallFigures,
    sqlite: &SqliteFigures,
    disk: (usize, Duration),
) {
    let memory = system
        .memory_gib
        .map(|g| format!(", {g:.1} GiB RAM"))
        .unwrap_or_default();
    println!();
    println!(
        "coffer bench (work dir on {}, {} cores{memory})",
        system.disk, system.cores
    );
    print_large(large);
    print_small(small, sqlite, disk);
}

fn print_large(large: &LargeFigures) {
    println!("large object: {} MiB", large.size >> 20);
    let plain_line = |op: &str, time: Duration| {
        println!(
            "  {op:<5} plain copy+fsync  {:>7.2} s  {:>6.0} MB/s",
            time.as_secs_f64(),
            mb_per_sec(large.size, time)
        );
    };
    let coffer_line = |op: &str, run: &ChildRun, plain: Duration| {
        let ratio = plain.as_secs_f64() / run.wall.as_secs_f64();
        let rss = run.peak_rss_mib();
        println!(
            "  {op:<5} coffer CLI        {:>7.2} s  {:>6.0} MB/s   ratio {ratio:.2} (target >= {MIN_RATIO:.2}: {})   peak RSS {rss:.0} MiB (target < {MAX_RSS_MIB:.0}: {})",
            run.wall.as_secs_f64(),
            mb_per_sec(large.size, run.wall),
            verdict(ratio >= MIN_RATIO),
            verdict(rss < MAX_RSS_MIB),
        );
    };
    plain_line("put", large.plain_put);
    coffer_line("put", &large.coffer_put, large.plain_put);
    plain_line("get", large.plain_get);
    coffer_line("get", &large.coffer_get, large.plain_get);
    println!(
        "                          (includes {:.2} s to fsync the output after coffer exited)",
        large.get_output_fsync.as_secs_f64()
    );
    let copy_line = |what: &str, time: Duration, note: &str| {
        let ms = time.as_secs_f64() * 1000.0;
        println!(
            "  copy  {what:<17} {ms:>7.1} ms   ({note}target < {MAX_COPY_MS:.0} ms: {})",
            verdict(ms < MAX_COPY_MS)
        );
    };
    copy_line("coffer CLI", large.copy_cli, "process start included; ");
    copy_line("coffer library", large.copy_library, "Store::copy on an open store; ");
}

fn print_small(small: &SmallFigures, sqlite: &SqliteFigures, (files, disk): (usize, Duration)) {
    println!(
        "small durable puts: {} x {} KiB, {} in flight per process",
        small.count,
        small::OBJECT_SIZE / 1024,
        small::IN_FLIGHT
    );
    let one = per_sec(small.count, small.one_process);
    let four = per_sec(small.count, small.four_processes);
    println!(
        "  coffer, 1 process         {one:>7.0} puts/s     (target >= {MIN_PUTS_PER_SEC:.0}: {})",
        verdict(one >= MIN_PUTS_PER_SEC)
    );
    println!(
        "  coffer, {} processes       {four:>7.0} puts/s     (one shared store; process start and store open included)",
        small::PROCESSES
    );
    let commits = per_sec(sqlite.commits, sqlite.single);
    let batched = per_sec(sqlite.batched_rows, sqlite.batched);
    println!(
        "  sqlite bare commit loop   {commits:>7.0} commits/s  ({} commits, 1 row each) ; batched {}/txn {batched:.0} rows/s",
        sqlite.commits,
        sqlite_limit::BATCH
    );
    let files_per_sec = per_sec(files, disk);
    println!(
        "  disk new-file loop        {files_per_sec:>7.0} files/s    (create+write+fsync file and directory, {} in flight; a put writes 2 files)",
        small::IN_FLIGHT
    );
    println!(
        "  coffer vs new-file loop: 1 process {:.2} puts per file, {} processes {:.2}",
        one / files_per_sec,
        small::PROCESSES,
        four / files_per_sec
    );
    println!(
        "  coffer vs bare commit loop: 1 process {:.1}x, {} processes {:.1}x",
        one / commits,
        small::PROCESSES,
        four / commits
    );
}

fn mb_per_sec(bytes: u64, time: Duration) -> f64 {
    bytes as f64 / 1e6 / time.as_secs_f64()
}

fn per_sec(count: usize, time: Duration) -> f64 {
    count as f64 / time.as_secs_f64()
}

fn verdict(met: bool) -> &'static str {
    if met { "ok" } else { "MISSED" }
}
