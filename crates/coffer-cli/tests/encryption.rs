//! End-to-end: encryption at rest. A store made with `init --encrypt` keeps
//! only ciphertext on its backend (a scan of every stored object finds no
//! plaintext: no content, key name, metadata, tag or comment), reads back
//! every size and range, keeps working through
//! copy, rollback, dedup, export, import, reindex and key rotation, fails
//! tampered content, and refuses a wrong or missing key with exit 17
//! before anything changes.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::path::{Path, PathBuf};

use common::sealed::{MARKER, SEGMENT, content, get, put_file};
use common::{coffer, coffer_in, fails, flush, json, ok};

/// A store in `d` encrypted with a new key file `k1.key`.
fn encrypted_store(d: &Path) {
    ok(coffer(d, &["keys", "generate", "k1.key"]));
    let out = ok(coffer(d, &["init", "--encrypt", "key-file:k1.key"])).stdout;
    assert!(out.contains("encryption: on, with the key file k1.key"), "{out}");
}

/// Every file under `root`.
fn files(root: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                found.push(path);
            }
        }
    }
    found
}

fn assert_no_plaintext(root: &Path) {
    for file in files(root) {
        let bytes = std::fs::read(&file).unwrap();
        assert!(
            !bytes.windows(MARKER.len()).any(|w| w == MARKER),
            "plaintext found in {}",
            file.display()
        );
    }
}

fn blobs(d: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = files(&d.join("coffer-data/store/blobs"));
    found.sort();
    found
}

#[test]
fn every_size_and_range_round_trips_and_nothing_readable_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    encrypted_store(d);
    let sizes = [
        0,
        1,
        SEGMENT - 1,
        SEGMENT,
        SEGMENT + 1,
        3 * SEGMENT + 5,
        2 << 20,
        100 << 20,
    ];
    for (i, size) in sizes.into_iter().enumerate() {
        let data = content(size, i as u8);
        let key = format!("sizes/{size}.bin");
        put_file(d, &key, &data, &[]);
        assert!(get(d, &[&key], &[]) == data, "size {size}");
    }
    // Ranges at and across segment boundaries, in a blob of four segments.
    let data = content(3 * SEGMENT + 5, 5);
    let key = format!("sizes/{}.bin", 3 * SEGMENT + 5);
    for (a, b) in [
        (0, 1),
        (SEGMENT - 1, SEGMENT),
        (SEGMENT, SEGMENT + 1),
        (SEGMENT - 3, 2 * SEGMENT + 3),
        (3 * SEGMENT, 3 * SEGMENT + 5),
    ] {
        let range = format!("{a}-{}", b - 1);
        assert!(get(d, &[&key, "--range", &range], &[]) == data[a..b], "range {range}");
    }
    // Key names, metadata, tags and comments are sealed too (the manifests).
    let marker = std::str::from_utf8(MARKER).unwrap();
    let named = format!("{marker}/note.txt");
    let meta = format!("dept={marker}");
    let id = json(coffer_in(
        d,
        &["put", &named, "--metadata", &meta, "--json"],
        Some(b"x"),
        &[],
    ))["version_id"]
        .as_str()
        .unwrap()
        .to_owned();
    ok(coffer(d, &["tag", &named, &id, &format!("qc={marker}")]));
    ok(coffer(d, &["comment", &named, &id, marker]));
    ok(coffer(d, &["delete", &named]));
    assert_no_plaintext(&d.join("coffer-data/store"));
    let status = json(coffer(d, &["keys", "status", "--json"]));
    assert_eq!(status["encrypted"], true);
    let kek = status["key_id"].as_str().unwrap().to_owned();
    assert!(kek.starts_with("key:"), "{status}");
    assert_eq!(status["data_keys"][&kek], sizes.len() + 1);
    let verified = ok(coffer(d, &["verify"])).stdout;
    assert!(verified.contains("0 problems"), "{verified}");
    let info = json(coffer(d, &["info", "--json"]));
    let layer = info["encryption"].as_str().unwrap();
    assert!(layer.contains("AES-256-GCM") && layer.contains(&kek), "{info}");
    assert!(info["server_side_encryption"].is_null(), "{info}");
}

#[test]
fn copies_rollbacks_dedup_export_import_and_reindex_keep_working() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    encrypted_store(d);
    let first = content(SEGMENT + 9, 1);
    let second = content(100, 2);
    let v1 = put_file(d, "docs/a.bin", &first, &[]);
    put_file(d, "docs/a.bin", &second, &[]);
    put_file(d, "docs/same.bin", &first, &[]);
    flush(d);
    assert_eq!(blobs(d).len(), 2, "identical plaintext is stored once");
    ok(coffer(d, &["copy", "docs/a.bin", "docs/copy.bin"]));
    assert!(get(d, &["docs/copy.bin"], &[]) == second);
    ok(coffer(d, &["rollback", "docs/a.bin", &v1]));
    assert!(get(d, &["docs/a.bin"], &[]) == first);
    // Export writes plaintext out; import into another encrypted store seals it again.
    ok(coffer(d, &["export", "out"]));
    assert!(std::fs::read(d.join("out/docs/a.bin")).unwrap() == first);
    let other = tempfile::tempdir().unwrap();
    let o = other.path();
    encrypted_store(o);
    ok(coffer(o, &["import", d.join("out").to_str().unwrap()]));
    assert!(get(o, &["docs/copy.bin"], &[]) == second);
    assert_no_plaintext(&o.join("coffer-data/store"));
    // A catalog rebuilt from the manifests opens with the same key.
    ok(coffer(d, &["reindex", "--into", "rebuilt.db"]));
    let rebuilt = format!("sqlite://{}", d.join("rebuilt.db").display());
    let out = d.join("re.bin");
    ok(coffer(
        d,
        &["get", "docs/a.bin", "--catalog", &rebuilt, "-o", out.to_str().unwrap()],
    ));
    assert!(std::fs::read(out).unwrap() == first);
    assert_no_plaintext(&d.join("coffer-data/store"));
}

#[test]
fn a_wrong_or_missing_key_fails_in_one_line_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    encrypted_store(d);
    put_file(d, "a.txt", b"kept as it is", &[]);
    flush(d);
    let before = files(&d.join("coffer-data/store")).len();
    let versions = |d: &Path| {
        json(coffer(d, &["versions", "a.txt", "--json"]))
            .as_array()
            .unwrap()
            .len()
    };
    let config = std::fs::read_to_string(d.join("coffer.toml")).unwrap();

    ok(coffer(d, &["keys", "generate", "k2.key"]));
    // `init --encrypt` with another key names it nowhere.
    std::fs::remove_file(d.join("coffer.toml")).unwrap();
    fails(
        coffer(d, &["init", "--encrypt", "key-file:k2.key"]),
        17,
        "is not this store's key",
    );
    assert!(!d.join("coffer.toml").exists());
    std::fs::write(d.join("coffer.toml"), config.replace("k1.key", "k2.key")).unwrap();
    fails(
        coffer_in(d, &["put", "a.txt"], Some(b"new"), &[]),
        17,
        "is not this store's key",
    );
    fails(coffer(d, &["get", "a.txt"]), 17, "is not this store's key");

    std::fs::write(d.join("coffer.toml"), config.replace("k1.key", "gone.key")).unwrap();
    fails(
        coffer_in(d, &["put", "a.txt"], Some(b"new"), &[]),
        17,
        "the key file gone.key cannot be read",
    );

    std::fs::write(d.join("coffer.toml"), "").unwrap();
    fails(
        coffer_in(d, &["put", "a.txt"], Some(b"new"), &[]),
        17,
        "this store is encrypted",
    );
    // Metadata stays readable without the key.
    assert_eq!(versions(d), 1);

    let passphrase_config = "[encryption]\npassphrase_env = \"PW\"\n";
    std::fs::write(d.join("coffer.toml"), &config).unwrap();
    ok(coffer_in(
        d,
        &["keys", "rotate", "--new-passphrase-env", "PW"],
        None,
        &[("PW", "right one")],
    ));
    std::fs::write(d.join("coffer.toml"), passphrase_config).unwrap();
    fails(
        coffer_in(d, &["put", "a.txt"], Some(b"new"), &[("PW", "wrong one")]),
        17,
        "is not this store's key",
    );
    fails(
        coffer_in(d, &["get", "a.txt"], None, &[]),
        17,
        "$PW (the store's passphrase) is not set",
    );
    let read = ok(coffer_in(d, &["get", "a.txt"], None, &[("PW", "right one")])).stdout;
    assert_eq!(read, "kept as it is");
    assert_eq!(versions(d), 1);
    assert_eq!(files(&d.join("coffer-data/store")).len(), before, "nothing was written");
}

#[test]
fn tampered_truncated_swapped_and_substituted_blobs_fail_their_reads() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    encrypted_store(d);
    let data = content(3 * SEGMENT, 1);
    put_file(d, "a.bin", &data, &[]);
    put_file(d, "b.bin", &content(3 * SEGMENT, 2), &[]);
    let (a, b) = {
        let all = blobs(d);
        let a = all
            .iter()
            .find(|p| std::fs::read(p).unwrap().len() > 100)
            .unwrap()
            .clone();
        let b = all.iter().find(|p| **p != a).unwrap().clone();
        // Which one holds a.bin: the one whose read breaks when it is touched.
        (a, b)
    };
    let original_a = std::fs::read(&a).unwrap();
    let original_b = std::fs::read(&b).unwrap();
    let broken = |d: &Path| {
        let a_ok = coffer(d, &["get", "a.bin", "-o", "x.bin"]).code == 0;
        let b_ok = coffer(d, &["get", "b.bin", "-o", "x.bin"]).code == 0;
        !(a_ok && b_ok)
    };
    let header = 32;
    let sealed = SEGMENT + 16;
    let mut flipped = original_a.clone();
    flipped[header + 1000] ^= 0x01;
    let mut swapped = original_a[..header].to_vec();
    swapped.extend_from_slice(&original_a[header + sealed..header + 2 * sealed]);
    swapped.extend_from_slice(&original_a[header..header + sealed]);
    swapped.extend_from_slice(&original_a[header + 2 * sealed..]);
    let truncated = original_a[..original_a.len() - 100].to_vec();
    for (what, bytes) in [
        ("a flipped bit", flipped),
        ("two segments swapped", swapped),
        ("a truncated blob", truncated),
        ("another blob copied over it", original_b.clone()),
    ] {
        std::fs::write(&a, &bytes).unwrap();
        assert!(broken(d), "{what}: a read must fail");
        let verify = coffer(d, &["verify"]);
        assert_eq!(verify.code, 7, "{what}: {}{}", verify.stdout, verify.stderr);
        std::fs::write(&a, &original_a).unwrap();
        assert!(!broken(d), "{what}: restored");
    }
    std::fs::write(&a, &original_a).unwrap();
    let mut flipped = original_a.clone();
    flipped[header + 5] ^= 0x80;
    std::fs::write(&a, &flipped).unwrap();
    let which = if coffer(d, &["get", "a.bin", "-o", "x.bin"]).code != 0 {
        "a.bin"
    } else {
        "b.bin"
    };
    fails(
        coffer(d, &["get", which, "-o", "x.bin"]),
        7,
        "fails authentication at segment 0",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hook_secrets_are_sealed_in_the_catalog_and_open_for_delivery() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    encrypted_store(d);
    let receiver = coffer::testkit::WebhookReceiver::start().await.unwrap();
    let url = receiver.url();
    let add = [
        "hooks",
        "add",
        "webhook",
        "erp",
        &url,
        "--secret",
        "HOOK-SECRET-VALUE",
        "--header",
        "X-Token: HEADER-TOKEN-VALUE",
    ];
    ok(coffer(d, &add));
    put_file(d, "a.txt", b"hello", &[]);
    // Neither secret is in the catalog's files.
    for name in ["catalog.db", "catalog.db-wal"] {
        if let Ok(bytes) = std::fs::read(d.join("coffer-data").join(name)) {
            for secret in [&b"HOOK-SECRET-VALUE"[..], b"HEADER-TOKEN-VALUE"] {
                assert!(
                    !bytes.windows(secret.len()).any(|w| w == secret),
                    "{name} holds a secret"
                );
            }
        }
    }
    let listed = ok(coffer(d, &["hooks", "list", "--json"])).stdout;
    assert!(
        !listed.contains("HOOK-SECRET-VALUE") && !listed.contains("coffer-sealed"),
        "{listed}"
    );
    ok(coffer(d, &["hooks", "run", "--once"]));
    let request = receiver.accepted().pop().expect("delivered");
    assert_eq!(request.headers["x-token"], "HEADER-TOKEN-VALUE");
    assert!(request.headers["webhook-signature"].starts_with("v1,"));
    // After a rotation the secrets open with the new key.
    ok(coffer_in(
        d,
        &["keys", "rotate", "--new-passphrase-env", "PW"],
        None,
        &[("PW", "pass")],
    ));
    std::fs::write(d.join("coffer.toml"), "[encryption]\npassphrase_env = \"PW\"\n").unwrap();
    ok(coffer_in(d, &["put", "b.txt"], Some(b"again"), &[("PW", "pass")]));
    ok(coffer_in(d, &["hooks", "run", "--once"], None, &[("PW", "pass")]));
    let requests = receiver.accepted();
    assert!(requests.len() >= 2, "{}", requests.len());
    assert_eq!(requests.last().unwrap().headers["x-token"], "HEADER-TOKEN-VALUE");
}
