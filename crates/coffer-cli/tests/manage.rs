//! End-to-end tests of version management and integrity: history, rollback,
//! compare, tag, comment, prune, audit, verify, reindex, import and export,
//! run through the built `coffer` binary as a user would.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{coffer, coffer_in, fails, flush, json, ok};
use serde_json::{Value, json};

/// A well-formed version id no version has.
const NO_SUCH_VERSION: &str = "0123456789abcdef0123456789abcdef";

/// `coffer put KEY --user USER --json EXTRA...` with `content` on standard input.
fn put_as(d: &Path, key: &str, content: &[u8], user: &str, extra: &[&str]) -> Value {
    let mut args = vec!["put", key, "--user", user, "--json"];
    args.extend_from_slice(extra);
    json(coffer_in(d, &args, Some(content), &[]))
}

fn put(d: &Path, key: &str, content: &[u8]) -> Value {
    put_as(d, key, content, "tester", &[])
}

fn id(version: &Value) -> String {
    version["version_id"].as_str().unwrap().to_owned()
}

/// `versions KEY --json` as a list.
fn versions(d: &Path, key: &str) -> Vec<Value> {
    json(coffer(d, &["versions", key, "--json"]))
        .as_array()
        .unwrap()
        .clone()
}

/// The version ids of KEY, newest first.
fn version_ids(d: &Path, key: &str) -> Vec<String> {
    versions(d, key).iter().map(id).collect()
}

/// The ids of a list of versions (or of a prune report's `removed`).
fn ids_of(list: &Value) -> Vec<String> {
    list.as_array().unwrap().iter().map(id).collect()
}

/// The latest content of KEY (or of one version), read with `get`.
fn get(d: &Path, key: &str, version: Option<&str>) -> Vec<u8> {
    let mut args = vec!["get", key, "--output", "got.tmp"];
    if let Some(version) = version {
        args.extend(["--version", version]);
    }
    ok(coffer(d, &args));
    let bytes = std::fs::read(d.join("got.tmp")).unwrap();
    std::fs::remove_file(d.join("got.tmp")).unwrap();
    bytes
}

/// Every regular file under `root` (symbolic links left out), by `/`-separated relative path.
fn tree(root: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, files: &mut BTreeMap<String, Vec<u8>>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            let file_type = entry.file_type().unwrap();
            let path = entry.path();
            if file_type.is_dir() {
                walk(root, &path, files);
            } else if file_type.is_file() {
                let relative = path.strip_prefix(root).unwrap();
                let parts: Vec<&str> = relative.iter().map(|p| p.to_str().unwrap()).collect();
                files.insert(parts.join("/"), std::fs::read(&path).unwrap());
            }
        }
    }
    let mut files = BTreeMap::new();
    walk(root, root, &mut files);
    files
}

fn blobs_dir(d: &Path) -> PathBuf {
    d.join("coffer-data/store/blobs")
}

/// The file on disk holding a version's content.
fn blob_file(d: &Path, version: &Value) -> PathBuf {
    d.join("coffer-data/store").join(version["blob_path"].as_str().unwrap())
}

/// `(action, actor, key)` of audit rows, oldest first.
fn audit_rows(rows: &Value) -> Vec<(String, String, String)> {
    let mut out: Vec<(String, String, String)> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["action"].as_str().unwrap().to_owned(),
                r["actor"].as_str().unwrap().to_owned(),
                r["key"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    out.reverse();
    out
}

fn audit(d: &Path, filters: &[&str]) -> Value {
    let mut args = vec!["audit", "--json"];
    args.extend_from_slice(filters);
    json(coffer(d, &args))
}

fn now_rfc3339() -> String {
    humantime::format_rfc3339_micros(SystemTime::now()).to_string()
}

#[test]
fn history_lists_versions_newest_first_with_size_change_author_tags_and_comments() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let v1 = put_as(d, "report.txt", b"0123456789", "alice", &["--tag", "stage=draft"]);
    let v2 = put_as(d, "report.txt", &[b'x'; 25], "bob", &[]);
    let v3 = put_as(d, "report.txt", b"short", "carol", &[]);
    ok(coffer(
        d,
        &["comment", "report.txt", &id(&v2), "needs review", "--user", "dave"],
    ));
    let marker = json(coffer(d, &["delete", "report.txt", "--user", "erin", "--json"]));

    let history = json(coffer(d, &["history", "report.txt", "--json"]));
    let h = history.as_array().unwrap();
    assert_eq!(
        ids_of(&history),
        [id(&marker), id(&v3), id(&v2), id(&v1)],
        "newest first"
    );
    let field = |name: &str| h.iter().map(|e| e[name].clone()).collect::<Vec<_>>();
    assert_eq!(field("size_change"), [json!(-5), json!(-20), json!(15), json!(10)]);
    assert_eq!(
        field("created_by"),
        [json!("erin"), json!("carol"), json!("bob"), json!("alice")]
    );
    assert_eq!(
        field("is_latest"),
        [json!(true), json!(false), json!(false), json!(false)]
    );
    assert_eq!(
        field("is_delete_marker"),
        [json!(true), json!(false), json!(false), json!(false)]
    );
    assert_eq!(h[3]["tags"], json!({ "stage": "draft" }));
    assert_eq!(h[2]["tags"], json!({}));
    let comments = h[2]["comments"].as_array().unwrap();
    assert_eq!(comments.len(), 1);
    assert_eq!(
        (&comments[0]["actor"], &comments[0]["text"]),
        (&json!("dave"), &json!("needs review"))
    );
    assert!(comments[0]["at"].as_str().unwrap().ends_with('Z'), "{}", comments[0]);
    assert_eq!(h[3]["comments"], json!([]));

    // --limit: the oldest shown still compares with the version before it.
    let limited = json(coffer(d, &["history", "report.txt", "--limit", "2", "--json"]));
    assert_eq!(ids_of(&limited), [id(&marker), id(&v3)]);
    assert_eq!(limited[1]["size_change"], -20, "not measured from 0");

    let text = ok(coffer(d, &["history", "report.txt"])).stdout;
    let lines: Vec<Vec<&str>> = text.lines().map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(lines.len(), 5, "{text}");
    assert_eq!(
        lines[0],
        [
            "VERSION", "LATEST", "CREATED", "BY", "SIZE", "CHANGE", "TAGS", "COMMENT"
        ]
    );
    let row = |i: usize, words: &[&str]| {
        for word in words {
            assert!(lines[i].contains(word), "{word:?} missing from row {i} of\n{text}");
        }
    };
    row(1, &[&id(&marker), "*", "erin", "delete", "marker", "-5"]);
    row(2, &[&id(&v3), "carol", "5", "B", "-20"]);
    row(3, &[&id(&v2), "bob", "25", "+15", "needs", "review"]);
    row(4, &[&id(&v1), "alice", "10", "+10", "stage=draft"]);
    assert!(!lines[2].contains(&"*"), "only the latest is starred: {text}");
    let one = ok(coffer(d, &["history", "report.txt", "--limit", "1"])).stdout;
    assert_eq!(one.lines().count(), 2, "{one}");

    fails(coffer(d, &["history", "missing.txt"]), 3, "no such key");
    fails(coffer(d, &["history", "report.txt", "--limit", "0"]), 5, "at least 1");
    fails(coffer(d, &["history", "../escape"]), 4, "invalid key");
}

#[test]
fn rollback_makes_old_content_current_without_copying_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let v1 = put_as(d, "contract.txt", b"first draft\n", "alice", &["-m", "signed=no"]);
    let v2 = put_as(d, "contract.txt", b"second draft, much longer\n", "bob", &[]);
    flush(d);
    let blobs_before = tree(&blobs_dir(d)).len();
    assert_eq!(blobs_before, 2);

    let rolled = json(coffer(
        d,
        &[
            "rollback",
            "contract.txt",
            &id(&v1),
            "--comment",
            "v2 had the wrong figures",
            "--user",
            "qc_supervisor",
            "--json",
        ],
    ));
    assert!(id(&rolled) != id(&v1) && id(&rolled) != id(&v2), "a new version");
    assert_eq!(rolled["is_latest"], true);
    assert_eq!(rolled["created_by"], "qc_supervisor");
    assert_eq!(rolled["blob_path"], v1["blob_path"], "shares the old version's blob");
    assert_eq!(rolled["sha256"], v1["sha256"]);
    assert_eq!(rolled["size"], v1["size"]);
    assert_eq!(
        rolled["metadata"],
        json!({ "signed": "no" }),
        "the old metadata comes back"
    );
    let comments = rolled["comments"].as_array().unwrap();
    assert_eq!(comments.len(), 1);
    assert_eq!(comments[0]["actor"], "qc_supervisor");
    assert_eq!(comments[0]["text"], "v2 had the wrong figures");
    assert_eq!(get(d, "contract.txt", None), b"first draft\n");
    assert_eq!(tree(&blobs_dir(d)).len(), blobs_before, "no bytes copied");
    assert_eq!(version_ids(d, "contract.txt"), [id(&rolled), id(&v2), id(&v1)]);
    let history = json(coffer(d, &["history", "contract.txt", "--json"]));
    assert_eq!(history[0]["comments"][0]["text"], "v2 had the wrong figures");
    assert_eq!(history[0]["size_change"], -14);

    // Text form; without --comment no comment is recorded.
    let text = ok(coffer(d, &["rollback", "contract.txt", &id(&v2), "--user", "bob"])).stdout;
    assert!(
        text.starts_with(&format!("rolled back to {}: new contract.txt version ", id(&v2))),
        "{text}"
    );
    assert_eq!(get(d, "contract.txt", None), b"second draft, much longer\n");
    assert_eq!(versions(d, "contract.txt")[0]["comments"], json!([]));

    // A deleted key comes back by rolling back; a delete marker cannot be rolled back to.
    ok(coffer(d, &["delete", "contract.txt"]));
    assert_eq!(coffer(d, &["exists", "contract.txt"]).code, 3);
    let marker = version_ids(d, "contract.txt")[0].clone();
    fails(coffer(d, &["rollback", "contract.txt", &marker]), 5, "delete marker");
    fails(
        coffer(d, &["rollback", "contract.txt", NO_SUCH_VERSION]),
        3,
        "no version",
    );
    fails(
        coffer(d, &["rollback", "contract.txt", "nothex"]),
        5,
        "invalid version id",
    );
    fails(
        coffer(d, &["rollback", "contract.txt", &id(&v1), "--comment", ""]),
        5,
        "cannot be empty",
    );
    fails(coffer(d, &["rollback", "missing.txt", &id(&v1)]), 3, "no version");
    assert_eq!(version_ids(d, "contract.txt").len(), 5, "failed rollbacks add nothing");
    assert_eq!(coffer(d, &["exists", "contract.txt"]).code, 3);

    ok(coffer(d, &["rollback", "contract.txt", &id(&v1)]));
    assert_eq!(coffer(d, &["exists", "contract.txt"]).code, 0);
    assert_eq!(get(d, "contract.txt", None), b"first draft\n");
}

#[test]
fn compare_shows_size_content_metadata_tag_and_text_differences() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let old_text = "line one\nline two\nline three\n";
    let new_text = "line one\nline 2 changed\nline three\nline four\n";
    let v1 = put_as(
        d,
        "notes.txt",
        old_text.as_bytes(),
        "alice",
        &["-m", "dept=fin", "-t", "stage=draft"],
    );
    let v2 = put_as(
        d,
        "notes.txt",
        new_text.as_bytes(),
        "bob",
        &["-m", "dept=ops", "-m", "owner=bob"],
    );
    let growth = new_text.len() - old_text.len();

    let text = ok(coffer(d, &["compare", "notes.txt", &id(&v1), &id(&v2)])).stdout;
    let has_line = |start: &str, words: &[&str]| {
        assert!(
            text.lines()
                .any(|l| l.starts_with(start) && words.iter().all(|w| l.contains(w))),
            "no {start:?} line with {words:?} in\n{text}"
        );
    };
    has_line("from:", &[&id(&v1)]);
    has_line("to:", &[&id(&v2)]);
    has_line("size change:", &[&format!("+{growth} bytes")]);
    has_line("content:", &["different"]);
    has_line("metadata:", &["dept: fin -> ops"]);
    has_line("metadata:", &["owner: (none) -> bob"]);
    has_line("tag:", &["stage: draft -> (none)"]);
    let lines: Vec<&str> = text.lines().collect();
    for diff_line in ["-line two", "+line 2 changed", "+line four", " line one"] {
        assert!(lines.contains(&diff_line), "{diff_line:?} missing from\n{text}");
    }
    assert!(!lines.contains(&"-line one"), "unchanged lines are context:\n{text}");

    let c = json(coffer(d, &["compare", "notes.txt", &id(&v1), &id(&v2), "--json"]));
    assert_eq!(c["same_content"], false);
    assert_eq!(c["size_change"], json!(growth));
    assert_eq!(c["content_type"], Value::Null, "both text/plain");
    assert_eq!(
        c["metadata"],
        json!({
            "dept": { "before": "fin", "after": "ops" },
            "owner": { "before": null, "after": "bob" },
        })
    );
    assert_eq!(c["tags"], json!({ "stage": { "before": "draft", "after": null } }));
    assert_eq!((id(&c["from"]), id(&c["to"])), (id(&v1), id(&v2)));
    let unified = c["text_diff"]["unified"].as_str().unwrap();
    assert!(
        unified.contains("\n-line two\n") && unified.contains("\n+line 2 changed\n"),
        "{unified}"
    );

    // The other way round the size shrinks.
    let back = json(coffer(d, &["compare", "notes.txt", &id(&v2), &id(&v1), "--json"]));
    assert_eq!(back["size_change"], -i64::try_from(growth).unwrap());
    let back_text = ok(coffer(d, &["compare", "notes.txt", &id(&v2), &id(&v1)])).stdout;
    assert!(back_text.contains(&format!("-{growth} bytes")), "{back_text}");

    // The same bytes again (same blob): same content, an empty diff.
    let v3 = put_as(d, "notes.txt", old_text.as_bytes(), "carol", &["-m", "dept=fin"]);
    let same = json(coffer(d, &["compare", "notes.txt", &id(&v1), &id(&v3), "--json"]));
    assert_eq!(
        (
            &same["same_content"],
            &same["size_change"],
            &same["text_diff"],
            &same["metadata"]
        ),
        (&json!(true), &json!(0), &json!({ "unified": "" }), &json!({}))
    );
    let same_text = ok(coffer(d, &["compare", "notes.txt", &id(&v1), &id(&v3)])).stdout;
    assert!(same_text.contains("same (equal SHA-256)"), "{same_text}");
    assert!(!same_text.contains("---"), "no diff: {same_text}");

    // Binary contents: no text diff, and the reason.
    let b1 = put(d, "image.bin", &[0x89, b'P', b'N', b'G', 0, 1, 2, 3]);
    let b2 = put(d, "image.bin", &[0x89, b'P', b'N', b'G', 0, 9, 9]);
    let bin = json(coffer(d, &["compare", "image.bin", &id(&b1), &id(&b2), "--json"]));
    assert_eq!(bin["text_diff"], json!({ "skipped": "binary content" }));
    assert_eq!((&bin["same_content"], &bin["size_change"]), (&json!(false), &json!(-1)));
    let bin_text = ok(coffer(d, &["compare", "image.bin", &id(&b1), &id(&b2)])).stdout;
    assert!(
        bin_text
            .lines()
            .any(|l| l.starts_with("text diff:") && l.contains("binary content")),
        "{bin_text}"
    );

    fails(
        coffer(d, &["compare", "notes.txt", &id(&v1), "nothex"]),
        5,
        "invalid version id",
    );
    fails(
        coffer(d, &["compare", "notes.txt", NO_SUCH_VERSION, &id(&v1)]),
        3,
        "no version",
    );
    fails(
        coffer(d, &["compare", "notes.txt", &id(&v1), &id(&b1)]),
        3,
        "no version",
    );
}

#[test]
fn tag_sets_replaces_and_removes_tags_and_rejects_bad_ones_without_changes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let v1 = put(d, "doc.txt", b"one");
    let v2 = put(d, "doc.txt", b"two");
    let v1_id = id(&v1);

    let tagged = json(coffer(d, &["tag", "doc.txt", &v1_id, "a=1", "b=2", "--json"]));
    assert_eq!(
        (id(&tagged), &tagged["tags"]),
        (v1_id.clone(), &json!({ "a": "1", "b": "2" }))
    );
    let text = ok(coffer(d, &["tag", "doc.txt", &v1_id, "c=3"])).stdout;
    assert_eq!(text, format!("tags of doc.txt version {v1_id}: a=1,b=2,c=3\n"));
    let removed = json(coffer(
        d,
        &["tag", "doc.txt", &v1_id, "--remove", "a", "--remove", "c", "--json"],
    ));
    assert_eq!(removed["tags"], json!({ "b": "2" }));
    ok(coffer(d, &["tag", "doc.txt", &v1_id, "b=20", "empty="]));

    // Everywhere a version is shown, with the other version untouched.
    let expected = json!({ "b": "20", "empty": "" });
    let listed = versions(d, "doc.txt");
    assert_eq!((&listed[1]["tags"], &listed[0]["tags"]), (&expected, &json!({})));
    let history = json(coffer(d, &["history", "doc.txt", "--json"]));
    assert_eq!(history[1]["tags"], expected);
    let head = json(coffer(d, &["metadata", "doc.txt", "--version", &v1_id, "--json"]));
    assert_eq!(head["tags"], expected);
    let head_text = ok(coffer(d, &["metadata", "doc.txt", "--version", &v1_id])).stdout;
    assert!(
        head_text.lines().any(|l| l.starts_with("tag:") && l.ends_with("b=20")),
        "{head_text}"
    );
    assert_eq!(json(coffer(d, &["metadata", "doc.txt", "--json"]))["tags"], json!({}));
    assert_eq!(get(d, "doc.txt", None), b"two", "tagging makes no version");
    assert_eq!(version_ids(d, "doc.txt"), [id(&v2), v1_id.clone()]);

    let tags_now = || json(coffer(d, &["metadata", "doc.txt", "--version", &v1_id, "--json"]))["tags"].clone();
    fails(
        coffer(d, &["tag", "doc.txt", &v1_id, "bad name=1"]),
        5,
        "invalid tag name",
    );
    fails(coffer(d, &["tag", "doc.txt", &v1_id, "noequals"]), 5, "NAME=VALUE");
    fails(
        coffer(d, &["tag", "doc.txt", &v1_id, "good=1", "noequals"]),
        5,
        "NAME=VALUE",
    );
    fails(
        coffer(d, &["tag", "doc.txt", &v1_id, "good=1", "bad name=1"]),
        5,
        "invalid tag name",
    );
    fails(
        coffer(d, &["tag", "doc.txt", &v1_id, "--remove", "bad name"]),
        5,
        "invalid tag name",
    );
    fails(coffer(d, &["tag", "doc.txt", &v1_id]), 5, "no tags");
    fails(
        coffer(d, &["tag", "doc.txt", &v1_id, "b=1", "--remove", "b"]),
        5,
        "both set and removed",
    );
    fails(coffer(d, &["tag", "doc.txt", "nothex", "a=1"]), 5, "invalid version id");
    fails(coffer(d, &["tag", "doc.txt", NO_SUCH_VERSION, "a=1"]), 3, "no version");
    assert_eq!(tags_now(), expected, "failed tag commands change nothing");

    let cleared = ok(coffer(
        d,
        &["tag", "doc.txt", &v1_id, "--remove", "b", "--remove", "empty"],
    ))
    .stdout;
    assert_eq!(cleared, format!("tags of doc.txt version {v1_id}: (none)\n"));
    assert_eq!(tags_now(), json!({}));
}

#[test]
fn comments_accumulate_in_order_with_their_authors() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let v1 = put(d, "batch.csv", b"id,value\n1,10\n");
    let v2 = put(d, "batch.csv", b"id,value\n1,11\n");
    let v1_id = id(&v1);

    let first = json(coffer(
        d,
        &[
            "comment",
            "batch.csv",
            &v1_id,
            "first check passed",
            "--user",
            "qc_analyst",
            "--json",
        ],
    ));
    assert_eq!(first["comments"].as_array().unwrap().len(), 1);
    let text = ok(coffer(
        d,
        &[
            "comment",
            "batch.csv",
            &v1_id,
            "second look: figures match",
            "--user",
            "qc_supervisor",
        ],
    ))
    .stdout;
    assert_eq!(text, format!("commented on batch.csv version {v1_id} (2 comments)\n"));

    let head = json(coffer(d, &["metadata", "batch.csv", "--version", &v1_id, "--json"]));
    let comments = head["comments"].as_array().unwrap();
    let pairs: Vec<(&str, &str)> = comments
        .iter()
        .map(|c| (c["actor"].as_str().unwrap(), c["text"].as_str().unwrap()))
        .collect();
    assert_eq!(
        pairs,
        [
            ("qc_analyst", "first check passed"),
            ("qc_supervisor", "second look: figures match")
        ]
    );
    assert!(
        comments[0]["at"].as_str().unwrap() <= comments[1]["at"].as_str().unwrap(),
        "oldest first"
    );
    assert_eq!(versions(d, "batch.csv")[0]["comments"], json!([]), "only on {v1_id}");
    assert_eq!(id(&v2), version_ids(d, "batch.csv")[0]);

    let meta_text = ok(coffer(d, &["metadata", "batch.csv", "--version", &v1_id])).stdout;
    let comment_lines: Vec<&str> = meta_text.lines().filter(|l| l.starts_with("comment:")).collect();
    assert_eq!(comment_lines.len(), 2, "{meta_text}");
    assert!(
        comment_lines[0].ends_with("qc_analyst: first check passed"),
        "{meta_text}"
    );
    assert!(
        comment_lines[1].ends_with("qc_supervisor: second look: figures match"),
        "{meta_text}"
    );
    let history = ok(coffer(d, &["history", "batch.csv"])).stdout;
    assert!(
        history.contains("second look: figures match (+1 more)"),
        "the newest comment shows in history:\n{history}"
    );

    fails(coffer(d, &["comment", "batch.csv", &v1_id, ""]), 5, "cannot be empty");
    fails(
        coffer(d, &["comment", "batch.csv", &v1_id, "   "]),
        5,
        "cannot be empty",
    );
    fails(
        coffer(d, &["comment", "batch.csv", &v1_id, "bell\u{7}"]),
        5,
        "control characters",
    );
    fails(
        coffer(d, &["comment", "batch.csv", NO_SUCH_VERSION, "x"]),
        3,
        "no version",
    );
    fails(
        coffer(d, &["comment", "batch.csv", "nothex", "x"]),
        5,
        "invalid version id",
    );
    let head = json(coffer(d, &["metadata", "batch.csv", "--version", &v1_id, "--json"]));
    assert_eq!(head["comments"].as_array().unwrap().len(), 2, "failures add nothing");
}

#[test]
fn prune_keeps_the_newest_and_blobs_still_in_use() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // v4 has v1's content, so they share one blob.
    let v: Vec<Value> = ["alpha", "beta", "gamma", "alpha", "delta"]
        .iter()
        .map(|content| put(d, "data.txt", content.as_bytes()))
        .collect();
    let ids: Vec<String> = v.iter().map(id).collect();
    assert_eq!(v[3]["blob_path"], v[0]["blob_path"]);
    flush(d);
    let all: Vec<String> = ids.iter().rev().cloned().collect();

    fails(
        coffer(d, &["prune", "data.txt", "--keep", "0"]),
        5,
        "would remove its latest version",
    );
    assert_eq!(version_ids(d, "data.txt"), all, "nothing removed");

    let dry = json(coffer(d, &["prune", "data.txt", "--keep", "2", "--dry-run", "--json"]));
    assert_eq!(dry["dry_run"], true);
    assert_eq!(
        ids_of(&dry["removed"]),
        [ids[2].as_str(), ids[1].as_str(), ids[0].as_str()]
    );
    assert_eq!((&dry["blobs_freed"], &dry["bytes_freed"]), (&json!(2), &json!(9)));
    let dry_text = ok(coffer(d, &["prune", "data.txt", "--keep", "2", "--dry-run"])).stdout;
    assert!(
        dry_text.contains(&format!("would remove data.txt version {} (5 B)", ids[2])),
        "{dry_text}"
    );
    assert!(
        dry_text.ends_with("would remove 3 versions; 2 blobs (9 B) would be freed\n"),
        "{dry_text}"
    );
    assert_eq!(version_ids(d, "data.txt"), all, "a dry run removes nothing");
    assert_eq!(tree(&blobs_dir(d)).len(), 4);

    let report = json(coffer(d, &["prune", "data.txt", "--keep", "2", "--json"]));
    assert_eq!(report["dry_run"], false);
    assert_eq!(
        ids_of(&report["removed"]),
        [ids[2].as_str(), ids[1].as_str(), ids[0].as_str()]
    );
    assert_eq!((&report["blobs_freed"], &report["bytes_freed"]), (&json!(2), &json!(9)));
    assert_eq!(version_ids(d, "data.txt"), [ids[4].as_str(), ids[3].as_str()]);
    assert!(blob_file(d, &v[0]).exists(), "v1's blob stays: v4 uses it");
    assert!(!blob_file(d, &v[1]).exists() && !blob_file(d, &v[2]).exists());
    assert_eq!(tree(&blobs_dir(d)).len(), 2);
    assert_eq!(get(d, "data.txt", Some(ids[3].as_str())), b"alpha");
    assert_eq!(get(d, "data.txt", None), b"delta");
    fails(coffer(d, &["get", "data.txt", "--version", &ids[0]]), 3, "no version");

    let text = ok(coffer(d, &["prune", "data.txt", "--keep", "1"])).stdout;
    assert_eq!(
        text,
        format!(
            "removed data.txt version {} (5 B)\nremoved 1 version; 1 blob (5 B) freed\n",
            ids[3]
        )
    );
    assert_eq!(version_ids(d, "data.txt"), [ids[4].as_str()]);
    let again = json(coffer(d, &["prune", "data.txt", "--keep", "1", "--json"]));
    assert_eq!(again["removed"], json!([]), "nothing left to remove");

    // A deleted key keeps its delete marker, the latest version.
    ok(coffer(d, &["delete", "data.txt"]));
    let report = json(coffer(d, &["prune", "data.txt", "--keep", "1", "--json"]));
    assert_eq!(ids_of(&report["removed"]), [ids[4].as_str()]);
    let left = versions(d, "data.txt");
    assert_eq!(left.len(), 1);
    assert_eq!(
        (&left[0]["is_delete_marker"], &left[0]["is_latest"]),
        (&json!(true), &json!(true))
    );
    assert_eq!(tree(&blobs_dir(d)).len(), 0, "every blob freed");

    fails(coffer(d, &["prune", "missing.txt", "--keep", "1"]), 3, "no such key");
}

#[test]
fn prune_keep_tagged_spares_tagged_versions() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ids: Vec<String> = ["one", "two", "three"]
        .iter()
        .map(|content| id(&put(d, "release.txt", content.as_bytes())))
        .collect();
    ok(coffer(d, &["tag", "release.txt", &ids[0], "release=1.0"]));

    let spared = json(coffer(
        d,
        &["prune", "release.txt", "--keep", "1", "--keep-tagged", "--json"],
    ));
    assert_eq!(
        ids_of(&spared["removed"]),
        [ids[1].as_str()],
        "--keep-tagged keeps the tagged v1 and removes only the untagged v2"
    );
    assert_eq!(version_ids(d, "release.txt"), [ids[2].as_str(), ids[0].as_str()]);

    let plain = json(coffer(d, &["prune", "release.txt", "--keep", "1", "--json"]));
    assert_eq!(
        ids_of(&plain["removed"]),
        [ids[0].as_str()],
        "without --keep-tagged a tagged version is pruned like any other"
    );
    assert_eq!(version_ids(d, "release.txt"), [ids[2].as_str()]);
}

#[test]
fn prune_prefix_prunes_every_key_under_it_deleted_ones_included() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let a: Vec<String> = ["a1", "a2", "a3"]
        .iter()
        .map(|c| id(&put(d, "logs/a", c.as_bytes())))
        .collect();
    let b: Vec<String> = ["b1", "b2"]
        .iter()
        .map(|c| id(&put(d, "logs/b", c.as_bytes())))
        .collect();
    ok(coffer(d, &["delete", "logs/b"]));
    let c = id(&put(d, "logs/c", b"c1"));
    let x: Vec<String> = ["x1", "x2"]
        .iter()
        .map(|c| id(&put(d, "other/x", c.as_bytes())))
        .collect();

    fails(
        coffer(d, &["prune", "--prefix", "logs/", "--keep", "0"]),
        5,
        "latest version",
    );
    let dry = ok(coffer(d, &["prune", "--prefix", "logs/", "--keep", "1", "--dry-run"])).stdout;
    let doomed: Vec<&str> = dry.lines().filter(|l| l.starts_with("would remove logs/")).collect();
    assert_eq!(doomed.len(), 4, "{dry}");
    assert!(
        dry.ends_with("would remove 4 versions; 4 blobs (8 B) would be freed\n"),
        "{dry}"
    );
    assert_eq!(version_ids(d, "logs/a").len(), 3, "a dry run removes nothing");

    let report = json(coffer(d, &["prune", "--prefix", "logs/", "--keep", "1", "--json"]));
    let mut removed: Vec<(String, String)> = report["removed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (v["key"].as_str().unwrap().to_owned(), id(v)))
        .collect();
    removed.sort();
    let mut expected: Vec<(String, String)> = vec![
        ("logs/a".into(), a[0].clone()),
        ("logs/a".into(), a[1].clone()),
        ("logs/b".into(), b[0].clone()),
        ("logs/b".into(), b[1].clone()),
    ];
    expected.sort();
    assert_eq!(removed, expected);
    assert_eq!(report["blobs_freed"], 4);

    assert_eq!(version_ids(d, "logs/a"), [a[2].as_str()]);
    assert_eq!(get(d, "logs/a", None), b"a3");
    let b_left = versions(d, "logs/b");
    assert_eq!((b_left.len(), &b_left[0]["is_delete_marker"]), (1, &json!(true)));
    assert_eq!(version_ids(d, "logs/c"), [c.as_str()]);
    assert_eq!(
        version_ids(d, "other/x"),
        [x[1].as_str(), x[0].as_str()],
        "outside the prefix: untouched"
    );

    assert_eq!(
        coffer(d, &["prune", "logs/a", "--prefix", "logs/", "--keep", "1"]).code,
        2
    );
    assert_eq!(coffer(d, &["prune", "--keep", "1"]).code, 2);
}

#[test]
fn audit_records_every_change_with_its_action_and_actor() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let as_user = |args: &[&str], user: &str| {
        let mut args = args.to_vec();
        args.extend(["--user", user]);
        ok(coffer(d, &args));
    };
    let v1 = put_as(d, "docs/a.txt", b"first", "alice", &[]);
    let v2 = put_as(d, "docs/a.txt", b"second", "alice", &[]);
    let between = now_rfc3339();
    let copy = json(coffer(
        d,
        &["copy", "docs/a.txt", "docs/b.txt", "--user", "bob", "--json"],
    ));
    as_user(&["tag", "docs/a.txt", &id(&v2), "approved=yes"], "carol");
    as_user(&["comment", "docs/a.txt", &id(&v1), "superseded"], "dave");
    let rolled = json(coffer(
        d,
        &[
            "rollback",
            "docs/a.txt",
            &id(&v1),
            "--comment",
            "undo",
            "--user",
            "erin",
            "--json",
        ],
    ));
    let after_rollback = now_rfc3339();
    as_user(&["prune", "docs/a.txt", "--keep", "2"], "frank");
    as_user(&["delete", "docs/b.txt"], "gina");
    as_user(&["delete", "docs/b.txt", "--version", &id(&copy)], "henry");
    put_as(d, "other/z.txt", b"z", "ivan", &[]);

    let all = audit(d, &[]);
    let row = |action: &str, actor: &str, key: &str| (action.to_owned(), actor.to_owned(), key.to_owned());
    assert_eq!(
        audit_rows(&all),
        [
            row("put", "alice", "docs/a.txt"),
            row("put", "alice", "docs/a.txt"),
            row("copy", "bob", "docs/b.txt"),
            row("tag", "carol", "docs/a.txt"),
            row("comment", "dave", "docs/a.txt"),
            row("rollback", "erin", "docs/a.txt"),
            row("prune", "frank", "docs/a.txt"),
            row("delete", "gina", "docs/b.txt"),
            row("delete_version", "henry", "docs/b.txt"),
            row("put", "ivan", "other/z.txt"),
        ]
    );
    let rows = all.as_array().unwrap();
    let ids: Vec<i64> = rows.iter().map(|r| r["id"].as_i64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first: {ids:?}");
    let by_action = |action: &str| rows.iter().find(|r| r["action"] == action).unwrap().clone();
    assert_eq!(by_action("tag")["version_id"], json!(id(&v2)));
    assert_eq!(by_action("tag")["detail"]["set"], json!({ "approved": "yes" }));
    assert_eq!(by_action("comment")["detail"]["text"], "superseded");
    let rollback = by_action("rollback");
    assert_eq!(rollback["version_id"], json!(id(&rolled)));
    assert_eq!(
        (&rollback["detail"]["rolled_back_to"], &rollback["detail"]["comment"]),
        (&json!(id(&v1)), &json!("undo"))
    );
    assert_eq!(by_action("prune")["version_id"], json!(id(&v1)), "v1 was the oldest");
    assert_eq!(by_action("copy")["detail"]["source_version_id"], json!(id(&v2)));

    let actions = |rows: &Value| audit_rows(rows).into_iter().map(|r| r.0).collect::<Vec<_>>();
    assert_eq!(
        actions(&audit(d, &["--key", "docs/b.txt"])),
        ["copy", "delete", "delete_version"]
    );
    let docs = audit_rows(&audit(d, &["--prefix", "docs/"]));
    assert_eq!(docs.len(), 9);
    assert!(docs.iter().all(|r| r.2.starts_with("docs/")), "{docs:?}");
    assert_eq!(actions(&audit(d, &["--actor", "alice"])), ["put", "put"]);
    assert_eq!(
        audit_rows(&audit(d, &["--action", "tag"])),
        [row("tag", "carol", "docs/a.txt")]
    );
    assert_eq!(
        audit_rows(&audit(d, &["--action", "put", "--actor", "ivan"])),
        [row("put", "ivan", "other/z.txt")]
    );
    assert_eq!(
        audit_rows(&audit(
            d,
            &["--key", "docs/a.txt", "--actor", "alice", "--action", "put"]
        ))
        .len(),
        2
    );

    // Time filters: RFC 3339, a date, spans before now.
    assert_eq!(actions(&audit(d, &["--until", &between])), ["put", "put"]);
    let since = audit_rows(&audit(d, &["--since", &between]));
    assert_eq!(since.len(), 8);
    assert_eq!(since[0], row("copy", "bob", "docs/b.txt"));
    assert_eq!(audit_rows(&audit(d, &["--since", "1h"])).len(), 10);
    assert_eq!(audit_rows(&audit(d, &["--since", "2000-01-01"])).len(), 10);
    assert_eq!(audit(d, &["--until", "1h"]), json!([]));
    assert_eq!(
        actions(&audit(d, &["--since", &between, "--until", &after_rollback])),
        ["copy", "tag", "comment", "rollback"]
    );
    assert_eq!(
        audit_rows(&audit(
            d,
            &["--since", &between, "--until", &after_rollback, "--actor", "dave"]
        )),
        [row("comment", "dave", "docs/a.txt")]
    );
    let newest = audit_rows(&audit(d, &["--limit", "3"]));
    assert_eq!(
        newest,
        [
            row("delete", "gina", "docs/b.txt"),
            row("delete_version", "henry", "docs/b.txt"),
            row("put", "ivan", "other/z.txt"),
        ]
    );

    let text = ok(coffer(d, &["audit", "--key", "other/z.txt"])).stdout;
    let lines: Vec<Vec<&str>> = text.lines().map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(lines[0], ["ID", "AT", "ACTOR", "ACTION", "KEY", "VERSION", "DETAIL"]);
    assert_eq!(lines.len(), 2, "{text}");
    assert_eq!(&lines[1][2..5], ["ivan", "put", "other/z.txt"]);

    fails(coffer(d, &["audit", "--since", "last tuesday"]), 5, "invalid time");
    fails(coffer(d, &["audit", "--key", "../x"]), 4, "invalid key");
}

#[test]
fn verify_finds_damage_and_orphans_and_repair_cleans_up() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let original = |seed: u8| -> Vec<u8> { (0..4096u32).map(|i| (i as u8).wrapping_mul(seed)).collect() };
    let flip = put(d, "flip.bin", &original(3));
    let short = put(d, "short.bin", &original(5));
    let gone = put(d, "gone.bin", &original(7));
    put(d, "fine.txt", b"all good\n");
    flush(d);
    let twin = json(coffer(d, &["copy", "flip.bin", "twin.bin", "--json"]));
    assert_eq!(twin["blob_path"], flip["blob_path"]);

    let clean = ok(coffer(d, &["verify", "--min-age", "0s"])).stdout;
    assert!(
        clean.starts_with("checked 5 versions, 4 blobs") && clean.contains(": 0 problems"),
        "{clean}"
    );
    let report = json(coffer(d, &["verify", "--min-age", "0s", "--json"]));
    assert_eq!(
        (&report["versions"], &report["blobs"], &report["problems"]),
        (&json!(5), &json!(4), &json!([]))
    );

    // Flip bytes, truncate, delete; add an old and a recent orphan.
    let path = blob_file(d, &flip);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[10] ^= 0xff;
    bytes[2000] ^= 0x01;
    std::fs::write(&path, bytes).unwrap();
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(blob_file(d, &short))
        .unwrap();
    file.set_len(1000).unwrap();
    drop(file);
    std::fs::remove_file(blob_file(d, &gone)).unwrap();
    let old_orphan = format!("blobs/ab/{}.{NO_SUCH_VERSION}", "ab".repeat(32));
    let millis = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis();
    let young_orphan = format!("blobs/cd/{}.{millis:012x}70008000000000000000", "cd".repeat(32));
    for orphan in [&old_orphan, &young_orphan] {
        let at = d.join("coffer-data/store").join(orphan);
        std::fs::create_dir_all(at.parent().unwrap()).unwrap();
        std::fs::write(at, b"junk").unwrap();
    }

    let at = |key: &str, v: &Value| format!("{key}@{}", id(v));
    let cautious = coffer(d, &["verify"]);
    assert_eq!(cautious.code, 7, "{}{}", cautious.stdout, cautious.stderr);
    assert!(cautious.stdout.contains(&old_orphan), "{}", cautious.stdout);
    assert!(!cautious.stdout.contains(&young_orphan), "{}", cautious.stdout);
    assert!(
        cautious
            .stdout
            .contains("1 unreferenced object younger than 1h left alone"),
        "{}",
        cautious.stdout
    );

    let run = coffer(d, &["verify", "--min-age", "0s"]);
    assert_eq!(run.code, 7, "{}{}", run.stdout, run.stderr);
    let text = run.stdout;
    let has_line = |start: &str, words: &[&str]| {
        assert!(
            text.lines()
                .any(|l| l.starts_with(start) && words.iter().all(|w| l.contains(w))),
            "no {start:?} line with {words:?} in\n{text}"
        );
    };
    has_line("corrupt_blob:", &[&at("flip.bin", &flip), &at("twin.bin", &twin)]);
    has_line("truncated_blob:", &[&at("short.bin", &short), "1000 bytes"]);
    has_line("missing_blob:", &[&at("gone.bin", &gone)]);
    has_line("orphan_blob:", &[&old_orphan]);
    has_line("orphan_blob:", &[&young_orphan]);
    assert!(!text.contains("fine.txt"), "{text}");
    assert!(text.contains(": 5 problems"), "{text}");

    // Only the versions under --prefix (and no orphan search).
    ok(coffer(d, &["verify", "--prefix", "fine", "--min-age", "0s"]));

    let run = coffer(d, &["verify", "--min-age", "0s", "--json"]);
    assert_eq!(run.code, 7, "{}", run.stderr);
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
    let problems = report["problems"].as_array().unwrap();
    let problem = |kind: &str| problems.iter().find(|p| p["kind"] == kind).unwrap().clone();
    assert_eq!(problems.len(), 5);
    assert_eq!(problem("missing_blob")["versions"], json!([["gone.bin", id(&gone)]]));
    assert_eq!(problem("missing_blob")["path"], gone["blob_path"]);
    assert_eq!(
        problem("truncated_blob")["versions"],
        json!([["short.bin", id(&short)]])
    );
    let mut sharing: Vec<Value> = problem("corrupt_blob")["versions"].as_array().unwrap().clone();
    sharing.sort_by_key(Value::to_string);
    assert_eq!(
        sharing,
        [json!(["flip.bin", id(&flip)]), json!(["twin.bin", id(&twin)])]
    );
    assert!(problems.iter().all(|p| p["repaired"] == false));

    // Marking content damaged leaves its versions unreadable: that run exits 7 too.
    let run = coffer(d, &["verify", "--repair", "--min-age", "0s"]);
    assert_eq!(run.code, 7, "{}{}", run.stdout, run.stderr);
    let repaired = run.stdout;
    let marked: Vec<&str> = repaired.lines().filter(|l| l.starts_with("[repaired] ")).collect();
    assert_eq!(marked.len(), 5, "{repaired}");
    assert!(
        repaired.contains("5 problems, 5 repaired; 3 problems remaining"),
        "{repaired}"
    );
    assert!(
        repaired.contains(
            "marked damaged: its versions stay unreadable until the same content is stored again or they are removed"
        ),
        "{repaired}"
    );
    for orphan in [&old_orphan, &young_orphan] {
        assert!(!d.join("coffer-data/store").join(orphan).exists(), "{orphan} removed");
    }
    // The damaged versions stay problems (exit 7) until healed or removed.
    let run = coffer(d, &["verify", "--min-age", "0s"]);
    assert_eq!(run.code, 7, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains(": 3 problems"), "{}", run.stdout);
    for (key, v) in [
        ("flip.bin", &flip),
        ("twin.bin", &twin),
        ("short.bin", &short),
        ("gone.bin", &gone),
    ] {
        assert!(
            run.stdout
                .lines()
                .any(|l| l.starts_with("damaged_blob: ") && l.contains(&at(key, v))),
            "{}",
            run.stdout
        );
    }
    let run = coffer(d, &["verify", "--min-age", "0s", "--json"]);
    assert_eq!(run.code, 7);
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
    let kinds: Vec<&str> = report["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["damaged_blob"; 3]);

    // Damaged versions refuse to be read; the others read fine.
    for key in ["flip.bin", "twin.bin", "short.bin", "gone.bin"] {
        fails(coffer(d, &["get", key]), 7, "damaged");
    }
    assert_eq!(get(d, "fine.txt", None), b"all good\n");
    let head = json(coffer(d, &["metadata", "gone.bin", "--json"]));
    assert!(head["damaged"].is_string(), "{head}");
    // versions, info and metadata show the damage.
    let text = ok(coffer(d, &["metadata", "gone.bin"])).stdout;
    assert!(text.lines().any(|l| l.starts_with("damaged:")), "{text}");
    let listed = ok(coffer(d, &["versions", "twin.bin"])).stdout;
    assert!(listed.lines().nth(1).unwrap().contains("DAMAGED"), "{listed}");
    assert!(versions(d, "twin.bin")[0]["damaged"].is_string());
    assert!(!ok(coffer(d, &["versions", "fine.txt"])).stdout.contains("DAMAGED"));
    let info = ok(coffer(d, &["info"])).stdout;
    assert!(info.contains("4 versions unreadable until healed"), "{info}");
    assert_eq!(json(coffer(d, &["info", "--json"]))["damaged_versions"], 4);
    assert!(
        !audit(d, &["--action", "repair", "--key", "short.bin"])
            .as_array()
            .unwrap()
            .is_empty()
    );

    // Storing the original content again heals every version that uses it.
    put(d, "flip.bin", &original(3));
    assert_eq!(get(d, "flip.bin", None), original(3));
    assert_eq!(get(d, "flip.bin", Some(&id(&flip))), original(3));
    assert_eq!(get(d, "twin.bin", None), original(3));
    put(d, "gone.bin", &original(7));
    assert_eq!(get(d, "gone.bin", Some(&id(&gone))), original(7));
    let run = coffer(d, &["verify", "--min-age", "0s", "--json"]);
    assert_eq!(run.code, 7);
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(report["problems"].as_array().unwrap().len(), 1);
    assert_eq!(report["problems"][0]["kind"], "damaged_blob");
    assert_eq!(report["problems"][0]["versions"], json!([["short.bin", id(&short)]]));
    // Removing the last damaged version ends it.
    ok(coffer(d, &["delete", "short.bin", "--version", &id(&short)]));
    assert!(
        ok(coffer(d, &["verify", "--min-age", "0s"]))
            .stdout
            .contains(": 0 problems")
    );
    fails(coffer(d, &["verify", "--min-age", "soon"]), 5, "--min-age");
}

#[test]
fn reindex_rebuilds_the_same_catalog_from_manifests() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let a1 = put_as(
        d,
        "docs/a.txt",
        b"a one",
        "alice",
        &["-m", "dept=fin", "-t", "stage=draft"],
    );
    let a2 = put_as(d, "docs/a.txt", b"a two", "bob", &["--content-type", "text/markdown"]);
    ok(coffer(
        d,
        &["comment", "docs/a.txt", &id(&a1), "first", "--user", "carol"],
    ));
    ok(coffer(
        d,
        &["comment", "docs/a.txt", &id(&a1), "second", "--user", "dave"],
    ));
    ok(coffer(d, &["tag", "docs/a.txt", &id(&a2), "approved=yes", "x=1"]));
    ok(coffer(d, &["tag", "docs/a.txt", &id(&a2), "--remove", "x"]));
    ok(coffer(d, &["rollback", "docs/a.txt", &id(&a1), "--comment", "back"]));
    put(d, "docs/b.txt", b"b");
    ok(coffer(d, &["delete", "docs/b.txt"]));
    let c1 = put(d, "docs/c.txt", b"c one");
    put(d, "docs/c.txt", b"c two");
    ok(coffer(d, &["delete", "docs/c.txt", "--version", &id(&c1)]));
    ok(coffer(d, &["copy", "docs/a.txt", "docs/d.txt"]));
    let keys = ["docs/a.txt", "docs/b.txt", "docs/c.txt", "docs/d.txt"];

    let text = ok(coffer(d, &["reindex", "--into", "rebuilt.db"])).stdout;
    assert!(
        text.contains("rebuilt 7 versions of 4 keys from 7 manifests into"),
        "{text}"
    );
    assert!(text.contains("use it with --catalog sqlite://rebuilt.db"), "{text}");
    assert!(d.join("rebuilt.db").exists());

    for key in keys {
        let before = versions(d, key);
        let after = json(coffer(
            d,
            &["versions", key, "--json", "--catalog", "sqlite://rebuilt.db"],
        ));
        let after = after.as_array().unwrap();
        assert_eq!(before.len(), after.len(), "{key}");
        for (b, a) in before.iter().zip(after) {
            for field in [
                "version_id",
                "is_latest",
                "is_delete_marker",
                "size",
                "etag",
                "sha256",
                "content_type",
                "metadata",
                "created_at",
                "created_by",
                "tags",
                "comments",
                "blob_path",
            ] {
                assert_eq!(b[field], a[field], "{field} of {key} {}", id(b));
            }
        }
        assert_eq!(&before, after, "nothing else differs either");
    }
    let a = versions(d, "docs/a.txt");
    assert_eq!(a[1]["tags"], json!({ "approved": "yes" }), "the tag removal survived");
    assert_eq!(a[2]["comments"].as_array().unwrap().len(), 2);
    assert_eq!(
        version_ids(d, "docs/c.txt").len(),
        1,
        "the removed version stays removed"
    );

    // The rebuilt catalog serves reads.
    let with_rebuilt = |args: &[&str]| {
        let mut args = args.to_vec();
        args.extend(["--catalog", "sqlite://rebuilt.db"]);
        coffer(d, &args)
    };
    assert_eq!(ok(with_rebuilt(&["get", "docs/a.txt"])).stdout, "a one");
    assert_eq!(ok(with_rebuilt(&["get", "docs/d.txt"])).stdout, "a one");
    assert_eq!(with_rebuilt(&["exists", "docs/b.txt"]).code, 3);
    let listed: Value = serde_json::from_str(&ok(with_rebuilt(&["list", "--json"])).stdout).unwrap();
    let listed: Vec<&str> = listed["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["key"].as_str().unwrap())
        .collect();
    assert_eq!(listed, ["docs/a.txt", "docs/c.txt", "docs/d.txt"]);

    let report = json(coffer(d, &["reindex", "--into", "second.db", "--json"]));
    assert_eq!(
        (
            &report["versions"],
            &report["keys"],
            &report["manifests"],
            &report["skipped"]
        ),
        (&json!(7), &json!(4), &json!(7), &json!([]))
    );
    let size = std::fs::metadata(d.join("rebuilt.db")).unwrap().len();
    fails(coffer(d, &["reindex", "--into", "rebuilt.db"]), 6, "exists");
    assert_eq!(std::fs::metadata(d.join("rebuilt.db")).unwrap().len(), size);
}

/// A small tree: nested folders, a binary file, an empty file and a symbolic link.
fn make_tree(root: &Path) -> BTreeMap<String, Vec<u8>> {
    let files: BTreeMap<String, Vec<u8>> = [
        ("readme.txt", b"hello\n".to_vec()),
        ("empty.txt", Vec::new()),
        ("data/table.csv", b"a,b\n1,2\n".to_vec()),
        ("data/deep/blob.bin", (0..3000u32).map(|i| (i % 256) as u8).collect()),
        ("data/deep/er/note.md", b"# deep\n".to_vec()),
    ]
    .into_iter()
    .map(|(path, bytes)| (path.to_owned(), bytes))
    .collect();
    for (path, bytes) in &files {
        let at = root.join(path);
        std::fs::create_dir_all(at.parent().unwrap()).unwrap();
        std::fs::write(at, bytes).unwrap();
    }
    std::os::unix::fs::symlink("readme.txt", root.join("link")).unwrap();
    files
}

#[test]
fn import_and_export_round_trip_a_tree() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let files = make_tree(&d.join("src"));
    let total: usize = files.values().map(Vec::len).sum();

    let text = ok(coffer(d, &["import", "src", "--prefix", "backup/2024/", "--jobs", "4"])).stdout;
    assert!(
        text.contains("imported 5 files (3.0 KiB)") && text.ends_with("0 failed, 1 skipped (not a regular file)\n"),
        "{text}"
    );
    assert!(
        text.lines().any(|l| l.starts_with("skipped ") && l.contains("link")),
        "{text}"
    );
    let page = json(coffer(d, &["list", "--prefix", "backup/2024/", "--json"]));
    let keys: Vec<&str> = page["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["key"].as_str().unwrap())
        .collect();
    let expected: Vec<String> = files.keys().map(|p| format!("backup/2024/{p}")).collect();
    assert_eq!(keys, expected);
    assert_eq!(get(d, "backup/2024/data/table.csv", None), b"a,b\n1,2\n");

    let text = ok(coffer(d, &["export", "--prefix", "backup/2024/", "out", "--jobs", "4"])).stdout;
    assert!(text.contains("exported 5 files (3.0 KiB) to out"), "{text}");
    assert!(text.ends_with("0 failed\n"), "{text}");
    assert_eq!(tree(&d.join("out")), files, "the same tree, byte for byte");

    // JSON forms, and a prefix without a trailing slash.
    let report = json(coffer(d, &["import", "src", "--prefix", "copy", "--json"]));
    assert_eq!(
        (&report["files"], &report["bytes"], &report["failed"]),
        (&json!(5), &json!(total), &json!([]))
    );
    let skipped = report["skipped"].as_array().unwrap();
    assert!(
        skipped.len() == 1 && skipped[0].as_str().unwrap().ends_with("link"),
        "{report}"
    );
    assert_eq!(get(d, "copyreadme.txt", None), b"hello\n");
    let report = json(coffer(d, &["export", "--prefix", "backup/2024", "out2", "--json"]));
    assert_eq!(
        (&report["files"], &report["bytes"], &report["failed"]),
        (&json!(5), &json!(total), &json!([]))
    );
    assert_eq!(tree(&d.join("out2")), files);

    fails(coffer(d, &["import", "no-such-dir"]), 10, "cannot read");
    fails(
        coffer(d, &["import", "/dev/null"]),
        5,
        "neither a directory nor a regular file",
    );
}

#[test]
fn export_version_at_gives_the_contents_of_that_time() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for (path, content) in [("a.txt", "a v1"), ("sub/b.txt", "b v1"), ("gone.txt", "deleted later")] {
        let at = d.join("v1").join(path);
        std::fs::create_dir_all(at.parent().unwrap()).unwrap();
        std::fs::write(at, content).unwrap();
    }
    ok(coffer(d, &["import", "v1", "--prefix", "snap/"]));
    // As `date -u +%FT%TZ` would print it: whole seconds.
    std::thread::sleep(Duration::from_millis(1100));
    let then = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    put(d, "snap/a.txt", b"a v2, longer");
    put(d, "snap/sub/b.txt", b"b v2");
    put(d, "snap/new.txt", b"added later");
    ok(coffer(d, &["delete", "snap/gone.txt"]));

    let report = json(coffer(
        d,
        &[
            "export",
            "--prefix",
            "snap/",
            "at-then",
            "--version-at",
            &then,
            "--json",
        ],
    ));
    assert_eq!(report["files"], 3);
    let expected = |pairs: &[(&str, &str)]| -> BTreeMap<String, Vec<u8>> {
        pairs
            .iter()
            .map(|(p, c)| ((*p).to_owned(), c.as_bytes().to_vec()))
            .collect()
    };
    assert_eq!(
        tree(&d.join("at-then")),
        expected(&[("a.txt", "a v1"), ("sub/b.txt", "b v1"), ("gone.txt", "deleted later")])
    );
    ok(coffer(d, &["export", "--prefix", "snap/", "now"]));
    assert_eq!(
        tree(&d.join("now")),
        expected(&[
            ("a.txt", "a v2, longer"),
            ("sub/b.txt", "b v2"),
            ("new.txt", "added later")
        ])
    );
    // Before anything was stored: nothing to export.
    let report = json(coffer(
        d,
        &["export", "--prefix", "snap/", "before", "--version-at", "1h", "--json"],
    ));
    assert_eq!(report["files"], 0);
    assert!(tree(&d.join("before")).is_empty());
    fails(
        coffer(d, &["export", "--prefix", "snap/", "x", "--version-at", "soon"]),
        5,
        "invalid time",
    );
}
