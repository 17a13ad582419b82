//! End-to-end: S3 Object Lock as the store's own guard, on moto (which
//! enforces retention and legal hold on deletes of object versions). Coffer
//! creates the bucket with Object Lock on and locks the blob and manifest
//! objects of protected versions, so that a raw client of the bucket (the
//! AWS CLI here) cannot remove them; coffer removes them once the catalog
//! allows. moto neither checks the bypass permission nor stops compliance
//! from being shortened: coffer relies on the store for neither.
//! `scripts/services/clients.sh` installs the AWS CLI.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{client, coffer, coffer_in, fails, flush, json, ok};
use serde_json::Value;
use sha2::Digest;

/// A store on a fresh moto bucket with Object Lock on, and the AWS CLI.
struct Locked {
    dir: tempfile::TempDir,
    bucket: String,
    endpoint: String,
    aws: PathBuf,
}

impl Locked {
    fn new() -> Option<Locked> {
        let (Some(s3), Some(aws)) = (coffer::testkit::services::moto_bucket().unwrap(), client("aws")) else {
            return None;
        };
        let dir = tempfile::tempdir().unwrap();
        let endpoint = s3.endpoint.clone().unwrap();
        let config = format!(
            "[backend]\nkind = \"s3\"\nbucket = \"{}\"\nregion = \"us-east-1\"\nendpoint = \"{endpoint}\"\n\
             access_key_id = \"test\"\nsecret_access_key = \"test\"\ncreate_bucket = true\nobject_lock = true\n",
            s3.bucket
        );
        std::fs::write(dir.path().join("coffer.toml"), config).unwrap();
        Some(Locked {
            dir,
            bucket: s3.bucket,
            endpoint,
            aws,
        })
    }

    fn d(&self) -> &Path {
        self.dir.path()
    }

    /// A put, whose objects are then on the bucket (the hot store's flushed).
    fn put(&self, key: &str, body: &str, flags: &[&str]) -> String {
        let mut args = vec!["put", key, "--json"];
        args.extend_from_slice(flags);
        let id = json(coffer_in(self.d(), &args, Some(body.as_bytes()), &[]))["version_id"]
            .as_str()
            .unwrap()
            .to_owned();
        flush(self.d());
        id
    }

    /// The blob and manifest objects of `key`'s version `id`.
    fn objects(&self, key: &str, id: &str) -> [String; 2] {
        let shown = json(coffer(self.d(), &["metadata", key, "--version", id, "--json"]));
        let blob = shown["blob_path"].as_str().unwrap().to_owned();
        let h = hex::encode(sha2::Sha256::digest(key.as_bytes()));
        [blob, format!("manifests/{}/{h}.{id}.json", &h[..2])]
    }

    /// Run the AWS CLI on the bucket: its exit status, stdout and stderr.
    fn aws(&self, args: &[&str]) -> (bool, String, String) {
        let output = Command::new(&self.aws)
            .args(["--endpoint-url", &self.endpoint, "--output", "json", "s3api"])
            .args(args)
            .args(["--bucket", &self.bucket])
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env_remove("AWS_PROFILE")
            .output()
            .unwrap();
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }

    fn aws_json(&self, args: &[&str]) -> Value {
        let (ok, stdout, stderr) = self.aws(args);
        assert!(ok, "aws {args:?}: {stderr}");
        serde_json::from_str(&stdout).unwrap()
    }

    /// The version ids the bucket holds of the object `path`.
    fn versions_of(&self, path: &str) -> Vec<String> {
        let listed = self.aws_json(&["list-object-versions", "--prefix", path]);
        ["Versions", "DeleteMarkers"]
            .iter()
            .flat_map(|field| listed[field].as_array().cloned().unwrap_or_default())
            .filter(|v| v["Key"] == path)
            .map(|v| v["VersionId"].as_str().unwrap().to_owned())
            .collect()
    }

    /// A raw delete of every version of `path` through the AWS CLI: each refused.
    fn raw_deletes_are_refused(&self, path: &str) {
        let versions = self.versions_of(path);
        assert!(!versions.is_empty(), "{path} is not in the bucket");
        for version in versions {
            let (deleted, _, stderr) = self.aws(&["delete-object", "--key", path, "--version-id", &version]);
            assert!(!deleted, "the store let a raw client delete {path} version {version}");
            assert!(stderr.contains("AccessDenied"), "{stderr}");
        }
    }

    /// The Object Lock mode the store reports for `path` (HeadObject).
    fn lock_mode_of(&self, path: &str) -> Value {
        self.aws_json(&["head-object", "--key", path])["ObjectLockMode"].clone()
    }

    /// The legal hold the store reports for `path` (HeadObject): `ON` or `OFF`.
    fn legal_hold_of(&self, path: &str) -> Value {
        self.aws_json(&["head-object", "--key", path])["ObjectLockLegalHoldStatus"].clone()
    }
}

#[test]
fn protected_versions_are_locked_by_the_store_itself() {
    let Some(store) = Locked::new() else {
        return;
    };
    let d = store.d();
    ok(coffer(d, &["init"]));
    let info = ok(coffer(d, &["info"])).stdout;
    assert!(
        info.contains(&format!("S3 Object Lock on bucket {}", store.bucket)),
        "{info}"
    );

    // Compliance for half a minute (long enough for the checks below on a
    // loaded machine): both objects carry the lock, and the store refuses a
    // raw delete of either.
    let retained_at = Instant::now();
    let first = store.put(
        "invoices/a.pdf",
        "invoice v1",
        &["--retain", "30s", "--retention-mode", "compliance"],
    );
    let objects = store.objects("invoices/a.pdf", &first);
    for path in &objects {
        assert_eq!(store.lock_mode_of(path), "COMPLIANCE", "{path}");
        store.raw_deletes_are_refused(path);
    }
    fails(
        coffer(d, &["delete", "invoices/a.pdf", "--version", &first]),
        16,
        "compliance retention",
    );

    // Legal hold is mirrored, and cleared with it.
    let held = store.put("evidence/b.txt", "exhibit", &["--legal-hold"]);
    let held_objects = store.objects("evidence/b.txt", &held);
    for path in &held_objects {
        assert_eq!(store.legal_hold_of(path), "ON", "{path}");
        store.raw_deletes_are_refused(path);
    }
    ok(coffer(
        d,
        &["legal-hold", "clear", "evidence/b.txt", "--version", &held],
    ));
    for path in &held_objects {
        assert_ne!(store.legal_hold_of(path), "ON", "{path}");
    }
    ok(coffer(d, &["delete", "evidence/b.txt", "--version", &held]));
    for path in &held_objects {
        assert!(store.versions_of(path).is_empty(), "{path} is still in the bucket");
    }

    // Governance: coffer's bypass removes the version and its objects.
    let draft = store.put("drafts/c.txt", "draft", &["--retain", "1h"]);
    let draft_objects = store.objects("drafts/c.txt", &draft);
    assert_eq!(store.lock_mode_of(&draft_objects[0]), "GOVERNANCE");
    fails(
        coffer(d, &["delete", "drafts/c.txt", "--version", &draft]),
        16,
        "--bypass-governance",
    );
    ok(coffer(
        d,
        &["delete", "drafts/c.txt", "--version", &draft, "--bypass-governance"],
    ));
    for path in &draft_objects {
        assert!(store.versions_of(path).is_empty(), "{path} is still in the bucket");
    }

    // Once the date has passed, prune removes the old version and its objects.
    store.put("invoices/a.pdf", "invoice v2", &[]);
    std::thread::sleep(Duration::from_secs(31).saturating_sub(retained_at.elapsed()));
    let pruned = json(coffer(d, &["prune", "invoices/a.pdf", "--keep", "1", "--json"]));
    assert_eq!(pruned["removed"].as_array().unwrap().len(), 1, "{pruned}");
    for path in &objects {
        assert!(store.versions_of(path).is_empty(), "{path} is still in the bucket");
    }
    let report = json(coffer(d, &["verify", "--json"]));
    assert_eq!(report["problems"], serde_json::json!([]), "{report}");
}

#[test]
fn verify_repair_sets_a_lock_a_raw_client_lifted() {
    let Some(store) = Locked::new() else {
        return;
    };
    let d = store.d();
    let held = store.put("evidence/d.txt", "exhibit", &["--legal-hold"]);
    let [blob, _] = store.objects("evidence/d.txt", &held);
    // Someone with the bucket's keys lifts the hold behind coffer's back.
    let (lifted, _, stderr) = store.aws(&["put-object-legal-hold", "--key", &blob, "--legal-hold", "Status=OFF"]);
    assert!(lifted, "{stderr}");
    let report = json(coffer(d, &["verify", "--repair", "--json"]));
    let problems = report["problems"].as_array().unwrap();
    assert!(
        problems
            .iter()
            .any(|p| p["kind"] == "unlocked_version" && p["repaired"] == true),
        "{report}"
    );
    assert_eq!(store.legal_hold_of(&blob), "ON");
    store.raw_deletes_are_refused(&blob);
}

#[test]
fn stores_without_a_guard_say_protection_is_coffers_alone() {
    let dir = tempfile::tempdir().unwrap();
    ok(coffer(dir.path(), &["init"]));
    let info = ok(coffer(dir.path(), &["info"])).stdout;
    assert!(info.contains("protection") && info.contains("coffer's alone"), "{info}");
}
