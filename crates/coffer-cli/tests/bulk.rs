//! The commands users of aws-cli, rclone and mc expect, through the built
//! binary: `delete --prefix [--dry-run]`, `undelete`, `list --versions`,
//! `list --deleted`, `versions --limit` and `export --no-clobber`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::path::Path;

use common::{coffer, coffer_in, fails, json, ok};
use serde_json::Value;

fn put(d: &Path, key: &str, content: &str) -> Value {
    json(coffer_in(d, &["put", key, "--json"], Some(content.as_bytes()), &[]))
}

/// The keys `list` shows, from its JSON.
fn live_keys(d: &Path) -> Vec<String> {
    let page = json(coffer(d, &["list", "--json"]));
    page["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["key"].as_str().unwrap().to_owned())
        .collect()
}

fn keys_of(versions: &Value) -> Vec<&str> {
    versions
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["key"].as_str().unwrap())
        .collect()
}

#[test]
fn delete_prefix_lists_with_dry_run_then_writes_delete_markers() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for key in ["scans/a.tif", "scans/b.tif", "scans/2023/c.tif", "scansion.txt"] {
        put(d, key, key);
    }
    let dry = ok(coffer(d, &["delete", "--prefix", "scans/", "--dry-run"])).stdout;
    let lines: Vec<&str> = dry.lines().collect();
    assert_eq!(lines.len(), 4, "{dry}");
    assert!(
        lines[0].starts_with("would delete scans/2023/c.tif (latest version "),
        "{dry}"
    );
    assert!(
        lines[3].starts_with("would delete 3 keys under \"scans/\"; nothing was changed"),
        "{dry}"
    );
    assert_eq!(live_keys(d).len(), 4, "a dry run changes nothing");

    let done = ok(coffer(d, &["delete", "--prefix", "scans/"])).stdout;
    assert!(
        done.lines()
            .last()
            .unwrap()
            .starts_with("deleted 3 keys under \"scans/\""),
        "{done}"
    );
    assert_eq!(live_keys(d), ["scansion.txt"]);
    let again = json(coffer(d, &["delete", "--prefix", "scans/", "--json"]));
    assert_eq!(again["deleted"], serde_json::json!([]), "nothing live is left");
    let one = ok(coffer(d, &["delete", "--prefix", "scansion"])).stdout;
    assert!(
        one.ends_with("deleted 1 key under \"scansion\" (delete markers; `coffer undelete KEY` brings one back)\n"),
        "{one}"
    );

    // Bad input: one line, nothing changed.
    put(d, "keep.txt", "k");
    fails(
        coffer(d, &["delete", "--prefix", ""]),
        5,
        "an empty prefix would delete every key",
    );
    assert_eq!(live_keys(d), ["keep.txt"]);
    let usage = coffer(d, &["delete", "keep.txt", "--prefix", "k"]);
    assert_eq!(usage.code, 2, "{}", usage.stderr);
    fails(
        coffer(d, &["delete", "keep.txt", "--dry-run"]),
        5,
        "--dry-run goes with --prefix",
    );
    assert_eq!(live_keys(d), ["keep.txt"]);
}

#[test]
fn undelete_brings_a_deleted_key_back_and_refuses_a_live_one() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    put(d, "doc.txt", "first");
    let second = put(d, "doc.txt", "second");
    fails(coffer(d, &["undelete", "doc.txt"]), 6, "doc.txt is not deleted");
    fails(coffer(d, &["undelete", "nope.txt"]), 3, "no such key: nope.txt");
    fails(coffer(d, &["undelete", "../x"]), 4, "");
    ok(coffer(d, &["delete", "doc.txt"]));
    assert_eq!(coffer(d, &["get", "doc.txt"]).code, 3);

    let back = json(coffer(
        d,
        &["undelete", "doc.txt", "--comment", "deleted by mistake", "--json"],
    ));
    assert_eq!(back["sha256"], second["sha256"]);
    assert_ne!(back["version_id"], second["version_id"], "a new version");
    assert_eq!(ok(coffer(d, &["get", "doc.txt"])).stdout, "second");
    let audit = json(coffer(d, &["audit", "--action", "undelete", "--json"]));
    assert_eq!(audit[0]["key"], "doc.txt");
    assert_eq!(audit[0]["detail"]["rolled_back_to"], second["version_id"]);
    assert_eq!(audit[0]["detail"]["comment"], "deleted by mistake");

    ok(coffer(d, &["delete", "doc.txt"]));
    let text = ok(coffer(d, &["undelete", "doc.txt"])).stdout;
    assert!(text.starts_with("undeleted: new doc.txt version "), "{text}");
}

#[test]
fn list_shows_every_version_or_the_deleted_keys_and_versions_takes_a_limit() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for key in ["k/a", "k/b", "k/c"] {
        put(d, key, "1");
    }
    put(d, "k/a", "22");
    ok(coffer(d, &["delete", "k/b"]));

    let all = json(coffer(d, &["list", "--prefix", "k/", "--versions", "--json"]));
    assert_eq!(keys_of(&all["objects"]), ["k/a", "k/a", "k/b", "k/b", "k/c"]);
    assert_eq!(all["objects"][2]["is_delete_marker"], true);
    let page = json(coffer(
        d,
        &["list", "--prefix", "k/", "--versions", "--max-keys", "1", "--json"],
    ));
    assert_eq!(keys_of(&page["objects"]), ["k/a", "k/a"]);
    assert_eq!(page["next_start_after"], "k/a");
    let table = ok(coffer(d, &["list", "--prefix", "k/", "--versions"])).stdout;
    assert_eq!(table.lines().count(), 6, "a header and five versions: {table}");
    assert!(table.lines().nth(3).unwrap().contains("delete marker"), "{table}");

    let deleted = json(coffer(d, &["list", "--deleted", "--json"]));
    assert_eq!(keys_of(&deleted["objects"]), ["k/b"]);
    let table = ok(coffer(d, &["list", "--deleted"])).stdout;
    assert!(table.lines().nth(1).unwrap().starts_with("k/b "), "{table}");
    let usage = coffer(d, &["list", "--deleted", "--delimiter", "/"]);
    assert_eq!(usage.code, 2, "{}", usage.stderr);

    let newest = json(coffer(d, &["versions", "k/a", "--limit", "1", "--json"]));
    assert_eq!(newest.as_array().unwrap().len(), 1);
    assert_eq!(newest[0]["size"], 2);
    assert_eq!(ok(coffer(d, &["versions", "k/a"])).stdout.lines().count(), 3);
    fails(
        coffer(d, &["versions", "k/a", "--limit", "0"]),
        5,
        "limit must be at least 1",
    );
}

#[test]
fn export_no_clobber_leaves_existing_files_and_counts_them() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    put(d, "docs/a.txt", "stored a");
    put(d, "docs/b.txt", "stored b");
    std::fs::create_dir(d.join("out")).unwrap();
    std::fs::write(d.join("out/a.txt"), "mine").unwrap();

    let text = ok(coffer(d, &["export", "out", "--prefix", "docs/", "--no-clobber"])).stdout;
    assert!(text.starts_with("exported 1 file (8 B) to out"), "{text}");
    assert!(text.ends_with("0 failed, 1 skipped (existing)\n"), "{text}");
    assert_eq!(std::fs::read_to_string(d.join("out/a.txt")).unwrap(), "mine");
    assert_eq!(std::fs::read_to_string(d.join("out/b.txt")).unwrap(), "stored b");
    let report = json(coffer(
        d,
        &["export", "out", "--prefix", "docs/", "--no-clobber", "--json"],
    ));
    assert_eq!(
        (report["files"].as_u64(), report["skipped"].as_u64()),
        (Some(0), Some(2))
    );

    // Without it, files are replaced.
    ok(coffer(d, &["export", "out", "--prefix", "docs/"]));
    assert_eq!(std::fs::read_to_string(d.join("out/a.txt")).unwrap(), "stored a");
}
