//! The QA walkthrough of issue 18's fixes: where reads land (standard output,
//! links, devices, FIFOs), limits, dates, delete markers, repairs that leave
//! versions unreadable, reads that create nothing, and catalog migrations.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::os::unix::fs::FileTypeExt;
use std::path::Path;

use common::{coffer, coffer_in, fails, json, ok};

fn put(d: &Path, key: &str, content: &str) {
    ok(coffer_in(d, &["put", key], Some(content.as_bytes()), &[]));
}

/// Make a FIFO at `path` and read it to the end on a thread of its own.
fn fifo(path: &Path) -> std::thread::JoinHandle<String> {
    let status = std::process::Command::new("mkfifo").arg(path).status().unwrap();
    assert!(status.success());
    let path = path.to_path_buf();
    std::thread::spawn(move || std::fs::read_to_string(path).unwrap())
}

#[test]
fn reads_follow_links_write_devices_and_fifos_in_place_and_dash_is_stdout() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    put(d, "k", "hello");

    // A symbolic link: its target is written, the link stays a link.
    std::fs::write(d.join("t"), "").unwrap();
    std::os::unix::fs::symlink("t", d.join("l")).unwrap();
    ok(coffer(d, &["get", "k", "--output", "l"]));
    assert!(std::fs::symlink_metadata(d.join("l")).unwrap().file_type().is_symlink());
    assert_eq!(std::fs::read_to_string(d.join("t")).unwrap(), "hello");
    // A dangling link names the file to create.
    std::os::unix::fs::symlink("new.txt", d.join("dangling")).unwrap();
    ok(coffer(d, &["get", "k", "--output", "dangling"]));
    assert!(
        std::fs::symlink_metadata(d.join("dangling"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(std::fs::read_to_string(d.join("new.txt")).unwrap(), "hello");

    // A FIFO is written in place, not replaced.
    let reader = fifo(&d.join("f"));
    ok(coffer(d, &["get", "k", "--output", "f"]));
    assert_eq!(reader.join().unwrap(), "hello");
    assert!(std::fs::symlink_metadata(d.join("f")).unwrap().file_type().is_fifo());
    let reader = fifo(&d.join("audit.fifo"));
    let run = coffer(d, &["audit", "--export", "audit.fifo"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stderr, "exported 1 audit row to audit.fifo\n");
    assert!(reader.join().unwrap().contains("\"action\":\"put\""));
    assert!(
        std::fs::symlink_metadata(d.join("audit.fifo"))
            .unwrap()
            .file_type()
            .is_fifo()
    );

    // A device stays a device.
    ok(coffer(d, &["get", "k", "--output", "/dev/null"]));
    assert!(std::fs::metadata("/dev/null").unwrap().file_type().is_char_device());

    // `-` is standard output, for get and for an audit export.
    let run = ok(coffer(d, &["get", "k", "--output", "-"]));
    assert_eq!(run.stdout, "hello");
    let run = coffer(d, &["audit", "--export", "-"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.starts_with("{\"id\":1,"), "{}", run.stdout);
    assert_eq!(run.stderr, "exported 1 audit row to -\n");
    assert!(!d.join("-").exists());
    // /dev/stdout (a link to the pipe the test reads) is written in place too.
    let run = ok(coffer(d, &["get", "k", "--output", "/dev/stdout"]));
    assert_eq!(run.stdout, "hello");
    let run = coffer(d, &["audit", "--export", "/dev/stdout"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.starts_with("{\"id\":1,"), "{}", run.stdout);
    assert_eq!(run.stdout.lines().count(), 1, "only the row: {}", run.stdout);
    assert_eq!(run.stderr, "exported 1 audit row to /dev/stdout\n");

    // export writes through a link already in its directory.
    std::fs::create_dir(d.join("out")).unwrap();
    std::fs::write(d.join("target.txt"), "").unwrap();
    std::os::unix::fs::symlink("../target.txt", d.join("out/k")).unwrap();
    ok(coffer(d, &["export", "out"]));
    assert!(
        std::fs::symlink_metadata(d.join("out/k"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(std::fs::read_to_string(d.join("target.txt")).unwrap(), "hello");
}

#[test]
fn the_largest_limit_is_no_overflow_and_every_limit_of_zero_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    put(d, "k1", "a");
    put(d, "k1", "bb");
    let max = u64::MAX.to_string();
    let run = ok(coffer(d, &["history", "k1", "--limit", &max]));
    assert_eq!(run.stdout.lines().count(), 3, "{}", run.stdout);
    let versions = json(coffer(d, &["versions", "k1", "--limit", &max, "--json"]));
    assert_eq!(versions.as_array().map(Vec::len), Some(2), "{versions}");
    ok(coffer(d, &["audit", "--limit", &max]));

    fails(
        coffer(d, &["history", "k1", "--limit", "0"]),
        5,
        "limit must be at least 1",
    );
    fails(
        coffer(d, &["versions", "k1", "--limit", "0"]),
        5,
        "limit must be at least 1",
    );
    fails(coffer(d, &["audit", "--limit", "0"]), 5, "--limit must be at least 1");
    fails(
        coffer(d, &["hooks", "run", "--once", "--concurrency", "0"]),
        5,
        "--concurrency must be at least 1",
    );
    fails(
        coffer(d, &["hooks", "run", "--once", "--batch", "0"]),
        5,
        "--batch must be at least 1",
    );
    fails(
        coffer(d, &["hooks", "dead", "--limit", "0"]),
        5,
        "limit must be at least 1",
    );
    fails(
        coffer(d, &["search", "a", "--limit", "0"]),
        5,
        "limit must be between 1 and",
    );
    for command in [
        &["import", "."][..],
        &["export", "out"],
        &["verify"],
        &["migrate", "--to", "x"],
    ] {
        let mut args = command.to_vec();
        args.extend(["--jobs", "0"]);
        fails(coffer(d, &args), 5, "--jobs must be at least 1");
    }
    assert!(!d.join("out").exists());
}

#[test]
fn times_before_1970_are_refused_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    put(d, "k", "a");
    for time in ["1960-01-01", "1960-01-01T00:00:00Z"] {
        fails(
            coffer(d, &["audit", "--until", time]),
            5,
            "times before 1970-01-01 are not accepted",
        );
    }
    fails(
        coffer(d, &["search", "--since", "1969-12-31"]),
        5,
        "times before 1970-01-01 are not accepted",
    );
    ok(coffer(d, &["audit", "--since", "1970-01-01"]));
}

#[test]
fn a_delete_marker_cannot_be_tagged_but_can_say_why_in_a_comment() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    put(d, "z/1", "a");
    ok(coffer(d, &["delete", "z/1"]));
    fails(
        coffer(d, &["tag", "z/1", "latest", "a=b"]),
        5,
        "is a delete marker: it cannot be tagged",
    );
    let history = json(coffer(d, &["history", "z/1", "--json"]));
    assert!(history.to_string().contains("\"tags\":{}"), "{history}");
    ok(coffer(d, &["comment", "z/1", "latest", "removed: superseded"]));
}

#[test]
fn a_dry_run_import_creates_no_store_and_a_read_creates_no_spool() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir(d.join("s")).unwrap();
    std::fs::write(d.join("s/a.txt"), "a").unwrap();
    fails(
        coffer(d, &["import", "s", "--prefix", "x/", "--dry-run"]),
        13,
        "no store at ./coffer-data",
    );
    assert!(!d.join("coffer-data").exists());

    put(d, "k", "a");
    let spool = d.join("newspool");
    let spool_env = spool.to_str().unwrap();
    ok(coffer_in(d, &["list"], None, &[("COFFER_SPOOL", spool_env)]));
    ok(coffer_in(d, &["get", "k"], None, &[("COFFER_SPOOL", spool_env)]));
    // It is there, and empty: nothing to sync.
    let env = [("COFFER_SPOOL", spool_env)];
    let info = json(coffer_in(d, &["info", "--json"], None, &env));
    assert_eq!(info["spool"]["files"], 0, "{info}");
    ok(coffer_in(d, &["sync"], None, &env));
    assert!(!spool.exists());
    // A write may need it: it is created then.
    ok(coffer_in(d, &["put", "k2"], Some(b"b"), &[("COFFER_SPOOL", spool_env)]));
    assert!(spool.is_dir());
    ok(coffer(d, &["import", "s", "--prefix", "x/", "--dry-run"]));
}
