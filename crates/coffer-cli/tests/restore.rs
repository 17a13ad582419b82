//! End-to-end: archive restore. A version in an archive class (S3 GLACIER
//! on moto, Azure's Archive tier on Azurite) cannot be read (exit 14) until
//! `coffer restore` brings it back; `coffer restore status` follows it, and
//! seeing it done records it (audited) and fires `object.restored`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::path::Path;

use common::{coffer, coffer_in, fails, json, ok};

fn put(d: &Path, key: &str, body: &str, flags: &[&str]) -> String {
    let mut args = vec!["put", key, "--json"];
    args.extend_from_slice(flags);
    json(coffer_in(d, &args, Some(body.as_bytes()), &[]))["version_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// With a hook that logs `object.restored` to events.txt, put `key` in the
/// archive class `class`: its read then fails with exit 14. Its version id.
fn put_archived(d: &Path, key: &str, class: &str) -> String {
    ok(coffer(
        d,
        &[
            "hooks",
            "add",
            "filelog",
            "log",
            "events.txt",
            "--events",
            "object.restored",
        ],
    ));
    let id = put(d, key, "old,rows\n", &["--storage-class", class]);
    fails(coffer(d, &["get", key]), 14, "is archived: restore it first");
    id
}

/// Ask moto's state manager to let restores run `manual`ly: a restore stays
/// in progress until the object has been read `times` more times (`None`:
/// back to moto's default, done at once).
fn moto_restores_take(endpoint: &str, times: Option<u32>) {
    let (path, body) = match times {
        Some(times) => (
            "set-transition",
            format!(r#"{{"model_name":"s3::keyrestore","transition":{{"progression":"manual","times":{times}}}}}"#),
        ),
        None => ("unset-transition", r#"{"model_name":"s3::keyrestore"}"#.to_owned()),
    };
    let url = format!("{endpoint}/moto-api/state-manager/{path}");
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let answer = reqwest::Client::new()
            .post(&url)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert!(answer.status().is_success(), "{url}: {}", answer.status());
    });
}

/// Follow the restore of `key`'s version `id` until it is done (a bounded
/// number of looks); the events file then holds `object.restored`.
fn follow_until_restored(d: &Path, key: &str, id: &str) {
    let mut looks = Vec::new();
    for _ in 0..10 {
        let status = json(coffer(d, &["restore", "status", key, "--version", id, "--json"]));
        let state = status["state"].as_str().unwrap().to_owned();
        looks.push(state.clone());
        if state == "restored" || state == "not_archived" {
            assert!(status.get("pending").is_none(), "{status}");
            break;
        }
        assert_eq!(state, "in_progress", "{status}");
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
    assert!(
        looks.last().is_some_and(|s| s != "in_progress"),
        "never restored: {looks:?}"
    );
    assert_eq!(ok(coffer(d, &["get", key, "--version", id])).stdout, "old,rows\n");
    let audit = json(coffer(d, &["audit", "--key", key, "--json"]));
    let actions: Vec<&str> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row["action"].as_str().unwrap())
        .collect();
    assert!(
        actions.contains(&"restore") && actions.contains(&"restored"),
        "{actions:?}"
    );
    ok(coffer(d, &["hooks", "run", "--once"]));
    let delivered = std::fs::read_to_string(d.join("events.txt")).unwrap();
    assert!(
        delivered.contains("object.restored") && delivered.contains(key),
        "{delivered}"
    );
}

#[test]
fn a_glacier_version_reads_again_once_restored_on_moto() {
    let Some(s3) = coffer::testkit::services::moto_bucket().unwrap() else {
        return;
    };
    let endpoint = s3.endpoint.clone().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let config = format!(
        "[backend]\nkind = \"s3\"\nbucket = \"{}\"\nregion = \"us-east-1\"\nendpoint = \"{endpoint}\"\n\
         access_key_id = \"test\"\nsecret_access_key = \"test\"\ncreate_bucket = true\n",
        s3.bucket
    );
    std::fs::write(d.join("coffer.toml"), config).unwrap();
    let id = put_archived(d, "records/2019.csv", "GLACIER");
    fails(coffer(d, &["get", "records/2019.csv"]), 14, "is archived");
    let before = ok(coffer(d, &["restore", "status", "records/2019.csv", "--version", &id])).stdout;
    assert!(before.contains("archived (GLACIER): no restore asked for"), "{before}");

    moto_restores_take(&endpoint, Some(3));
    let started = json(coffer(
        d,
        &[
            "restore",
            "records/2019.csv",
            "--version",
            &id,
            "--days",
            "2",
            "--tier",
            "bulk",
            "--json",
        ],
    ));
    assert_eq!(started["state"], "in_progress", "{started}");
    assert_eq!(started["pending"]["tier"], "bulk");
    assert_eq!(started["pending"]["days"], 2);
    // Still archived while the restore runs.
    fails(coffer(d, &["get", "records/2019.csv"]), 14, "is archived");
    follow_until_restored(d, "records/2019.csv", &id);
    moto_restores_take(&endpoint, None);
}

#[test]
fn an_archive_tier_blob_is_rehydrated_on_azurite() {
    let Some(azure) = coffer::testkit::services::azurite_container().unwrap() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let config = format!(
        "[backend]\nkind = \"azure\"\ncontainer = \"{}\"\nconnection_string = \"{}\"\ncreate_container = true\n",
        azure.container,
        azure.connection_string.unwrap(),
    );
    std::fs::write(d.join("coffer.toml"), config).unwrap();
    let id = put_archived(d, "records/2020.csv", "Archive");
    let started = json(coffer(
        d,
        &[
            "restore",
            "records/2020.csv",
            "--version",
            &id,
            "--tier",
            "expedited",
            "--json",
        ],
    ));
    assert_ne!(started["state"], "archived", "{started}");
    follow_until_restored(d, "records/2020.csv", &id);
}

#[test]
fn restores_of_content_that_is_not_archived_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let id = put(d, "a.txt", "plain", &[]);
    fails(
        coffer(d, &["restore", "a.txt", "--version", &id]),
        5,
        "is not archived: it can be read as it is",
    );
    fails(
        coffer(d, &["restore", "a.txt", "--version", &id, "--days", "0"]),
        5,
        "a restore's days must be 1 to 30000, not 0",
    );
    fails(
        coffer(d, &["restore", "a.txt", "--version", &id, "--tier", "fast"]),
        5,
        "expected expedited, standard or bulk",
    );
    let status = ok(coffer(d, &["restore", "status", "a.txt", "--version", &id])).stdout;
    assert!(status.contains("not archived: it can be read now"), "{status}");
}
