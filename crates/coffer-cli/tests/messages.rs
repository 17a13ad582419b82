//! What the binary says, from issue 18's walk through the README: audit
//! actions checked and listed, hook settings checked and shown, plurals,
//! spans as written, and search scores that read as numbers.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{coffer, coffer_in, fails, json, ok};

fn put(d: &Path, args: &[&str], content: &str) {
    let mut all = vec!["put"];
    all.extend_from_slice(args);
    ok(coffer_in(d, &all, Some(content.as_bytes()), &[]));
}

#[test]
fn audit_refuses_an_unknown_action_and_lists_every_action_in_help_and_readme() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    put(d, &["a.txt"], "a");
    fails(
        coffer(d, &["audit", "--action", "bogus"]),
        5,
        "unknown audit action \"bogus\": use one of put, copy",
    );
    fails(
        coffer(d, &["audit", "--action", "bogus", "--export", "rows.jsonl"]),
        5,
        "audit_purge",
    );
    assert!(!d.join("rows.jsonl").exists());
    assert_eq!(
        json(coffer(d, &["audit", "--action", "tier", "--json"])),
        serde_json::json!([])
    );

    let help = ok(coffer(d, &["audit", "--help"])).stdout;
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    for action in coffer::AUDIT_ACTIONS {
        assert!(help.contains(action), "--help lacks {action}");
        assert!(readme.contains(&format!("`{action}`")), "the README lacks `{action}`");
    }
    for missing_before in [
        "tier",
        "migrate",
        "hook_add",
        "hook_remove",
        "delete_version",
        "reindex",
    ] {
        assert!(coffer::AUDIT_ACTIONS.contains(&missing_before));
    }
}

#[test]
fn hook_events_are_checked_and_where_matches_tags() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fails(
        coffer(
            d,
            &["hooks", "add", "filelog", "j", "j.log", "--events", "object.archvied"],
        ),
        5,
        "unknown event type \"object.archvied\": coffer fires object.archived, object.updated",
    );
    fails(
        coffer(
            d,
            &["hooks", "add", "filelog", "j", "j.log", "--events", "batchcompleted"],
        ),
        5,
        "needs a prefix of its own",
    );
    assert_eq!(json(coffer(d, &["hooks", "list", "--json"])), serde_json::json!([]));
    ok(coffer(
        d,
        &[
            "hooks",
            "add",
            "filelog",
            "approved",
            "approved.log",
            "--events",
            "object.*,qc.*",
            "--where",
            "qc_status=approved",
        ],
    ));
    put(d, &["a.pdf", "--tag", "qc_status=approved"], "a");
    put(d, &["b.pdf", "--tag", "qc_status=pending"], "b");
    put(d, &["c.pdf", "--metadata", "qc_status=approved"], "c");
    // The metadata entry wins over a tag of the same name.
    put(
        d,
        &[
            "d.pdf",
            "--metadata",
            "qc_status=pending",
            "--tag",
            "qc_status=approved",
        ],
        "d",
    );
    ok(coffer(d, &["hooks", "run", "--once"]));
    let log = std::fs::read_to_string(d.join("approved.log")).unwrap();
    let subjects: Vec<String> = log
        .lines()
        .map(|line| {
            serde_json::from_str::<serde_json::Value>(line).unwrap()["subject"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(subjects, ["a.pdf", "c.pdf"]);
}

#[test]
fn hooks_stats_list_and_run_say_what_a_user_needs() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let url = "https://ops:pa55word@erp.example.com:8443/api/v2/coffer-events/Xy7kQ2mN9pL4rS8tV1wZ?token=t0ps3cret";
    ok(coffer(
        d,
        &["hooks", "add", "webhook", "erp", url, "--secret", "whsec_c2VjcmV0"],
    ));
    let listed = ok(coffer(d, &["hooks", "list"])).stdout;
    assert!(
        listed.contains("POST https://erp.example.com:8443/api/v2/coffer-events/***?token=***"),
        "{listed}"
    );
    for secret in ["pa55word", "t0ps3cret", "Xy7kQ2mN9", "c2VjcmV0"] {
        assert!(!listed.contains(secret), "{listed}");
    }

    let stats = ok(coffer(d, &["hooks", "stats"])).stdout;
    let erp = stats.lines().find(|line| line.starts_with("erp ")).unwrap();
    assert!(erp.contains("never ran") && !erp.contains('%'), "{stats}");
    let report = json(coffer(d, &["hooks", "stats", "--json"]));
    assert_eq!(report["hooks"][0]["success_rate"], serde_json::Value::Null);

    // A worker says it started, on stderr, and stops on SIGTERM with its summary.
    let mut worker = Command::new(env!("CARGO_BIN_EXE_coffer"))
        .current_dir(d)
        .args(["hooks", "run"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let killed = Command::new("kill")
        .args(["-TERM", &worker.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let started = Instant::now();
    let output = loop {
        if worker.try_wait().unwrap().is_some() {
            break worker.wait_with_output().unwrap();
        }
        assert!(started.elapsed() < Duration::from_secs(20), "the worker did not stop");
        std::thread::sleep(Duration::from_millis(50));
    };
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        stderr,
        "coffer: delivering events to 1 hook until stopped (SIGINT or SIGTERM)\n"
    );
    assert!(
        String::from_utf8_lossy(&output.stdout)
            .starts_with("delivered 0, retrying 0, dead-lettered 0 (0 attempts, 0 events fanned out)")
    );
}

#[test]
fn counts_are_plural_only_above_one_and_spans_print_as_written() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    put(d, &["a.txt"], "a");
    ok(coffer(d, &["delete", "a.txt"]));
    let info = ok(coffer(d, &["info"])).stdout;
    assert!(info.contains("2 (1 B), 1 delete marker\n"), "{info}");
    assert!(info.contains("stored:       1 blob (1 B) after dedup"), "{info}");
    put(d, &["b.txt"], "b");
    let info = ok(coffer(d, &["info"])).stdout;
    assert!(info.contains("stored:       2 blobs (2 B) after dedup"), "{info}");

    std::fs::write(d.join("coffer.toml"), "audit_retention = \"400d\"\n").unwrap();
    let info = ok(coffer(d, &["info"])).stdout;
    assert!(info.contains("retention 400d, reads not recorded"), "{info}");
    let purge = ok(coffer(d, &["audit", "purge", "--dry-run"])).stdout;
    assert!(
        purge.starts_with("would remove 0 audit rows older than ") && purge.ends_with("(retention 400d)\n"),
        "{purge}"
    );
    let report = json(coffer(d, &["audit", "purge", "--dry-run", "--json"]));
    assert_eq!(report["retention"], "400d");
}

#[test]
fn search_scores_of_common_words_read_as_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Words most versions hold get tiny BM25 scores on SQLite.
    for i in 0..5 {
        let title = format!("title=approved invoice {i}");
        put(d, &[&format!("docs/inv{i}.txt"), "--metadata", &title], "x");
    }
    put(
        d,
        &["docs/long.txt", "--metadata", "title=invoice invoice invoice approved"],
        "x",
    );
    put(d, &["other.txt", "--metadata", "title=else"], "x");
    let text = ok(coffer(d, &["search", "invoice"])).stdout;
    let scores: Vec<&str> = text
        .lines()
        .skip(1)
        .map(|line| line.split_whitespace().last().unwrap())
        .collect();
    assert_eq!(scores.len(), 6, "{text}");
    for score in &scores {
        assert!(score.parse::<f64>().unwrap() > 0.0, "{score} reads as zero: {text}");
    }
    assert!(
        text.lines().nth(1).unwrap().starts_with("docs/long.txt"),
        "more matches rank first: {text}"
    );
    let page = json(coffer(d, &["search", "invoice", "--json"]));
    let best = page["hits"][0]["score"].as_f64().unwrap();
    let next = page["hits"][1]["score"].as_f64().unwrap();
    assert!(best > next && next > 0.0, "{page}");
}
