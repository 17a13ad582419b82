//! The table of figures.

use std::time::Duration;

use crate::history::{self, HistoryFigures};
use crate::import::{self, ImportFigures};
use crate::large::LargeFigures;
use crate::measure::ChildRun;
use crate::rollback::{self, RollbackFigures};
use crate::samples::Samples;
use crate::small::{self, SmallFigures};
use crate::sqlite_limit::{self, SqliteFigures};
use crate::system::System;
use crate::verify::VerifyFigures;
use crate::versions::VersionsFigures;

/// Lowest acceptable coffer/plain throughput ratio.
const MIN_RATIO: f64 = 0.90;
/// Highest acceptable peak RSS of the CLI, MiB.
const MAX_RSS_MIB: f64 = 64.0;
/// Slowest acceptable copy, ms.
const MAX_COPY_MS: f64 = 50.0;
/// Slowest acceptable small-put rate from one process, puts/s.
const MIN_PUTS_PER_SEC: f64 = 2000.0;
/// Slowest acceptable rollback, history or versions call, ms.
const MAX_VERSIONS_CALL_MS: f64 = 50.0;
/// Largest acceptable ratio of the large object's rollback time to the 1 KiB object's.
const MAX_ROLLBACK_SIZE_RATIO: f64 = 2.0;
/// Lowest acceptable coffer/peer throughput ratio of an import.
const MIN_IMPORT_RATIO: f64 = 0.70;
/// Lowest acceptable coffer/peer throughput ratio of a verify.
const MIN_VERIFY_RATIO: f64 = 0.80;

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

/// Print the versions group's figures to stdout.
pub fn print_versions(system: &System, figures: &VersionsFigures) {
    let memory = system
        .memory_gib
        .map(|g| format!(", {g:.1} GiB RAM"))
        .unwrap_or_default();
    println!();
    println!(
        "coffer bench, versions group (work dir on {}, {} cores{memory})",
        system.disk, system.cores
    );
    let load = |l: Option<f64>| l.map_or_else(|| "?".to_owned(), |l| format!("{l:.2}"));
    println!(
        "load average (1 min) {} before the group, {} after: other work on the machine skews the figures",
        load(figures.load.0),
        load(figures.load.1)
    );
    print_rollback(&figures.rollback);
    print_history(&figures.history);
    println!(
        "import: {} jobs, into a fresh store / directory each run; medians; the sources were written and fsynced first, a sync precedes each run",
        import::JOBS
    );
    println!("        (the page cache cannot be dropped without root: both sides read the sources from it)");
    print_import(&figures.tree_import);
    print_import(&figures.large_import);
    print_verify(&figures.verify);
}

fn print_rollback(rollback: &RollbackFigures) {
    let size_mib = rollback.size >> 20;
    println!(
        "rollback: {size_mib} MiB object (put in {:.2} s, {:.0} MB/s), {} rollbacks of each key, alternating",
        rollback.put.as_secs_f64(),
        mb_per_sec(rollback.size, rollback.put),
        rollback.large.count()
    );
    let large_median = ms(rollback.large.median());
    let large_max = ms(rollback.large.max());
    println!(
        "  {:<32} median {large_median:>7.1} ms  max {large_max:>7.1} ms   (target < {MAX_VERSIONS_CALL_MS:.0} ms: median {}, max {})",
        format!("{size_mib} MiB object"),
        verdict(large_median < MAX_VERSIONS_CALL_MS),
        verdict(large_max < MAX_VERSIONS_CALL_MS),
    );
    println!(
        "  {:<32} median {:>7.1} ms  max {:>7.1} ms   (the peer: the same rollback of a small object)",
        format!("{} KiB object", rollback::SMALL_SIZE / 1024),
        ms(rollback.small.median()),
        ms(rollback.small.max()),
    );
    let ratio = large_median / ms(rollback.small.median());
    println!(
        "  {:<32} ratio {ratio:>6.2}   (of the medians; constant time: target <= {MAX_ROLLBACK_SIZE_RATIO:.2}: {})",
        format!("{size_mib} MiB / {} KiB", rollback::SMALL_SIZE / 1024),
        verdict(ratio <= MAX_ROLLBACK_SIZE_RATIO),
    );
}

fn print_history(history: &HistoryFigures) {
    println!(
        "history: one key with {} versions of {} bytes (put in {:.2} s, {:.0} puts/s, {} in flight), {} calls of each, interleaved",
        history.versions,
        history::VERSION_SIZE,
        history.fill.as_secs_f64(),
        per_sec(history.versions, history.fill),
        history::IN_FLIGHT,
        history.history.count(),
    );
    let call_line = |what: &str, samples: &Samples| {
        let (median, p95) = (ms(samples.median()), ms(samples.p95()));
        println!(
            "  {what:<32} median {median:>7.1} ms  p95 {p95:>7.1} ms   ratio to SQLite {:>5.2}   (target < {MAX_VERSIONS_CALL_MS:.0} ms: median {}, p95 {})",
            median / ms(history.sqlite.median()),
            verdict(median < MAX_VERSIONS_CALL_MS),
            verdict(p95 < MAX_VERSIONS_CALL_MS),
        );
    };
    call_line("Store::history(key)", &history.history);
    call_line("Store::versions(key)", &history.versions_call);
    println!(
        "  {:<32} median {:>7.1} ms  p95 {:>7.1} ms   (the peer: SELECT * of the key's rows from catalog.db, read-only)",
        "bare SQLite SELECT",
        ms(history.sqlite.median()),
        ms(history.sqlite.p95()),
    );
}

fn print_import(import: &ImportFigures) {
    let what = if import.files == 1 {
        format!("1 file of {} MiB", import.bytes >> 20)
    } else {
        format!("{} x {} KiB", import.files, import::TREE_FILE_SIZE / 1024)
    };
    let line = |side: &str, samples: &Samples| {
        let time = samples.median();
        let files_per_sec = per_sec(import.files, time);
        let digits = if files_per_sec < 10.0 { 2 } else { 0 };
        println!(
            "  {:<32} {:>7.2} s  {:>6.0} MB/s  {files_per_sec:>7.digits$} files/s   ({})",
            format!("{what}, {side}"),
            time.as_secs_f64(),
            mb_per_sec(import.bytes, time),
            runs(samples),
        );
    };
    let (peer, coffer) = (import.peer.median(), import.coffer.median());
    line("cp -r && sync", &import.peer);
    line("coffer import", &import.coffer);
    let ratio = peer.as_secs_f64() / coffer.as_secs_f64();
    println!(
        "  {:<32} ratio {ratio:>6.2}   (coffer/peer throughput; target >= {MIN_IMPORT_RATIO:.2}: {})",
        "",
        verdict(ratio >= MIN_IMPORT_RATIO)
    );
}

fn print_verify(verify: &VerifyFigures) {
    println!(
        "verify: {} blobs, {} MiB in all, from the rollback store; medians; a sync precedes each run",
        verify.blobs,
        verify.bytes >> 20
    );
    let line = |side: &str, samples: &Samples| {
        let time = samples.median();
        println!(
            "  {side:<32} {:>7.2} s  {:>6.0} MB/s   ({})",
            time.as_secs_f64(),
            mb_per_sec(verify.bytes, time),
            runs(samples),
        );
    };
    let (peer, coffer) = (verify.peer.median(), verify.coffer.median());
    line("sha256sum of the blobs", &verify.peer);
    line("Store::verify (clean)", &verify.coffer);
    let ratio = peer.as_secs_f64() / coffer.as_secs_f64();
    println!(
        "  {:<32} ratio {ratio:>6.2}   (coffer/sha256sum throughput; target >= {MIN_VERIFY_RATIO:.2}: {})",
        "",
        verdict(ratio >= MIN_VERIFY_RATIO)
    );
    if let Some(openssl) = &verify.openssl {
        line("openssl dgst -sha256 (reference)", openssl);
        println!(
            "  {:<32} ratio {:>6.2}   (coffer/openssl throughput, for reference: no target)",
            "",
            openssl.median().as_secs_f64() / coffer.as_secs_f64()
        );
    }
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

/// "median of N: a, b, c s", the runs fastest first.
fn runs(samples: &Samples) -> String {
    let all: Vec<String> = samples
        .sorted()
        .iter()
        .map(|t| format!("{:.2}", t.as_secs_f64()))
        .collect();
    format!("median of {}: {} s", samples.count(), all.join(", "))
}

/// Milliseconds of `time`.
pub(crate) fn ms(time: Duration) -> f64 {
    time.as_secs_f64() * 1000.0
}

/// `count` per second of `time`.
pub(crate) fn per_sec(count: usize, time: Duration) -> f64 {
    count as f64 / time.as_secs_f64()
}

/// A target's verdict as the tables print it.
pub(crate) fn verdict(met: bool) -> &'static str {
    if met { "ok" } else { "MISSED" }
}
