//! End-to-end: how the backend is chosen and named (the config file,
//! `COFFER_*` variables and flags overriding single settings, one set of
//! kind names with aliases), and what a user sees when an object store
//! cannot serve: an unreachable endpoint, a missing bucket, archived content.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::path::Path;

use common::{coffer, coffer_in, fails, json, ok};

/// Write a file; a config gets puts that write to the store at once, as
/// these tests watch what a store says to them (the hot store's wait in the
/// catalog: see hot.rs).
fn write(d: &Path, name: &str, text: &str) {
    let text = match name {
        "coffer.toml" => format!("hot = {{ max_object_size = 0 }}\n{text}"),
        _ => text.to_owned(),
    };
    std::fs::write(d.join(name), text).unwrap();
}

/// A fresh bucket on moto: (bucket, endpoint), or `None` when it is not running (and not required).
fn moto_bucket() -> Option<(String, String)> {
    let s3 = coffer::testkit::services::moto_bucket().unwrap()?;
    Some((s3.bucket, s3.endpoint.unwrap()))
}

/// A `[backend]` table on a moto bucket (its test credentials are public).
fn moto_backend(bucket: &str, endpoint: &str, extra: &str) -> String {
    format!(
        "[backend]\nkind = \"s3\"\nbucket = \"{bucket}\"\nregion = \"us-east-1\"\nendpoint = \"{endpoint}\"\n\
         access_key_id = \"test\"\nsecret_access_key = \"test\"\n{extra}\n"
    )
}

#[test]
fn the_environment_overrides_single_settings_of_a_local_backend() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "coffer.toml", "[backend]\nkind = \"fs\"\nroot = \"blobs\"\n");
    ok(coffer_in(d, &["put", "docs/a.txt"], Some(b"kept"), &[]));
    assert!(d.join("blobs/blobs").is_dir(), "the configured root holds the blobs");
    // The same kind, by its name or its alias, keeps the configured root.
    for kind in ["fs", "local", "LOCAL"] {
        let got = coffer_in(d, &["get", "docs/a.txt"], None, &[("COFFER_BACKEND", kind)]);
        assert_eq!((got.code, got.stdout.as_str()), (0, "kept"), "{kind}: {}", got.stderr);
    }
    for kind in ["fs", "local"] {
        assert_eq!(ok(coffer(d, &["--backend", kind, "get", "docs/a.txt"])).stdout, "kept");
    }
    // A single setting changes, the rest stays.
    std::fs::create_dir(d.join("other")).unwrap();
    // A root that holds none of the store's blobs is no store, not damage.
    fails(
        coffer_in(d, &["get", "docs/a.txt"], None, &[("COFFER_BACKEND_ROOT", "other")]),
        13,
        "other: it holds no blobs or manifests, though the catalog has versions stored there (check the backend's bucket, prefix or root)",
    );
    fails(
        coffer_in(d, &["list"], None, &[("COFFER_BACKEND", "nas")]),
        5,
        "COFFER_BACKEND: unknown backend kind \"nas\": expected fs (or local), memory, s3, azure (or azblob)",
    );
    fails(
        coffer_in(d, &["list"], None, &[("COFFER_S3_BUCKET", "archive")]),
        5,
        "COFFER_S3_BUCKET is a setting of the s3 backend, and this store's backend is fs (set COFFER_BACKEND)",
    );
}

#[test]
fn each_kind_names_what_it_needs_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let bucket = "the s3 backend needs a bucket (bucket in the config, COFFER_S3_BUCKET, --bucket)";
    let container =
        "the azure backend needs a container (container in the config, COFFER_AZURE_CONTAINER, --container)";
    fails(coffer(d, &["--backend", "s3", "list"]), 5, bucket);
    fails(coffer_in(d, &["list"], None, &[("COFFER_BACKEND", "s3")]), 5, bucket);
    for kind in ["azure", "azblob"] {
        fails(coffer(d, &["--backend", kind, "list"]), 5, container);
        fails(coffer_in(d, &["list"], None, &[("COFFER_BACKEND", kind)]), 5, container);
    }
    write(d, "coffer.toml", "[backend]\nkind = \"azblob\"\n");
    fails(coffer(d, &["list"]), 5, container);
    fails(
        coffer(d, &["--backend", "fs", "--container", "c", "list"]),
        5,
        "--container is a setting of the azure backend, and this store's backend is fs (use --backend)",
    );
    assert!(!d.join("coffer-data").exists(), "a refused command stores nothing");
}

#[test]
fn the_environment_keeps_the_configured_bucket() {
    let Some((bucket, endpoint)) = moto_bucket() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(
        d,
        "coffer.toml",
        &moto_backend(&bucket, &endpoint, "create_bucket = true"),
    );
    ok(coffer_in(d, &["put", "docs/a.txt"], Some(b"in the bucket"), &[]));
    let env = [("COFFER_BACKEND", "s3"), ("COFFER_S3_REGION", "us-east-1")];
    let got = coffer_in(d, &["get", "docs/a.txt"], None, &env);
    assert_eq!((got.code, got.stdout.as_str()), (0, "in the bucket"), "{}", got.stderr);
    // A prefix from the environment: the same bucket, another folder of it.
    let info = json(coffer_in(
        d,
        &["info", "--json"],
        None,
        &[("COFFER_S3_PREFIX", "elsewhere")],
    ));
    assert!(
        info["backend"]
            .as_str()
            .unwrap()
            .starts_with(&format!("s3://{bucket}/elsewhere ")),
        "{info}"
    );
    // A flag beats the variable.
    let got = coffer_in(
        d,
        &["--bucket", &bucket, "get", "docs/a.txt"],
        None,
        &[("COFFER_S3_BUCKET", "not-this-one")],
    );
    assert_eq!((got.code, got.stdout.as_str()), (0, "in the bucket"), "{}", got.stderr);
}

/// Backend flags for a bucket on a port where nothing listens.
const NOWHERE: [&str; 12] = [
    "--backend",
    "s3",
    "--bucket",
    "archive",
    "--region",
    "us-east-1",
    "--endpoint",
    "http://127.0.0.1:1",
    "--access-key",
    "AKIDNOWHERE",
    "--secret-key",
    "not-a-real-secret-but-never-shown",
];

/// `coffer NOWHERE... ARGS` with `wait` for the backend, and how long it took.
fn nowhere(d: &Path, args: &[&str], wait: &str, stdin: Option<&[u8]>) -> (common::Run, std::time::Duration) {
    let mut all = NOWHERE.to_vec();
    all.extend_from_slice(args);
    let start = std::time::Instant::now();
    let env = [("COFFER_BACKEND_WAIT", wait), ("COFFER_HOT_MAX_OBJECT_SIZE", "0")];
    let run = coffer_in(d, &all, stdin, &env);
    (run, start.elapsed())
}

#[test]
fn an_unreachable_endpoint_is_named_with_its_cause_within_the_configured_wait() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let line = "backend unavailable: s3 http://127.0.0.1:1 (connection refused)";
    // Retries pause d, 2d, 4d and 8d (each with up to as much again of jitter) within the wait.
    let (run, took) = nowhere(d, &["put", "docs/a.txt"], "2s", Some(b"x"));
    assert!(
        !run.stderr.contains("never-shown") && !run.stderr.contains("AKIDNOWHERE"),
        "{}",
        run.stderr
    );
    fails(run, 8, line);
    assert!(
        took >= std::time::Duration::from_secs(1),
        "retried for a while: {took:?}"
    );
    assert!(
        took < std::time::Duration::from_millis(3500),
        "gave up within the wait: {took:?}"
    );
    let (run, took) = nowhere(d, &["put", "docs/a.txt"], "0s", Some(b"x"));
    fails(run, 8, line);
    assert!(took < std::time::Duration::from_secs(1), "no retries: {took:?}");
    fails(
        nowhere(d, &["put", "docs/a.txt"], "soon", Some(b"x")).0,
        5,
        "COFFER_BACKEND_WAIT \"soon\"",
    );
    // No put reached the catalog, so there is still no store to read.
    let versions = coffer(d, &["versions", "docs/a.txt"]);
    assert_eq!(versions.code, 13, "nothing was recorded: {}", versions.stdout);
}

#[test]
fn a_spool_remembers_the_outage_across_processes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (first, took_first) = nowhere(d, &["--spool", "spool", "put", "docs/a.txt"], "2s", Some(b"first"));
    assert_eq!(first.code, 0, "{}", first.stderr);
    assert!(first.stderr.contains("local spool"), "{}", first.stderr);
    assert!(took_first >= std::time::Duration::from_secs(1), "{took_first:?}");
    assert!(d.join("spool/backend-down").is_file(), "the outage is remembered");
    // The next process goes straight to the spool, without waiting again.
    let (second, took_second) = nowhere(d, &["--spool", "spool", "put", "docs/b.txt"], "2s", Some(b"second"));
    assert_eq!(second.code, 0, "{}", second.stderr);
    assert!(second.stderr.contains("local spool"), "{}", second.stderr);
    assert!(took_second < std::time::Duration::from_secs(1), "{took_second:?}");
    let (got, _) = nowhere(d, &["--spool", "spool", "get", "docs/b.txt"], "0s", None);
    assert_eq!((got.code, got.stdout.as_str()), (0, "second"), "{}", got.stderr);
}

#[test]
fn a_missing_bucket_suggests_creating_it() {
    let Some((_, endpoint)) = moto_bucket() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let bucket = format!("coffer-missing-{}", std::process::id());
    write(d, "coffer.toml", &moto_backend(&bucket, &endpoint, ""));
    fails(
        coffer_in(d, &["put", "docs/a.txt"], Some(b"x"), &[]),
        5,
        &format!(
            "bucket {bucket} does not exist on s3 {endpoint}: create it with --create-bucket (create_bucket = true in the config)"
        ),
    );
    ok(coffer_in(d, &["--create-bucket", "put", "docs/a.txt"], Some(b"x"), &[]));
}

#[test]
fn archived_content_says_restore_it_first() {
    let (Some((hot, endpoint)), Some((cold, _))) = (moto_bucket(), moto_bucket()) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let config = format!(
        "cold_store = \"glacier\"\n{}\n[stores.glacier]\nkind = \"s3\"\nbucket = \"{cold}\"\nregion = \"us-east-1\"\n\
         endpoint = \"{endpoint}\"\naccess_key_id = \"test\"\nsecret_access_key = \"test\"\ncreate_bucket = true\n\
         storage_class = \"GLACIER\"\n",
        moto_backend(&hot, &endpoint, "create_bucket = true")
    );
    write(d, "coffer.toml", &config);
    let put = json(coffer_in(
        d,
        &["put", "records/2019.csv", "--json"],
        Some(b"old,rows\n"),
        &[],
    ));
    let id = put["version_id"].as_str().unwrap();
    ok(coffer(
        d,
        &["tier", "move", "records/2019.csv", "--version", id, "--to", "cold"],
    ));
    assert_eq!(
        ok(coffer(d, &["tier", "show", "records/2019.csv", "--version", id])).stdout,
        "cold\n"
    );
    fails(
        coffer(d, &["get", "records/2019.csv"]),
        14,
        &format!(
            "records/2019.csv version {id} is archived: restore it first (it is in an archive storage class on s3 {endpoint})"
        ),
    );
    fails(
        coffer(d, &["tier", "move", "records/2019.csv", "--version", id, "--to", "hot"]),
        14,
        &format!(
            "records/2019.csv version {id} is archived: restore it first (it is in an archive storage class on s3 {endpoint})"
        ),
    );
    // `latest` names the version it stands for.
    fails(
        coffer(
            d,
            &["tier", "move", "records/2019.csv", "--version", "latest", "--to", "hot"],
        ),
        14,
        &format!("records/2019.csv version {id} is archived: restore it first"),
    );
    // verify checks archived content by its size, since it cannot read it.
    ok(coffer(d, &["verify", "--min-age", "0s"]));
    let json_error = coffer(d, &["get", "records/2019.csv", "--json"]);
    assert_eq!(json_error.code, 14);
    assert!(
        json_error.stderr.contains("\"kind\":\"archived\""),
        "{}",
        json_error.stderr
    );
    // The storage library's details only when asked for.
    let verbose = coffer(d, &["-v", "get", "records/2019.csv"]);
    assert_eq!(verbose.code, 14);
    assert!(verbose.stderr.lines().count() > 1, "{}", verbose.stderr);
    assert!(
        verbose.stderr.contains("caused by: ") && verbose.stderr.contains("InvalidObjectState"),
        "{}",
        verbose.stderr
    );
    assert!(
        ok(coffer(d, &["--help"])).stdout.contains(" 14  archived"),
        "the exit code is documented"
    );
}

/// A `[backend]` table on a fresh Garage bucket, with `secret` as the
/// secret key and `region` as the region.
fn garage_backend(bucket: &str, endpoint: &str, region: &str, secret: &str) -> String {
    format!(
        "[backend]\nkind = \"s3\"\nbucket = \"{bucket}\"\nregion = \"{region}\"\nendpoint = \"{endpoint}\"\n\
         access_key_id = \"{}\"\nsecret_access_key = \"{secret}\"\n",
        coffer::testkit::services::GARAGE_ACCESS_KEY
    )
}

#[test]
fn refused_credentials_are_unauthorized_not_an_outage() {
    let Some(s3) = coffer::testkit::services::garage_bucket().unwrap() else {
        return;
    };
    let (bucket, endpoint) = (s3.bucket, s3.endpoint.unwrap());
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let good = garage_backend(
        &bucket,
        &endpoint,
        "garage",
        coffer::testkit::services::GARAGE_SECRET_KEY,
    );
    write(d, "coffer.toml", &format!("{good}create_bucket = true\n"));
    ok(coffer_in(d, &["put", "docs/a.txt"], Some(b"kept"), &[]));
    // A wrong secret key: refused, exit 15, and a spool takes no write for it.
    write(d, "coffer.toml", &garage_backend(&bucket, &endpoint, "garage", "wrong"));
    let refused = format!("s3 {endpoint} refused access (AccessDenied): check the credentials");
    fails(coffer(d, &["get", "docs/a.txt"]), 15, &refused);
    fails(
        coffer_in(d, &["--spool", "spool", "put", "docs/b.txt"], Some(b"x"), &[]),
        15,
        &refused,
    );
    assert!(
        !d.join("spool").exists() || std::fs::read_dir(d.join("spool/blobs")).map_or(true, |mut e| e.next().is_none()),
        "the spool took no write"
    );
    let health = coffer(d, &["health"]);
    assert_eq!(health.code, 15, "{}", health.stdout);
    assert!(
        health.stdout.contains(&format!("status:       {refused}")),
        "{}",
        health.stdout
    );
    // A wrong region names the region the store expects, on one line.
    write(d, "coffer.toml", &good);
    fails(
        coffer(d, &["--region", "us-east-1", "get", "docs/a.txt"]),
        15,
        &format!(
            "wrong region: s3 {endpoint} expects requests signed for region garage (set region in the config, COFFER_S3_REGION or --region)"
        ),
    );
    assert!(ok(coffer(d, &["--help"])).stdout.contains(" 15  unauthorized"));
}

#[test]
fn missing_credentials_are_unauthorized() {
    let Some(s3) = coffer::testkit::services::garage_bucket().unwrap() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let endpoint = s3.endpoint.unwrap();
    let good = garage_backend(
        &s3.bucket,
        &endpoint,
        "garage",
        coffer::testkit::services::GARAGE_SECRET_KEY,
    );
    write(d, "coffer.toml", &format!("{good}create_bucket = true\n"));
    ok(coffer_in(d, &["put", "docs/a.txt"], Some(b"kept"), &[]));
    write(
        d,
        "coffer.toml",
        &format!(
            "[backend]\nkind = \"s3\"\nbucket = \"{}\"\nregion = \"garage\"\nendpoint = \"{endpoint}\"\n",
            s3.bucket
        ),
    );
    let none: &[(&str, &str)] = &[
        ("AWS_ACCESS_KEY_ID", ""),
        ("AWS_SECRET_ACCESS_KEY", ""),
        ("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent"),
        ("AWS_CONFIG_FILE", "/nonexistent"),
        ("AWS_PROFILE", "none"),
    ];
    fails(
        coffer_in(d, &["get", "docs/a.txt"], None, none),
        15,
        &format!("no credentials for s3 {endpoint}: set access_key_id and secret_access_key in the config"),
    );
    let health = coffer_in(d, &["health"], None, none);
    assert_eq!(health.code, 15, "{}", health.stdout);
}

#[test]
fn health_says_a_bucket_is_missing_as_put_does() {
    let Some((made, endpoint)) = moto_bucket() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(
        d,
        "coffer.toml",
        &moto_backend(&made, &endpoint, "create_bucket = true"),
    );
    ok(coffer_in(d, &["put", "docs/a.txt"], Some(b"x"), &[]));
    let bucket = format!("coffer-absent-{}", std::process::id());
    write(d, "coffer.toml", &moto_backend(&bucket, &endpoint, ""));
    let health = coffer(d, &["health"]);
    assert_eq!(health.code, 5, "{}{}", health.stdout, health.stderr);
    assert!(
        health.stdout.contains(&format!(
            "status:       bucket {bucket} does not exist on s3 {endpoint}: create it with --create-bucket"
        )),
        "{}",
        health.stdout
    );
}

#[test]
fn a_missing_local_backend_folder_is_named() {
    let Some((bucket, endpoint)) = moto_bucket() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(
        d,
        "coffer.toml",
        &moto_backend(&bucket, &endpoint, "create_bucket = true"),
    );
    ok(coffer_in(d, &["put", "d/a.txt"], Some(b"x"), &[]));
    assert!(d.join("coffer-data").is_dir(), "the catalog is there");
    fails(
        coffer_in(d, &["info"], None, &[("COFFER_BACKEND", "fs")]),
        13,
        "coffer: no store at ./coffer-data/store (the local backend's folder is missing: run `coffer init`, or check the backend's kind)",
    );
}

#[test]
fn a_mistyped_prefix_is_no_store_not_damage() {
    let Some((bucket, endpoint)) = moto_bucket() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(
        d,
        "coffer.toml",
        &moto_backend(&bucket, &endpoint, "create_bucket = true"),
    );
    ok(coffer_in(d, &["put", "d/a.pdf"], Some(b"pdf"), &[]));
    ok(coffer_in(d, &["put", "d/b.pdf"], Some(b"other"), &[]));
    let typo: &[(&str, &str)] = &[("COFFER_S3_PREFIX", "typo")];
    let no_store = format!(
        "no store at s3://{bucket}/typo ({endpoint}): it holds no blobs or manifests, though the catalog has versions stored there (check the backend's bucket, prefix or root)"
    );
    fails(coffer_in(d, &["get", "d/a.pdf"], None, typo), 13, &no_store);
    fails(coffer_in(d, &["verify", "--min-age", "0s"], None, typo), 13, &no_store);
    fails(
        coffer_in(d, &["verify", "--repair", "--min-age", "0s"], None, typo),
        13,
        &no_store,
    );
    // verify --repair wrote nothing there: the right prefix is still the only store.
    let report = json(coffer(d, &["verify", "--min-age", "0s", "--json"]));
    assert_eq!(report["problems"].as_array().unwrap().len(), 0, "{report}");
    fails(coffer_in(d, &["get", "d/a.pdf"], None, typo), 13, &no_store);
    assert_eq!(ok(coffer(d, &["get", "d/a.pdf"])).stdout, "pdf");
}
