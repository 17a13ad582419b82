//! End-to-end: `coffer import` run again, as `aws s3 sync` or rclone would be:
//! unchanged files skipped, --force, --dry-run, --exclude, and a single file.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::path::Path;

use common::{coffer, fails, json, ok};

/// How many versions KEY has.
fn version_count(d: &Path, key: &str) -> usize {
    json(coffer(d, &["versions", key, "--json"])).as_array().unwrap().len()
}

/// The summary line (the last) of a run's output.
fn summary(stdout: &str) -> &str {
    stdout.lines().last().unwrap()
}

fn write(root: &Path, path: &str, content: &str) {
    let at = root.join(path);
    std::fs::create_dir_all(at.parent().unwrap()).unwrap();
    std::fs::write(at, content).unwrap();
}

#[test]
fn importing_again_skips_unchanged_files_unless_forced() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let scans = d.join("scans");
    write(&scans, "a.txt", "alpha");
    write(&scans, "sub/b.txt", "bravo");
    write(&scans, "sub/c.txt", "charlie");
    let first = ok(coffer(d, &["import", "scans", "--prefix", "scans/"])).stdout;
    assert!(summary(&first).starts_with("imported 3 files"), "{first}");
    assert!(summary(&first).contains("; 0 unchanged (skipped)"), "{first}");

    // One file changed (same size, other bytes), one new: only those two are stored.
    write(&scans, "sub/b.txt", "BRAVO");
    write(&scans, "d.txt", "delta");
    let again = ok(coffer(d, &["import", "scans", "--prefix", "scans/"])).stdout;
    assert!(summary(&again).starts_with("imported 2 files"), "{again}");
    assert!(summary(&again).contains("; 2 unchanged (skipped)"), "{again}");
    assert_eq!(
        ["a.txt", "sub/b.txt", "sub/c.txt", "d.txt"].map(|k| version_count(d, &format!("scans/{k}"))),
        [1, 2, 1, 1]
    );
    assert_eq!(ok(coffer(d, &["get", "scans/sub/b.txt"])).stdout, "BRAVO");

    // A deleted key is imported again, even with the same content.
    ok(coffer(d, &["delete", "scans/a.txt"]));
    let report = json(coffer(d, &["import", "scans", "--prefix", "scans/", "--json"]));
    assert_eq!((&report["files"], &report["unchanged"]), (&1.into(), &3.into()));
    assert_eq!(ok(coffer(d, &["get", "scans/a.txt"])).stdout, "alpha");

    // --force stores every file again.
    let forced = json(coffer(
        d,
        &["import", "scans", "--prefix", "scans/", "--force", "--json"],
    ));
    assert_eq!((&forced["files"], &forced["unchanged"]), (&4.into(), &0.into()));
    assert_eq!(version_count(d, "scans/sub/c.txt"), 2);
}

#[test]
fn dry_run_lists_what_would_be_imported_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let src = d.join("src");
    write(&src, "keep.txt", "kept");
    write(&src, "new.txt", "new");
    ok(coffer(d, &["import", "src", "--prefix", "p/"]));
    write(&src, "new.txt", "newer");
    write(&src, "other.txt", "other");
    let audit_before = json(coffer(d, &["audit", "--json"])).as_array().unwrap().len();

    let run = ok(coffer(d, &["import", "src", "--prefix", "p/", "--dry-run"])).stdout;
    let listed: Vec<&str> = run.lines().filter(|l| l.starts_with("would import p/")).collect();
    assert_eq!(listed, ["would import p/new.txt", "would import p/other.txt"], "{run}");
    assert!(
        summary(&run).starts_with("would import 2 files (10 B); 1 unchanged (skipped)"),
        "{run}"
    );
    let report = json(coffer(d, &["import", "src", "--prefix", "p/", "--dry-run", "--json"]));
    assert_eq!(report["would_import"], serde_json::json!(["p/new.txt", "p/other.txt"]));
    assert_eq!((version_count(d, "p/new.txt"), version_count(d, "p/keep.txt")), (1, 1));
    fails(coffer(d, &["versions", "p/other.txt"]), 3, "p/other.txt");
    let audit_after = json(coffer(d, &["audit", "--json"])).as_array().unwrap().len();
    assert_eq!(audit_before, audit_after, "nothing recorded");
}

#[test]
fn exclude_globs_leave_files_out_and_a_single_file_imports() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let src = d.join("src");
    write(&src, "doc.txt", "doc");
    write(&src, "scratch.tmp", "tmp");
    write(&src, "deep/er/also.tmp", "tmp");
    write(&src, "cache/blob.bin", "cached");
    write(&src, "deep/kept.bin", "kept");
    let report = json(coffer(
        d,
        &["import", "src", "--exclude", "*.tmp", "--exclude", "cache/*", "--json"],
    ));
    assert_eq!((&report["files"], &report["excluded"]), (&2.into(), &3.into()));
    let page = json(coffer(d, &["list", "--json"]));
    let keys: Vec<&str> = page["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["deep/kept.bin", "doc.txt"]);
    fails(
        coffer(d, &["import", "src", "--exclude", "[z-a"]),
        5,
        "invalid --exclude",
    );

    // One file: its key is the prefix and its name; skipped when unchanged.
    let one = ok(coffer(d, &["import", "src/doc.txt", "--prefix", "single/"])).stdout;
    assert!(summary(&one).starts_with("imported 1 file ("), "{one}");
    assert_eq!(ok(coffer(d, &["get", "single/doc.txt"])).stdout, "doc");
    let again = ok(coffer(d, &["import", "src/doc.txt", "--prefix", "single/"])).stdout;
    assert!(summary(&again).contains("imported 0 files"), "{again}");
    assert!(summary(&again).contains("1 unchanged (skipped)"), "{again}");
    // The selection flags are for directories: with --from-store a usage error.
    let run = coffer(d, &["import", "--from-store", "x", "--dry-run"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("cannot be used with '--dry-run'"), "{}", run.stderr);
}

#[test]
fn importing_again_skips_unchanged_files_past_a_page_of_keys() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let src = d.join("src");
    // More keys than one page of the catalog (1000), with others around them.
    for i in 0..1200 {
        write(&src, &format!("n/{i:04}.txt"), &i.to_string());
    }
    ok(coffer(d, &["import", "src", "--prefix", "t/"]));
    write(&src, "n/1100.txt", "changed");
    write(&d.join("other"), "a.txt", "a");
    ok(coffer(d, &["import", "other", "--prefix", "t/n/"]));
    let again = json(coffer(d, &["import", "src", "--prefix", "t/", "--json"]));
    assert_eq!((&again["files"], &again["unchanged"]), (&1.into(), &1199.into()));
    assert_eq!(version_count(d, "t/n/1100.txt"), 2);
}
