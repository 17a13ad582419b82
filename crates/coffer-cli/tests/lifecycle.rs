//! End-to-end: lifecycle rules through the built `coffer` binary on local
//! disk: `lifecycle plan --at` looks ahead, `lifecycle apply` expires,
//! removes and converges (a second run does nothing), retention and legal
//! hold win, and `metadata set` makes a version that shares the bytes.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::path::Path;

use common::{coffer, coffer_in, fails, json, ok};
use serde_json::Value;

const RULES: &str = r#"
[[lifecycle.rules]]
id = "tmp-7d"
prefix = "tmp/"
expire_after_days = 7
noncurrent_expire_after_days = 30
keep_noncurrent = 1
expire_delete_markers = true

[[lifecycle.rules]]
id = "now"
prefix = "now/"
expire_after_days = 0
noncurrent_expire_after_days = 0
expire_delete_markers = true
"#;

fn put(d: &Path, key: &str, body: &str, flags: &[&str]) -> String {
    let mut args = vec!["put", key, "--json"];
    args.extend_from_slice(flags);
    json(coffer_in(d, &args, Some(body.as_bytes()), &[]))["version_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// (kind, key, version) of each action of a plan or report.
fn actions(plan: &Value) -> Vec<(String, String, String)> {
    plan["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            let kind = a["kind"].as_str().unwrap().to_owned();
            (
                kind,
                a["key"].as_str().unwrap().to_owned(),
                a["version_id"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn plans_look_ahead_and_apply_converges_while_holds_win() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("coffer.toml"), RULES).unwrap();
    let tmp: Vec<String> = ["a", "b", "c"].iter().map(|body| put(d, "tmp/a", body, &[])).collect();
    put(d, "keep/x", "kept", &[]);

    // Now nothing is due under tmp/; in 8 days the current version expires;
    // in 400 days the oldest noncurrent one goes too (the newest is kept).
    let now = json(coffer(d, &["lifecycle", "plan", "--json"]));
    assert!(
        actions(&now).iter().all(|(_, key, _)| !key.starts_with("tmp/")),
        "{now}"
    );
    let week = json(coffer(d, &["lifecycle", "plan", "--at", "8d", "--json"]));
    assert_eq!(
        actions(&week),
        [("expire_current".into(), "tmp/a".into(), tmp[2].clone())]
    );
    let later = json(coffer(d, &["lifecycle", "plan", "--at", "400d", "--json"]));
    assert_eq!(
        actions(&later),
        [
            ("expire_current".into(), "tmp/a".into(), tmp[2].clone()),
            ("expire_noncurrent".into(), "tmp/a".into(), tmp[0].clone()),
        ]
    );
    let text = ok(coffer(d, &["lifecycle", "plan", "--at", "2099-01-01"])).stdout;
    assert!(text.contains("would expire (delete marker): tmp/a version"), "{text}");

    // Under now/ everything is due at once.
    put(d, "now/x", "one", &[]);
    put(d, "now/x", "two", &[]);
    let held = put(d, "now/held", "held", &["--legal-hold"]);
    put(d, "now/held", "newer", &[]);
    let dry = json(coffer(d, &["lifecycle", "apply", "--dry-run", "--json"]));
    assert_eq!(dry["dry_run"], true);
    assert_eq!(
        json(coffer(d, &["versions", "now/x", "--json"]))
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let first = json(coffer(d, &["lifecycle", "apply", "--json"]));
    let held_back = first["plan"]["held"].as_array().unwrap();
    assert_eq!(held_back.len(), 1, "{first}");
    assert_eq!(held_back[0]["version_id"], held.as_str());
    assert!(held_back[0]["reason"].as_str().unwrap().contains("legal hold"));
    // Runs until nothing is left to do: the marker goes once the versions behind it have.
    ok(coffer(d, &["lifecycle", "apply"]));
    fails(coffer(d, &["versions", "now/x"]), 3, "no such key");
    let again = json(coffer(d, &["lifecycle", "apply", "--json"]));
    assert!(
        actions(&again["plan"]).iter().all(|(_, key, _)| key != "now/x"),
        "a second run acted again: {again}"
    );
    let versions = json(coffer(d, &["versions", "now/held", "--json"]));
    assert!(
        versions
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v["version_id"] == held.as_str()),
        "the version under legal hold was removed"
    );
    // Audited as the rule.
    let audit = json(coffer(d, &["audit", "--actor", "lifecycle:now", "--json"]));
    assert!(!audit.as_array().unwrap().is_empty(), "{audit}");
    assert_eq!(
        json(coffer(d, &["versions", "keep/x", "--json"]))
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn bad_rules_are_one_line_and_commands_without_rules_say_so() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    put(d, "k", "x", &[]);
    fails(coffer(d, &["lifecycle", "plan"]), 5, "no lifecycle rules");
    std::fs::write(
        d.join("coffer.toml"),
        "[[lifecycle.rules]]\nid = \"a\"\ntransition_after_days = 3\n",
    )
    .unwrap();
    fails(
        coffer(d, &["list"]),
        5,
        "transition_after_days and transition_to go together",
    );
    std::fs::write(
        d.join("coffer.toml"),
        "[[lifecycle.rules]]\nid = \"a\"\nexpire_after_days = 1\n",
    )
    .unwrap();
    fails(coffer(d, &["lifecycle", "plan", "--at", "soon"]), 5, "invalid time");
}

#[test]
fn metadata_set_makes_a_version_sharing_the_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let first = put(
        d,
        "docs/r.txt",
        "report",
        &["--metadata", "owner=ann", "--metadata", "draft=yes", "--tag", "q=1"],
    );
    let changed = json(coffer(
        d,
        &[
            "metadata",
            "set",
            "docs/r.txt",
            "owner=bob",
            "dept=ops",
            "--remove",
            "draft",
            "--content-type",
            "text/markdown",
            "--json",
        ],
    ));
    let second = changed["version_id"].as_str().unwrap();
    assert_ne!(second, first);
    assert_eq!(
        changed["metadata"],
        serde_json::json!({ "owner": "bob", "dept": "ops" })
    );
    assert_eq!(changed["content_type"], "text/markdown");
    assert_eq!(changed["tags"]["q"], "1");
    let old = json(coffer(d, &["metadata", "docs/r.txt", "--version", &first, "--json"]));
    assert_eq!(changed["sha256"], old["sha256"]);
    assert_eq!(changed["blob_path"], old["blob_path"], "the bytes were copied");
    assert_eq!(ok(coffer(d, &["get", "docs/r.txt"])).stdout, "report");
    let compare = json(coffer(d, &["compare", "docs/r.txt", &first, second, "--json"]));
    assert_eq!(compare["same_content"], true);
    assert_eq!(compare["metadata"]["owner"]["before"], "ann");
    let audit = json(coffer(
        d,
        &["audit", "--key", "docs/r.txt", "--action", "metadata", "--json"],
    ));
    assert_eq!(audit.as_array().unwrap().len(), 1, "{audit}");
    fails(
        coffer(d, &["metadata", "set", "docs/r.txt"]),
        5,
        "no metadata to set or remove",
    );
    fails(
        coffer(d, &["metadata", "set", "docs/r.txt", "--remove", "nope"]),
        5,
        "has no metadata \"nope\"",
    );
    fails(
        coffer(d, &["metadata", "set", "docs/none.txt", "a=b"]),
        3,
        "no such key",
    );
    assert_eq!(
        json(coffer(d, &["versions", "docs/r.txt", "--json"]))
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

/// Rules that act at once: content under archive/ moves to `class`, under
/// cold/ to the cold tier, and tmp/ expires. (Without the hot store, whose
/// copies would serve reads of archived content until they expire.)
fn transitions(class: &str) -> String {
    format!(
        "hot = {{ max_object_size = 0 }}\n[[lifecycle.rules]]\nid = \"archive\"\nprefix = \"archive/\"\ntransition_after_days = 0\ntransition_to = \"{class}\"\n\n\
         [[lifecycle.rules]]\nid = \"tmp\"\nprefix = \"tmp/\"\nexpire_after_days = 0\n"
    )
}

/// Apply twice on a remote store: content moves to the archive class (its
/// reads then say restore it first, exit 14) and to the cold tier, once;
/// the second run has nothing to do.
fn transitions_on(d: &Path, class: &str, with_cold_tier: bool) {
    put(d, "archive/a.csv", "old,rows\n", &[]);
    put(d, "tmp/t", "scratch", &[]);
    let cold = with_cold_tier.then(|| put(d, "cold/b.csv", "cold,rows\n", &[]));
    let first = json(coffer(d, &["lifecycle", "apply", "--json"]));
    assert!(first["failed"].as_array().unwrap().is_empty(), "{first}");
    let kinds: Vec<String> = actions(&first["plan"])
        .into_iter()
        .map(|(kind, key, _)| format!("{kind} {key}"))
        .collect();
    assert!(kinds.contains(&"transition archive/a.csv".to_owned()), "{kinds:?}");
    assert!(kinds.contains(&"expire_current tmp/t".to_owned()), "{kinds:?}");
    fails(
        coffer(d, &["get", "archive/a.csv"]),
        14,
        "is archived: restore it first",
    );
    let shown = json(coffer(d, &["metadata", "archive/a.csv", "--json"]));
    assert_eq!(shown["placement"], class);
    if let Some(id) = cold {
        assert!(kinds.contains(&"transition cold/b.csv".to_owned()), "{kinds:?}");
        assert_eq!(
            ok(coffer(d, &["tier", "show", "cold/b.csv", "--version", &id])).stdout,
            "cold\n"
        );
        assert_eq!(ok(coffer(d, &["get", "cold/b.csv"])).stdout, "cold,rows\n");
    }
    fails(coffer(d, &["get", "tmp/t"]), 3, "no such key");
    let second = json(coffer(d, &["lifecycle", "apply", "--json"]));
    assert!(
        actions(&second["plan"]).is_empty(),
        "a second run acted again: {second}"
    );
    let audit = json(coffer(d, &["audit", "--action", "lifecycle", "--json"]));
    assert!(
        audit
            .as_array()
            .unwrap()
            .iter()
            .any(|row| row["actor"] == "lifecycle:archive"),
        "{audit}"
    );
}

#[test]
fn transitions_move_content_once_on_moto() {
    let (Some(hot), Some(cold)) = (
        coffer::testkit::services::moto_bucket().unwrap(),
        coffer::testkit::services::moto_bucket().unwrap(),
    ) else {
        return;
    };
    let endpoint = hot.endpoint.clone().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let bucket = |name: &str, extra: &str| {
        format!(
            "kind = \"s3\"\nbucket = \"{name}\"\nregion = \"us-east-1\"\nendpoint = \"{endpoint}\"\n\
             access_key_id = \"test\"\nsecret_access_key = \"test\"\ncreate_bucket = true\n{extra}"
        )
    };
    let config = format!(
        "cold_store = \"cold\"\n{}\n[backend]\n{}\n[stores.cold]\n{}\n\
         [[lifecycle.rules]]\nid = \"cold\"\nprefix = \"cold/\"\ntransition_after_days = 0\ntransition_to = \"cold\"\n",
        transitions("GLACIER"),
        bucket(&hot.bucket, ""),
        bucket(&cold.bucket, ""),
    );
    std::fs::write(d.join("coffer.toml"), config).unwrap();
    transitions_on(d, "GLACIER", true);
}

#[test]
fn transitions_move_content_once_on_azurite() {
    let Some(azure) = coffer::testkit::services::azurite_container().unwrap() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let config = format!(
        "{}\n[backend]\nkind = \"azure\"\ncontainer = \"{}\"\nconnection_string = \"{}\"\ncreate_container = true\n",
        transitions("Archive"),
        azure.container,
        azure.connection_string.unwrap(),
    );
    std::fs::write(d.join("coffer.toml"), config).unwrap();
    transitions_on(d, "Archive", false);
}

/// A lifecycle apply killed with SIGKILL part way leaves no version pointing
/// at missing bytes and no protected version removed; `verify --repair`
/// clears what it left, and the next run finishes the work.
#[test]
fn a_killed_apply_leaves_the_store_sound() {
    use std::process::{Command, Stdio};

    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("coffer.toml"), RULES).unwrap();
    let src = d.join("src");
    std::fs::create_dir(&src).unwrap();
    for round in 0..2 {
        for i in 0..300 {
            std::fs::write(src.join(format!("f{i:03}.txt")), format!("{round} {i}")).unwrap();
        }
        ok(coffer(d, &["import", "src", "--prefix", "now/"]));
    }
    let held: Vec<String> = (0..5)
        .map(|i| put(d, &format!("now/held{i}"), "held", &["--legal-hold"]))
        .collect();
    for i in 0..5 {
        put(d, &format!("now/held{i}"), "newer", &[]);
    }
    let mut child = Command::new(env!("CARGO_BIN_EXE_coffer"))
        .current_dir(d)
        .args(["lifecycle", "apply"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(700));
    child.kill().unwrap();
    child.wait().unwrap();
    // The catalog is consistent; at worst bytes are left without a version
    // (verify exits 7 while it finds any).
    let run = coffer(d, &["verify", "--min-age", "0s", "--json"]);
    assert!(matches!(run.code, 0 | 7), "verify: {} {}", run.code, run.stderr);
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
    let kinds: Vec<&str> = report["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["kind"].as_str().unwrap())
        .collect();
    assert!(
        kinds.iter().all(|k| k.starts_with("orphan")),
        "a killed apply left more than orphans: {report}"
    );
    ok(coffer(d, &["verify", "--repair", "--min-age", "0s"]));
    ok(coffer(d, &["verify", "--min-age", "0s"]));
    for (i, id) in held.iter().enumerate() {
        let key = format!("now/held{i}");
        assert_eq!(ok(coffer(d, &["get", &key, "--version", id])).stdout, "held");
    }
    // Runs until done: the rest goes, the held versions stay.
    for _ in 0..3 {
        ok(coffer(d, &["lifecycle", "apply"]));
    }
    fails(coffer(d, &["versions", "now/f000.txt"]), 3, "no such key");
    ok(coffer(d, &["verify", "--min-age", "0s"]));
}
