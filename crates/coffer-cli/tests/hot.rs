//! End-to-end: the hot store through the CLI. A small put returns with its
//! object held in the catalog; `hot status`, `info` and `verify` say what
//! waits; `hot flush` writes it; `hot expire` drops old flushed copies; a
//! long-running process flushes on its own; bad settings are refused.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::path::Path;
use std::time::Duration;

use common::{coffer, coffer_in, fails, json, ok};

fn files_under(root: &Path) -> usize {
    match std::fs::read_dir(root) {
        Err(_) => 0,
        Ok(entries) => entries
            .map(|entry| {
                let path = entry.unwrap().path();
                if path.is_dir() { files_under(&path) } else { 1 }
            })
            .sum(),
    }
}

#[test]
fn a_put_waits_in_the_catalog_until_a_flush_writes_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let store = d.join("coffer-data/store");
    let put = json(coffer_in(
        d,
        &["put", "notes/a.json", "--json"],
        Some(b"{\"page\": 1}"),
        &[],
    ));
    assert_eq!(files_under(&store), 0, "nothing is written before the commit");
    assert_eq!(ok(coffer(d, &["get", "notes/a.json"])).stdout, "{\"page\": 1}");

    let status = json(coffer(d, &["hot", "status", "--json"]));
    assert_eq!(
        (&status["objects"], &status["unflushed_objects"]),
        (&1.into(), &1.into())
    );
    assert_eq!(
        (&status["pending_versions"], &status["max_object_size"]),
        (&1.into(), &65536.into())
    );
    assert_eq!((&status["engine"], &status["days"]), (&"sqlite".into(), &90.into()));
    let text = ok(coffer(d, &["hot", "status"])).stdout;
    assert!(text.contains("held:    1 object (11 B)"), "{text}");
    assert!(text.contains("1 manifest and 1 blob (11 B) for the backend"), "{text}");
    let info = ok(coffer(d, &["info"])).stdout;
    assert!(info.contains("hot:") && info.contains("(coffer hot flush)"), "{info}");
    let recent = json(coffer(
        d,
        &["hot", "query", "--prefix", "notes/", "--since", "1h", "--json"],
    ));
    assert_eq!(recent[0]["key"], "notes/a.json", "{recent}");
    assert_eq!(
        (&recent[0]["version_id"], &recent[0]["size"]),
        (&put["version_id"], &11.into())
    );
    let table = ok(coffer(d, &["hot", "query"])).stdout;
    assert!(table.starts_with("KEY") && table.contains("notes/a.json"), "{table}");
    assert_eq!(
        json(coffer(d, &["hot", "query", "--prefix", "other/", "--json"])),
        serde_json::json!([])
    );
    fails(
        coffer(d, &["hot", "query", "--limit", "0"]),
        5,
        "--limit must be at least 1",
    );
    let verify = json(coffer(d, &["verify", "--json"]));
    assert_eq!(verify["problems"], serde_json::json!([]), "{verify}");
    assert_eq!(
        (&verify["unflushed_versions"], &verify["unflushed_blobs"]),
        (&1.into(), &1.into())
    );

    assert_eq!(
        ok(coffer(d, &["hot", "flush"])).stdout,
        "flushed 1 manifest and 1 blob (11 B) to the backend\n"
    );
    assert_eq!(files_under(&store), 2, "the blob and the manifest");
    assert!(store.join(put["blob_path"].as_str().unwrap()).is_file());
    let text = ok(coffer(d, &["hot", "status"])).stdout;
    assert!(text.contains("nothing: the backend holds every version"), "{text}");
    assert_eq!(
        ok(coffer(d, &["hot", "expire", "--dry-run"])).stdout,
        "would drop 0 hot copies (flushed, older than the store's hot.days)\n"
    );
    // Rebuilt from the backend alone.
    let rebuilt = d.join("rebuilt.db");
    ok(coffer(d, &["reindex", "--into", rebuilt.to_str().unwrap()]));
    let catalog = format!("sqlite://{}", rebuilt.display());
    assert_eq!(
        ok(coffer(d, &["--catalog", &catalog, "get", "notes/a.json"])).stdout,
        "{\"page\": 1}"
    );
}

#[test]
fn larger_puts_and_a_store_without_the_hot_store_write_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let store = d.join("coffer-data/store");
    ok(coffer_in(d, &["put", "big.bin"], Some(&vec![1u8; (64 << 10) + 1]), &[]));
    assert_eq!(files_under(&store), 2);
    let off = [("COFFER_HOT_MAX_OBJECT_SIZE", "0")];
    ok(coffer_in(d, &["put", "small.txt"], Some(b"tiny"), &off));
    assert_eq!(files_under(&store), 4);
    std::fs::write(d.join("coffer.toml"), "[hot]\nmax_object_size = 10\n").unwrap();
    ok(coffer_in(d, &["put", "eleven.txt"], Some(b"eleven byte"), &[]));
    assert_eq!(files_under(&store), 6, "above the configured size");
    let text = ok(coffer(d, &["hot", "status"])).stdout;
    assert!(text.contains("takes:   puts up to 10 B, kept 90 days"), "{text}");
}

#[test]
fn bad_settings_are_refused_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fails(
        coffer_in(d, &["put", "a"], Some(b"x"), &[("COFFER_HOT_MAX_OBJECT_SIZE", "lots")]),
        5,
        "COFFER_HOT_MAX_OBJECT_SIZE=\"lots\": expected a whole number",
    );
    fails(
        coffer_in(
            d,
            &["put", "a"],
            Some(b"x"),
            &[("COFFER_HOT_MAX_OBJECT_SIZE", "2000000")],
        ),
        5,
        "hot.max_object_size = 2000000 is more than the 1048576 bytes allowed",
    );
    std::fs::write(d.join("coffer.toml"), "[hot]\ndays = 0\n").unwrap();
    fails(
        coffer_in(d, &["put", "a"], Some(b"x"), &[]),
        5,
        "hot.days = 0 would drop hot copies as soon as they are flushed: use at least 1",
    );
    std::fs::write(d.join("coffer.toml"), "[hot]\nsize = 1\n").unwrap();
    fails(coffer_in(d, &["put", "a"], Some(b"x"), &[]), 5, "unknown field `size`");
    assert!(!d.join("coffer-data").exists(), "nothing was created");
}

#[test]
fn a_long_running_process_flushes_on_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(coffer_in(d, &["put", "a.txt"], Some(b"waiting"), &[]));
    let mut watcher = std::process::Command::new(env!("CARGO_BIN_EXE_coffer"))
        .current_dir(d)
        .args(["hooks", "run"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let flushed = loop {
        let status = json(coffer(d, &["hot", "status", "--json"]));
        if status["pending_versions"] == 0 {
            break true;
        }
        if std::time::Instant::now() > deadline {
            break false;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let _ = watcher.kill();
    let _ = watcher.wait();
    assert!(flushed, "hooks run flushed the hot store");
    assert_eq!(files_under(&d.join("coffer-data/store")), 2);
}

#[test]
fn a_put_to_a_missing_bucket_waits_and_the_flush_says_why() {
    let Some(s3) = coffer::testkit::services::moto_bucket().unwrap() else {
        return;
    };
    let endpoint = s3.endpoint.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let bucket = format!("coffer-hot-missing-{}", std::process::id());
    std::fs::write(
        d.join("coffer.toml"),
        format!(
            "[backend]\nkind = \"s3\"\nbucket = \"{bucket}\"\nregion = \"us-east-1\"\nendpoint = \"{endpoint}\"\n\
             access_key_id = \"test\"\nsecret_access_key = \"test\"\n"
        ),
    )
    .unwrap();
    ok(coffer_in(d, &["put", "docs/a.txt"], Some(b"kept"), &[]));
    assert_eq!(ok(coffer(d, &["get", "docs/a.txt"])).stdout, "kept");
    fails(
        coffer(d, &["hot", "flush"]),
        5,
        &format!("bucket {bucket} does not exist on s3 {endpoint}: create it with --create-bucket"),
    );
    assert_eq!(json(coffer(d, &["hot", "status", "--json"]))["pending_versions"], 1);
    assert_eq!(
        ok(coffer(d, &["--create-bucket", "hot", "flush"])).stdout,
        "flushed 1 manifest and 1 blob (4 B) to the backend\n"
    );
}
