//! End-to-end on object stores: the backend flags and named stores against
//! Garage, presigned URLs, health, the spool through an outage, tiers and
//! migration with --switch, and the errors of asking a local store for them.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::path::Path;

use coffer::testkit::services::{GARAGE_ACCESS_KEY, GARAGE_SECRET_KEY, TcpProxy};
use common::garage::{Garage, garage, garage_table};
use common::{coffer, coffer_in, fails, json, ok};

fn store_section(name: &str, bucket: &str, endpoint: &str, extra: &str) -> String {
    format!("{}{extra}\n", garage_table(&format!("stores.{name}"), bucket, endpoint))
}

fn write(d: &Path, name: &str, text: &str) {
    std::fs::write(d.join(name), text).unwrap();
}

#[test]
fn flags_and_named_stores_reach_garage_and_urls_work() {
    let Some(Garage { bucket, endpoint }) = garage() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "coffer.toml", &store_section("archive", &bucket, &endpoint, ""));
    let archive = ["--store", "archive"];
    let put = |args: &[&str], body: &[u8]| {
        let mut all = vec!["put"];
        all.extend_from_slice(args);
        all.extend_from_slice(&archive);
        all.push("--json");
        json(coffer_in(d, &all, Some(body), &[]))
    };
    let v1 = put(&["reports/q1.csv"], b"region,total\nnorth,10\n");
    put(&["reports/q1.csv"], b"region,total\nnorth,12\n");
    let got = ok(coffer(d, &["get", "reports/q1.csv", "--store", "archive"]));
    assert_eq!(got.stdout, "region,total\nnorth,12\n");

    let info = json(coffer(d, &["info", "--store", "archive", "--json"]));
    assert!(
        info["backend"].as_str().unwrap().starts_with(&format!("s3://{bucket}")),
        "{info}"
    );
    assert_eq!(info["backend_ok"], true);
    assert!(!info.to_string().contains(GARAGE_SECRET_KEY), "no secret in info");
    let health = ok(coffer(d, &["health", "--store", "archive"]));
    let status = health.stdout.lines().find(|l| l.starts_with("status")).unwrap();
    assert!(status.trim_end().ends_with(" ok"), "{}", health.stdout);
    assert!(health.stdout.contains("presign=true"), "{}", health.stdout);

    // The same bucket through flags alone, as users of other S3 tools type them.
    let flags = [
        "--backend",
        "s3",
        "--bucket",
        &bucket,
        "--region",
        "garage",
        "--endpoint",
        &endpoint,
        "--access-key",
        GARAGE_ACCESS_KEY,
        "--secret-key",
        GARAGE_SECRET_KEY,
    ];
    let mut args = flags.to_vec();
    args.extend_from_slice(&["get", "reports/q1.csv", "--version", v1["version_id"].as_str().unwrap()]);
    assert_eq!(ok(coffer(d, &args)).stdout, "region,total\nnorth,10\n");

    // Credentials from a profile of the AWS files, as the AWS tools read them.
    std::fs::write(
        d.join("credentials"),
        format!("[garage]\naws_access_key_id = {GARAGE_ACCESS_KEY}\naws_secret_access_key = {GARAGE_SECRET_KEY}\n"),
    )
    .unwrap();
    let credentials = d.join("credentials");
    let by_profile = [
        "--backend",
        "s3",
        "--bucket",
        &bucket,
        "--region",
        "garage",
        "--endpoint",
        &endpoint,
        "--profile",
        "garage",
        "get",
        "reports/q1.csv",
    ];
    let got = coffer_in(
        d,
        &by_profile,
        None,
        &[("AWS_SHARED_CREDENTIALS_FILE", credentials.to_str().unwrap())],
    );
    assert_eq!(got.code, 0, "{}", got.stderr);
    assert_eq!(got.stdout, "region,total\nnorth,12\n");

    // A presigned URL serves the old version to a client without credentials.
    let url = json(coffer(
        d,
        &[
            "url",
            "reports/q1.csv",
            "--version",
            v1["version_id"].as_str().unwrap(),
            "--expires",
            "600",
            "--store",
            "archive",
            "--json",
        ],
    ));
    assert_eq!(url["method"], "GET");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let body = runtime.block_on(async {
        reqwest::get(url["url"].as_str().unwrap())
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    });
    assert_eq!(body, "region,total\nnorth,10\n");

    // Upload with a PUT URL, then commit it as the next version.
    let upload = json(coffer(
        d,
        &[
            "url",
            "reports/q1.csv",
            "--method",
            "put",
            "--store",
            "archive",
            "--json",
        ],
    ));
    let status = runtime.block_on(async {
        reqwest::Client::new()
            .put(upload["url"].as_str().unwrap())
            .body("region,total\nnorth,15\n")
            .send()
            .await
            .unwrap()
            .status()
    });
    assert!(status.is_success(), "{status}");
    assert!(
        upload["commit"]
            .as_str()
            .unwrap()
            .starts_with("coffer put 'reports/q1.csv' --upload ")
    );
    let upload_id = upload["upload_id"].as_str().unwrap();
    ok(coffer(
        d,
        &["put", "reports/q1.csv", "--upload", upload_id, "--store", "archive"],
    ));
    let got = ok(coffer(d, &["get", "reports/q1.csv", "--store", "archive"]));
    assert_eq!(got.stdout, "region,total\nnorth,15\n");
    fails(
        coffer(
            d,
            &["url", "reports/q1.csv", "--expires", "700000", "--store", "archive"],
        ),
        5,
        "expire in 1 to 604800 seconds",
    );
}

#[test]
fn a_local_store_says_what_it_cannot_do() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(coffer_in(d, &["put", "a.txt"], Some(b"x"), &[]));
    // Local disk cannot presign: the URL is a link through `coffer serve`.
    let link = ok(coffer(d, &["url", "a.txt"])).stdout;
    assert!(
        link.starts_with("http://127.0.0.1:8080/links/a.txt?method=get&version=") && link.contains("&signature="),
        "{link}"
    );
    fails(
        coffer(d, &["--bucket", "b", "list"]),
        5,
        "--bucket is a setting of the s3 backend",
    );
    fails(coffer(d, &["list", "--store", "nope"]), 5, "no store named \"nope\"");
    fails(coffer(d, &["sync"]), 5, "no spool is configured");
    fails(
        coffer(d, &["--backend", "s3", "list"]),
        5,
        "the s3 backend needs a bucket",
    );
    let health = ok(coffer(d, &["health"]));
    assert!(health.stdout.contains("fs:"), "{}", health.stdout);
    fails(coffer(d, &["tier", "show", "a.txt"]), 5, "no cold tier");
    fails(coffer(d, &["migrate", "--to", "x"]), 5, "no store named \"x\"");
}

#[test]
fn puts_spool_while_the_bucket_is_away_and_sync_moves_them() {
    let Some(Garage { bucket, endpoint }) = garage() else {
        return;
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut proxy = runtime
        .block_on(TcpProxy::start(endpoint.trim_start_matches("http://")))
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Puts that write to the store at once (the hot store's would wait in the catalog).
    let config = format!(
        "hot = {{ max_object_size = 0 }}\nstore = \"remote\"\nspool = \"spool\"\n{}",
        store_section("remote", &bucket, &proxy.url(), "")
    );
    write(d, "coffer.toml", &config);
    ok(coffer_in(d, &["put", "docs/before.txt"], Some(b"before"), &[]));
    runtime.block_on(async { proxy.stop() });

    let spooled = coffer_in(d, &["put", "docs/during.txt", "--json"], Some(b"during"), &[]);
    assert_eq!(spooled.code, 0, "{}", spooled.stderr);
    let shown: serde_json::Value = serde_json::from_str(&spooled.stdout).unwrap();
    assert_eq!(shown["spooled"], true);
    let plain = coffer_in(d, &["put", "docs/during2.txt"], Some(b"during 2"), &[]);
    assert_eq!(plain.code, 0);
    assert!(plain.stderr.contains("local spool"), "{}", plain.stderr);
    assert_eq!(ok(coffer(d, &["get", "docs/during.txt"])).stdout, "during");
    let info = json(coffer(d, &["info", "--json"]));
    assert_eq!(info["backend_ok"], false);
    assert_eq!(info["spool"]["files"], 4, "{info}");
    let down = coffer(d, &["sync"]);
    assert_eq!(down.code, 8, "{}", down.stderr);
    let health = coffer(d, &["health"]);
    assert_eq!(health.code, 8);

    runtime.block_on(proxy.resume()).unwrap();
    let synced = ok(coffer(d, &["sync"]));
    assert!(synced.stdout.contains("moved 4 files"), "{}", synced.stdout);
    let info = json(coffer(d, &["info", "--json"]));
    assert_eq!(info["spool"]["files"], 0);
    assert_eq!(ok(coffer(d, &["get", "docs/during2.txt"])).stdout, "during 2");
    // verify exits 0 only when it finds nothing wrong.
    ok(coffer(d, &["verify", "--min-age", "0s"]));
}

#[test]
fn migrate_switches_the_store_and_tiers_move_versions() {
    let (Some(Garage { bucket, endpoint }), Some(Garage { bucket: cold, .. })) = (garage(), garage()) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let config = format!(
        "# archive settings\nuser = \"ops\"\n\n{}{}",
        store_section("bucket", &bucket, &endpoint, ""),
        store_section("cold", &cold, &endpoint, "storage_class = \"GLACIER\"")
    );
    write(d, "coffer.toml", &config);
    let v1 = json(coffer_in(d, &["put", "k/doc.txt", "--json"], Some(b"first"), &[]));
    ok(coffer_in(d, &["put", "k/doc.txt"], Some(b"second"), &[]));
    let report = json(coffer(d, &["migrate", "--to", "bucket", "--switch", "--json"]));
    assert_eq!(report["blobs_copied"], 2, "{report}");
    assert_eq!(report["manifests_copied"], 2, "{report}");
    assert_eq!(report["switched"], true);
    let written = std::fs::read_to_string(d.join("coffer.toml")).unwrap();
    assert!(
        written.starts_with("store = \"bucket\"\n# archive settings\n"),
        "{written}"
    );
    let info = json(coffer(d, &["info", "--json"]));
    assert!(
        info["backend"].as_str().unwrap().starts_with(&format!("s3://{bucket}")),
        "{info}"
    );
    let id = v1["version_id"].as_str().unwrap();
    assert_eq!(ok(coffer(d, &["get", "k/doc.txt", "--version", id])).stdout, "first");
    let again = json(coffer(d, &["migrate", "--to", "bucket", "--json"]));
    assert_eq!(
        (again["blobs_copied"].as_u64(), again["blobs_present"].as_u64()),
        (Some(0), Some(2))
    );

    // The cold tier, named in the config: move the first version there and back.
    let mut with_cold = std::fs::read_to_string(d.join("coffer.toml")).unwrap();
    with_cold.insert_str(0, "cold_store = \"cold\"\n");
    write(d, "coffer.toml", &with_cold);
    assert_eq!(
        ok(coffer(d, &["tier", "show", "k/doc.txt", "--version", id])).stdout,
        "hot\n"
    );
    let moved = ok(coffer(
        d,
        &["tier", "move", "k/doc.txt", "--version", id, "--to", "cold"],
    ));
    assert!(moved.stdout.starts_with("moved k/doc.txt version"), "{}", moved.stdout);
    assert_eq!(
        ok(coffer(d, &["tier", "show", "k/doc.txt", "--version", id])).stdout,
        "cold\n"
    );
    assert_eq!(ok(coffer(d, &["get", "k/doc.txt", "--version", id])).stdout, "first");
    let versions = json(coffer(d, &["versions", "k/doc.txt", "--json"]));
    assert_eq!(versions.as_array().unwrap().len(), 2);
    let audit = json(coffer(d, &["audit", "--action", "tier", "--json"]));
    assert_eq!(audit.as_array().unwrap().len(), 1, "{audit}");
    let warm = coffer(d, &["tier", "move", "k/doc.txt", "--version", id, "--to", "warm"]);
    assert_eq!(warm.code, 2, "a usage error");
    assert!(warm.stderr.contains("'warm'"), "{}", warm.stderr);
}
