//! End-to-end: how the backend is chosen and named (the config file,
//! `COFFER_*` variables and flags overriding single settings, one set of
//! kind names with aliases), and what a user sees when an object store
//! cannot serve: an unreachable endpoint, a missing bucket, archived content.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::path::Path;

use common::{coffer, coffer_in, fails, json, ok};

fn write(d: &Path, name: &str, text: &str) {
    std::fs::write(d.join(name), text).unwrap();
}

/// A fresh bucket on moto: (bucket, endpoint), or `None` when it is not running (and not required).
fn moto_bucket() -> Option<(String, String)> {
    let s3 = coffer::testing::moto_bucket().unwrap()?;
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
    let elsewhere = coffer_in(d, &["get", "docs/a.txt"], None, &[("COFFER_BACKEND_ROOT", "other")]);
    assert_eq!(
        elsewhere.code, 7,
        "the catalog's version has no blob there: {}",
        elsewhere.stderr
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
