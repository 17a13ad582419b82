//! End-to-end: run the built `coffer` binary as a user would and check its
//! output, exit codes and files.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use common::{coffer, coffer_in, fails, json, ok};
use serde_json::Value;

#[test]
fn first_use_put_get_metadata_versions() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let init = ok(coffer(d, &["init"]));
    assert!(init.stdout.contains("initialized coffer store in coffer-data"));
    assert!(d.join("coffer-data/catalog.db").exists() && d.join("coffer-data/store").is_dir());

    std::fs::write(d.join("invoice.pdf"), b"%PDF-1.7 first").unwrap();
    let put = [
        "put",
        "invoices/2024/inv_001.pdf",
        "--file",
        "invoice.pdf",
        "--content-type",
        "application/pdf",
        "--metadata",
        "department=finance",
        "--metadata",
        "year=2024",
        "--json",
    ];
    let v1 = json(coffer_in(d, &put, None, &[("COFFER_USER", "alice")]));
    assert_eq!(v1["created_by"], "alice");
    assert_eq!(v1["metadata"]["department"], "finance");
    let v1_id = v1["version_id"].as_str().unwrap().to_owned();

    std::fs::write(d.join("invoice.pdf"), b"%PDF-1.7 second, longer").unwrap();
    let v2 = json(coffer(
        d,
        &[
            "put",
            "invoices/2024/inv_001.pdf",
            "--file",
            "invoice.pdf",
            "--user",
            "bob",
            "--json",
        ],
    ));
    assert_eq!(v2["created_by"], "bob");
    assert_eq!(v2["content_type"], "application/pdf", "guessed from the extension");

    ok(coffer(d, &["get", "invoices/2024/inv_001.pdf", "--output", "out.pdf"]));
    assert_eq!(std::fs::read(d.join("out.pdf")).unwrap(), b"%PDF-1.7 second, longer");
    ok(coffer(
        d,
        &[
            "get",
            "invoices/2024/inv_001.pdf",
            "--version",
            &v1_id,
            "--output",
            "v1.pdf",
        ],
    ));
    assert_eq!(std::fs::read(d.join("v1.pdf")).unwrap(), b"%PDF-1.7 first");
    let head = ok(coffer(d, &["get", "invoices/2024/inv_001.pdf", "--range", "0-7"]));
    assert_eq!(head.stdout, "%PDF-1.7");

    let meta = ok(coffer(
        d,
        &["metadata", "invoices/2024/inv_001.pdf", "--version", &v1_id],
    ));
    for field in [
        "key:",
        "version_id:",
        "size:",
        "etag:",
        "sha256:",
        "content_type:",
        "created_at:",
        "created_by:",
    ] {
        assert!(meta.stdout.contains(field), "{field} missing from {}", meta.stdout);
    }
    assert!(meta.stdout.contains("department=finance") && meta.stdout.contains("alice"));

    let versions = json(coffer(d, &["versions", "invoices/2024/inv_001.pdf", "--json"]));
    let versions = versions.as_array().unwrap();
    assert_eq!(versions.len(), 2);
    assert_eq!(
        (versions[0]["is_latest"].as_bool(), versions[1]["version_id"].as_str()),
        (Some(true), Some(v1_id.as_str()))
    );
    let table = ok(coffer(d, &["versions", "invoices/2024/inv_001.pdf"]));
    assert!(table.stdout.starts_with("VERSION"), "{}", table.stdout);
    assert_eq!(table.stdout.lines().count(), 3);
}

#[test]
fn stdin_put_guesses_content_type() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let v = json(coffer_in(
        d,
        &["put", "reports/q1.csv", "--json"],
        Some(b"region,total\nnorth,10\n"),
        &[],
    ));
    assert_eq!(v["content_type"], "text/csv");
    assert_eq!(v["size"], 22);
    assert_eq!(
        ok(coffer(d, &["get", "reports/q1.csv"])).stdout,
        "region,total\nnorth,10\n"
    );
}

#[test]
fn exists_list_copy_delete_info() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for key in [
        "invoices/2024/a.txt",
        "invoices/2024/b.txt",
        "invoices/2025/c.txt",
        "notes.txt",
    ] {
        ok(coffer_in(d, &["put", key], Some(key.as_bytes()), &[]));
    }
    assert_eq!(coffer(d, &["exists", "invoices/2024/a.txt"]).code, 0);
    let missing = coffer(d, &["exists", "invoices/2024/zzz.txt"]);
    assert_eq!(
        (missing.code, missing.stdout.as_str(), missing.stderr.as_str()),
        (3, "", "")
    );

    let page = json(coffer(
        d,
        &["list", "--prefix", "invoices/", "--delimiter", "/", "--json"],
    ));
    assert_eq!(
        page["common_prefixes"],
        serde_json::json!(["invoices/2024/", "invoices/2025/"])
    );
    let page = json(coffer(
        d,
        &["list", "--prefix", "invoices/2024", "--max-keys", "1", "--json"],
    ));
    assert_eq!(
        (page["objects"][0]["key"].as_str(), page["is_truncated"].as_bool()),
        (Some("invoices/2024/a.txt"), Some(true))
    );
    let next = json(coffer(
        d,
        &[
            "list",
            "--prefix",
            "invoices/2024",
            "--start-after",
            "invoices/2024/a.txt",
            "--json",
        ],
    ));
    assert_eq!(next["objects"][0]["key"], "invoices/2024/b.txt");
    let table = ok(coffer(d, &["list"]));
    assert!(
        table.stdout.starts_with("KEY") && table.stdout.contains("notes.txt"),
        "{}",
        table.stdout
    );

    let copy = json(coffer(d, &["copy", "invoices/2024/a.txt", "backup/a.txt", "--json"]));
    let source = json(coffer(d, &["metadata", "invoices/2024/a.txt", "--json"]));
    assert_eq!(copy["blob_path"], source["blob_path"], "copy shares the blob");
    assert_eq!(ok(coffer(d, &["get", "backup/a.txt"])).stdout, "invoices/2024/a.txt");

    ok(coffer(d, &["delete", "invoices/2024/a.txt"]));
    assert_eq!(coffer(d, &["exists", "invoices/2024/a.txt"]).code, 3);
    fails(coffer(d, &["get", "invoices/2024/a.txt"]), 3, "no such key");
    let versions = json(coffer(d, &["versions", "invoices/2024/a.txt", "--json"]));
    assert_eq!(versions[0]["is_delete_marker"], true);
    let old = versions[1]["version_id"].as_str().unwrap().to_owned();
    ok(coffer(d, &["delete", "invoices/2024/a.txt", "--version", &old]));
    let versions = json(coffer(d, &["versions", "invoices/2024/a.txt", "--json"]));
    assert_eq!(versions.as_array().unwrap().len(), 1);
    assert_eq!(
        ok(coffer(d, &["get", "backup/a.txt"])).stdout,
        "invoices/2024/a.txt",
        "the copy keeps the bytes"
    );

    let info = json(coffer(d, &["info", "--json"]));
    assert_eq!(
        (
            info["objects"].as_u64(),
            info["versions"].as_u64(),
            info["delete_markers"].as_u64()
        ),
        (Some(4), Some(5), Some(1))
    );
    assert!(info["backend"].as_str().unwrap().starts_with("fs:"));
    let text = ok(coffer(d, &["info"]));
    assert!(text.stdout.contains("objects:") && text.stdout.contains("catalog:"));
}

#[test]
fn errors_are_one_line_with_stable_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fails(coffer_in(d, &["put", "../escape"], Some(b"x"), &[]), 4, "invalid key");
    fails(coffer_in(d, &["put", "a\tb"], Some(b"x"), &[]), 4, "control characters");
    assert!(!d.join("escape").exists());
    fails(
        coffer_in(d, &["put", "k", "--metadata", "novalue"], Some(b"x"), &[]),
        5,
        "metadata \"novalue\" is not NAME=VALUE",
    );
    fails(coffer(d, &["get", "nothing"]), 3, "no such key");
    ok(coffer_in(d, &["put", "k"], Some(b"one"), &[]));
    fails(
        coffer(d, &["get", "k", "--version", "not-a-version"]),
        5,
        "invalid version id",
    );
    fails(
        coffer(d, &["get", "k", "--version", "0123456789abcdef0123456789abcdef"]),
        3,
        "no version",
    );
    fails(coffer(d, &["get", "k", "--range", "10-"]), 5, "range not satisfiable");
    fails(
        coffer(d, &["put", "k", "--file", "no-such-file"]),
        10,
        "cannot open no-such-file",
    );
    fails(
        coffer_in(d, &["put", "k", "--if-none-match", "*"], Some(b"two"), &[]),
        6,
        "already exists",
    );
    fails(
        coffer_in(d, &["put", "k", "--if-none-match", "etag"], Some(b"two"), &[]),
        5,
        "only '*'",
    );
    fails(
        coffer_in(d, &["put", "k", "--if-match", "deadbeef"], Some(b"two"), &[]),
        6,
        "precondition failed",
    );
    let etag = json(coffer(d, &["metadata", "k", "--json"]))["etag"]
        .as_str()
        .unwrap()
        .to_owned();
    ok(coffer_in(
        d,
        &["put", "k", "--if-match", &format!("\"{etag}\"")],
        Some(b"two"),
        &[],
    ));
    ok(coffer_in(d, &["put", "new", "--if-none-match", "*"], Some(b"x"), &[]));
    // Failed commands changed nothing.
    let info = json(coffer(d, &["info", "--json"]));
    assert_eq!((info["versions"].as_u64(), info["blobs"].as_u64()), (Some(3), Some(3)));

    let run = coffer(d, &["get", "nothing", "--json"]);
    assert_eq!(run.code, 3);
    let error: Value = serde_json::from_str(run.stderr.trim()).unwrap();
    assert_eq!(error["error"]["kind"], "not_found");
    assert_eq!(coffer(d, &["frobnicate"]).code, 2, "usage errors");
}

#[test]
fn corrupt_blob_fails_get_without_leaving_output() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Damage on the backend: a put that writes there at once.
    let v = json(coffer_in(
        d,
        &["put", "doc.bin", "--json"],
        Some(&[7u8; 4096]),
        &[("COFFER_HOT_MAX_OBJECT_SIZE", "0")],
    ));
    let blob = d.join("coffer-data/store").join(v["blob_path"].as_str().unwrap());
    let mut bytes = std::fs::read(&blob).unwrap();
    bytes[100] = 0;
    std::fs::write(&blob, bytes).unwrap();
    fails(coffer(d, &["get", "doc.bin", "--output", "restored.bin"]), 7, "SHA-256");
    assert!(!d.join("restored.bin").exists());
    assert!(!d.join(".restored.bin.coffer-partial").exists());
}

#[test]
fn config_file_and_environment() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("coffer.toml"), "data_dir = \"archive\"\nuser = \"from-file\"\n").unwrap();
    let v = json(coffer_in(d, &["put", "k", "--json"], Some(b"x"), &[]));
    assert_eq!(v["created_by"], "from-file");
    assert!(d.join("archive/catalog.db").exists() && !d.join("coffer-data").exists());
    let v = json(coffer_in(
        d,
        &["put", "k", "--json"],
        Some(b"y"),
        &[("COFFER_USER", "from-env")],
    ));
    assert_eq!(v["created_by"], "from-env");
    let v = json(coffer_in(
        d,
        &["put", "k", "--json", "--user", "from-flag"],
        Some(b"z"),
        &[("COFFER_USER", "from-env")],
    ));
    assert_eq!(v["created_by"], "from-flag");
    ok(coffer_in(d, &["put", "k"], Some(b"w"), &[("COFFER_DATA_DIR", "other")]));
    assert!(d.join("other/catalog.db").exists());
    std::fs::write(d.join("bad.toml"), "data_dri = 1\n").unwrap();
    fails(coffer(d, &["--config", "bad.toml", "info"]), 5, "data_dri");
}

#[test]
fn completion_scripts_name_every_command_for_each_shell() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for (shell, marker) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef coffer"),
        ("fish", "complete -c coffer"),
    ] {
        let script = ok(coffer(d, &["completions", shell])).stdout;
        assert!(script.contains(marker), "{shell}: {script}");
        for command in ["bundle", "token", "serve", "legal-hold"] {
            assert!(script.contains(command), "{shell} misses {command}");
        }
    }
    assert_eq!(coffer(d, &["completions", "cmd"]).code, 2);
    assert!(!d.join("coffer-data").exists(), "no store was made");
}
