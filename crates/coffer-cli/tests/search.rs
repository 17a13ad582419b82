//! End-to-end tests of `coffer search`, run through the built binary as a user would.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::path::Path;

use common::{coffer, coffer_in, fails, json, ok};
use serde_json::Value;

fn put(d: &Path, key: &str, extra: &[&str]) -> Value {
    let mut args = vec!["put", key, "--json"];
    args.extend_from_slice(extra);
    json(coffer_in(d, &args, Some(b"content"), &[]))
}

/// `search ARGS --json`: the hits' keys, and the next cursor.
fn search(d: &Path, args: &[&str]) -> (Vec<String>, Option<String>) {
    let mut all = vec!["search", "--json"];
    all.extend_from_slice(args);
    let page = json(coffer(d, &all));
    let keys = page["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["key"].as_str().unwrap().to_owned())
        .collect();
    (keys, page["next_cursor"].as_str().map(str::to_owned))
}

fn sorted(mut keys: Vec<String>) -> Vec<String> {
    keys.sort();
    keys
}

#[test]
fn search_finds_words_of_keys_metadata_tags_and_comments_with_filters() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let first = put(
        d,
        "invoices/2024/inv_001.pdf",
        &["--metadata", "customer=Acme Corp", "--tag", "qc_status=approved"],
    );
    put(d, "invoices/2024/inv_002.pdf", &["--tag", "qc_status=pending"]);
    put(d, "reports/q1.csv", &["--metadata", "customer=Acme Corp"]);
    let version = first["version_id"].as_str().unwrap();
    ok(coffer(
        d,
        &["comment", "invoices/2024/inv_001.pdf", version, "Checked by Zelda"],
    ));

    assert_eq!(search(d, &["approved invoice"]).0, ["invoices/2024/inv_001.pdf"]);
    assert_eq!(search(d, &["zeld"]).0, ["invoices/2024/inv_001.pdf"]);
    assert_eq!(
        sorted(search(d, &["acme"]).0),
        ["invoices/2024/inv_001.pdf", "reports/q1.csv"]
    );
    assert_eq!(search(d, &["acme", "--prefix", "reports/"]).0, ["reports/q1.csv"]);
    assert_eq!(
        search(d, &["acme", "--content-type", "application/pdf"]).0,
        ["invoices/2024/inv_001.pdf"]
    );
    assert_eq!(
        search(d, &["--tag", "qc_status=pending"]).0,
        ["invoices/2024/inv_002.pdf"]
    );
    assert_eq!(
        search(d, &["--metadata", "customer=Acme Corp", "--tag", "qc_status=approved"]).0,
        ["invoices/2024/inv_001.pdf"]
    );
    assert_eq!(search(d, &["acme", "--since", "1d"]).0.len(), 2);
    assert!(search(d, &["acme", "--until", "1d"]).0.is_empty());

    // A deleted key is found only among all versions.
    ok(coffer(d, &["delete", "reports/q1.csv"]));
    assert_eq!(search(d, &["acme"]).0, ["invoices/2024/inv_001.pdf"]);
    assert_eq!(
        sorted(search(d, &["acme", "--all-versions"]).0),
        ["invoices/2024/inv_001.pdf", "reports/q1.csv"]
    );

    // The table: a row per hit, with its score.
    let table = ok(coffer(d, &["search", "invoice"])).stdout;
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 3, "{table}");
    assert!(lines[0].starts_with("KEY") && lines[0].contains("SCORE"), "{table}");
    assert!(table.contains("invoices/2024/inv_001.pdf") && table.contains("qc_status=approved"));
}

#[test]
fn search_pages_with_a_cursor() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for i in 0..5 {
        put(d, &format!("scans/img_{i}.jpg"), &[]);
    }
    let mut seen = Vec::new();
    let mut args = vec!["img".to_owned(), "--limit".to_owned(), "2".to_owned()];
    loop {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let (keys, cursor) = search(d, &refs);
        assert!(keys.len() <= 2);
        seen.extend(keys);
        match cursor {
            Some(cursor) => args = vec!["img".into(), "--limit".into(), "2".into(), "--cursor".into(), cursor],
            None => break,
        }
    }
    let expected: Vec<String> = (0..5).map(|i| format!("scans/img_{i}.jpg")).collect();
    assert_eq!(sorted(seen), expected);
    // The table says how to go on.
    let table = ok(coffer(d, &["search", "img", "--limit", "2"])).stdout;
    assert!(table.lines().last().unwrap().starts_with("(more: --cursor "), "{table}");
}

#[test]
fn bad_search_input_is_one_line_exit_5_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    put(d, "a/b.txt", &[]);
    put(d, "a/c.txt", &[]);
    let cursor = search(d, &["--limit", "1"]).1.unwrap();
    let audit_before = ok(coffer(d, &["audit", "--json"])).stdout;
    let cases: [(&[&str], &str); 8] = [
        (&["b", "--limit", "0"], "limit must be between 1 and 1000"),
        (&["b", "--limit", "5000"], "limit must be between 1 and 1000"),
        (&["!!!"], "has no words"),
        (&["b", "--cursor", "nonsense"], "invalid search cursor"),
        (&["b", "--cursor", &cursor], "different query"),
        (&["b", "--tag", "qc status=x"], "invalid tag name"),
        (&["b", "--metadata", "novalue"], "is not NAME=VALUE"),
        (&["b", "--since", "someday"], "invalid time"),
    ];
    for (args, message) in cases {
        let mut all = vec!["search"];
        all.extend_from_slice(args);
        fails(coffer(d, &all), 5, message);
    }
    assert_eq!(ok(coffer(d, &["audit", "--json"])).stdout, audit_before);
}
