//! End-to-end tests of the audit log at scale: `audit --export`, `audit purge`
//! within the retention, and read auditing, run through the built binary.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::path::Path;
use std::time::{Duration, SystemTime};

use common::{coffer, coffer_in, fails, json, ok};
use serde_json::{Value, json};

fn put_as(d: &Path, key: &str, user: &str) -> Value {
    json(coffer_in(
        d,
        &["put", key, "--user", user, "--json"],
        Some(key.as_bytes()),
        &[],
    ))
}

/// `coffer audit --json FILTERS...`, oldest first.
fn audit_oldest_first(d: &Path, filters: &[&str]) -> Vec<Value> {
    let mut args = vec!["audit", "--json"];
    args.extend_from_slice(filters);
    let mut rows = json(coffer(d, &args)).as_array().unwrap().clone();
    rows.reverse();
    rows
}

/// The lines of a JSON Lines file, parsed.
fn jsonl(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.is_empty() || text.ends_with('\n'), "{text}");
    text.lines().map(|line| serde_json::from_str(line).unwrap()).collect()
}

fn actions(rows: &[Value]) -> Vec<&str> {
    rows.iter().map(|r| r["action"].as_str().unwrap()).collect()
}

fn now_rfc3339() -> String {
    humantime::format_rfc3339_micros(SystemTime::now()).to_string()
}

#[test]
fn audit_export_writes_every_matching_row_oldest_first_as_json_lines() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // More rows than `audit` shows by default: an export has no default limit.
    let src = d.join("src");
    std::fs::create_dir(&src).unwrap();
    for i in 0..120 {
        std::fs::write(src.join(format!("f{i:03}.txt")), format!("file {i}")).unwrap();
    }
    ok(coffer(d, &["import", "src", "--prefix", "bulk/", "--user", "importer"]));
    put_as(d, "docs/a.txt", "alice");
    put_as(d, "docs/b.txt", "bob");
    ok(coffer(d, &["delete", "docs/a.txt", "--user", "alice"]));

    let run = ok(coffer(d, &["audit", "--export", "all.jsonl"]));
    assert_eq!(run.stdout, "exported 123 audit rows to all.jsonl\n");
    let all = jsonl(&d.join("all.jsonl"));
    assert_eq!(all.len(), 123);
    let ids: Vec<i64> = all.iter().map(|r| r["id"].as_i64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "oldest first: {ids:?}");
    assert_eq!(
        all[120..],
        audit_oldest_first(d, &["--limit", "3"])[..],
        "the rows `audit --json` shows"
    );
    let first = all[0].as_object().unwrap();
    for field in ["id", "at", "actor", "action", "key", "version_id", "detail"] {
        assert!(first.contains_key(field), "{field} missing from {first:?}");
    }
    assert!(first["at"].as_str().unwrap().ends_with('Z'), "RFC 3339 in UTC");

    // The filters apply; --limit keeps the newest rows, still oldest first.
    ok(coffer(d, &["audit", "--prefix", "docs/", "--export", "docs.jsonl"]));
    let docs = jsonl(&d.join("docs.jsonl"));
    assert_eq!(actions(&docs), ["put", "put", "delete"]);
    let report = json(coffer(
        d,
        &[
            "audit",
            "--actor",
            "importer",
            "--limit",
            "2",
            "--export",
            "two.jsonl",
            "--json",
        ],
    ));
    assert_eq!(report, json!({ "rows": 2, "file": "two.jsonl" }));
    assert_eq!(
        jsonl(&d.join("two.jsonl")),
        audit_oldest_first(d, &["--actor", "importer", "--limit", "2"])
    );
    assert_eq!(jsonl(&d.join("two.jsonl"))[..], all[118..120]);

    // An existing file is replaced whole, with nothing left beside it.
    ok(coffer(d, &["audit", "--action", "delete", "--export", "docs.jsonl"]));
    assert_eq!(actions(&jsonl(&d.join("docs.jsonl"))), ["delete"]);
    let mut names: Vec<String> = std::fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.contains("jsonl"))
        .collect();
    names.sort();
    assert_eq!(names, ["all.jsonl", "docs.jsonl", "two.jsonl"]);

    // Bad input writes nothing.
    fails(
        coffer(d, &["audit", "--since", "last tuesday", "--export", "bad.jsonl"]),
        5,
        "invalid time",
    );
    fails(
        coffer(d, &["audit", "--limit", "0", "--export", "bad.jsonl"]),
        5,
        "--limit",
    );
    fails(
        coffer(d, &["audit", "--export", "no-such-dir/bad.jsonl"]),
        10,
        "no-such-dir",
    );
    assert!(!d.join("bad.jsonl").exists() && !d.join("no-such-dir").exists());
}

#[test]
fn audit_purge_removes_only_rows_older_than_the_retention_and_is_audited() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    put_as(d, "old/a.txt", "alice");
    put_as(d, "old/b.txt", "alice");
    let between = now_rfc3339();
    std::thread::sleep(Duration::from_millis(2500));
    put_as(d, "new/c.txt", "bob");

    // Without a retention nothing may be purged.
    fails(coffer(d, &["audit", "purge"]), 5, "audit_retention");
    fails(coffer(d, &["audit", "purge", "--dry-run"]), 5, "audit_retention");
    assert_eq!(audit_oldest_first(d, &[]).len(), 3);

    let retention = [("COFFER_AUDIT_RETENTION", "2s")];
    let purge = |args: &[&str]| {
        let mut all = vec!["audit", "purge", "--user", "records"];
        all.extend_from_slice(args);
        coffer_in(d, &all, None, &retention)
    };
    // A cutoff later than now minus the retention is refused.
    fails(purge(&["--before", &now_rfc3339()]), 5, "retention of 2s");
    fails(purge(&["--before", "1s"]), 5, "retention of 2s");
    fails(purge(&["--before", "soon"]), 5, "invalid time");
    let dry = ok(purge(&["--before", &between, "--dry-run"])).stdout;
    assert!(dry.starts_with("would remove 2 audit rows older than "), "{dry}");
    assert!(dry.ends_with("(retention 2s)\n"), "{dry}");
    assert_eq!(audit_oldest_first(d, &[]).len(), 3, "a dry run removes nothing");

    let report = json(purge(&["--before", &between, "--json"]));
    assert_eq!((&report["removed"], &report["dry_run"]), (&json!(2), &json!(false)));
    let left = audit_oldest_first(d, &[]);
    assert_eq!(actions(&left), ["put", "audit_purge"]);
    assert_eq!(left[0]["key"], "new/c.txt");
    let purge_row = &left[1];
    assert_eq!(purge_row["actor"], "records");
    assert_eq!(
        (&purge_row["detail"]["removed"], &purge_row["detail"]["retention"]),
        (&json!(2), &json!("2s"))
    );
    assert_eq!(purge_row["detail"]["before"], report["before"]);
    assert_eq!(
        actions(&audit_oldest_first(d, &["--action", "audit_purge"])),
        ["audit_purge"]
    );

    // The retention from the config file; a bad one is a one-line error.
    std::fs::write(d.join("coffer.toml"), "audit_retention = \"100y\"\n").unwrap();
    let text = ok(coffer(d, &["audit", "purge"])).stdout;
    assert!(
        text.starts_with("removed 0 audit rows") && text.ends_with("(retention 100y)\n"),
        "{text}"
    );
    assert!(
        ok(coffer(d, &["info"]))
            .stdout
            .contains("retention 100y, reads not recorded")
    );
    std::fs::write(d.join("coffer.toml"), "audit_retention = \"0d\"\n").unwrap();
    fails(coffer(d, &["audit", "purge"]), 5, "audit_retention");
    std::fs::write(d.join("coffer.toml"), "audit_retention = \"a while\"\n").unwrap();
    fails(coffer(d, &["info"]), 5, "audit_retention");
    std::fs::remove_file(d.join("coffer.toml")).unwrap();
    assert_eq!(audit_oldest_first(d, &[]).len(), 3, "refused purges change nothing");
    assert_eq!(
        coffer(d, &["audit", "--key", "x", "purge"]).code,
        2,
        "filters do not go with purge"
    );
}

#[test]
fn audit_reads_records_every_get_only_when_on() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let v1 = put_as(d, "doc.txt", "writer");
    ok(coffer_in(d, &["put", "doc.txt"], Some(b"second version"), &[]));
    ok(coffer(d, &["get", "doc.txt"]));
    assert!(audit_oldest_first(d, &["--action", "get"]).is_empty(), "off by default");
    assert!(
        ok(coffer(d, &["info"]))
            .stdout
            .contains("no retention (never purged), reads not recorded")
    );

    let on = [("COFFER_AUDIT_READS", "true")];
    let get = |args: &[&str]| {
        let mut all = vec!["get", "doc.txt", "--user", "reader"];
        all.extend_from_slice(args);
        ok(coffer_in(d, &all, None, &on)).stdout
    };
    assert_eq!(get(&[]), "second version");
    assert_eq!(get(&["--range", "0-5"]), "second");
    assert_eq!(get(&["--version", v1["version_id"].as_str().unwrap()]), "doc.txt");
    fails(coffer_in(d, &["get", "missing.txt"], None, &on), 3, "no such key");
    let info = json(coffer_in(d, &["info", "--json"], None, &on));
    assert_eq!(
        (&info["audit_reads"], &info["audit_retention"]),
        (&json!(true), &Value::Null)
    );

    let reads = audit_oldest_first(d, &["--action", "get"]);
    let details: Vec<&Value> = reads.iter().map(|r| &r["detail"]).collect();
    assert_eq!(
        details,
        [
            &json!({ "size": 14 }),
            &json!({ "size": 14, "range": "0-5" }),
            &json!({ "size": 7 })
        ]
    );
    assert!(reads.iter().all(|r| r["actor"] == "reader" && r["key"] == "doc.txt"));
    assert_eq!(reads[2]["version_id"], v1["version_id"]);

    ok(coffer_in(d, &["get", "doc.txt"], None, &[("COFFER_AUDIT_READS", "0")]));
    assert_eq!(audit_oldest_first(d, &["--action", "get"]).len(), 3);
    fails(
        coffer_in(d, &["get", "doc.txt"], None, &[("COFFER_AUDIT_READS", "maybe")]),
        5,
        "COFFER_AUDIT_READS",
    );
}
