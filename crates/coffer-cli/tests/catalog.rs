//! End-to-end tests of the PostgreSQL catalog through the built `coffer`
//! binary: choosing it by flag or environment, and `catalog migrate` from the
//! embedded SQLite catalog. Each test gets a database of its own.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::path::Path;

use coffer::testkit::TestDatabase;
use common::{coffer, coffer_in, fails, json, ok};
use serde_json::Value;

/// A fresh database, or `None` (the test skips) where no server answers and CI does not require one.
fn database() -> Option<TestDatabase> {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(TestDatabase::create()).unwrap()
}

fn put(d: &Path, args: &[&str], content: &[u8]) -> Value {
    let mut all = vec!["put"];
    all.extend_from_slice(args);
    all.push("--json");
    json(coffer_in(d, &all, Some(content), &[]))
}

fn id(version: &Value) -> String {
    version["version_id"].as_str().unwrap().to_owned()
}

/// Everything a user can read about the store, as JSON, with `extra` global arguments.
fn snapshot(d: &Path, keys: &[&str], extra: &[&str]) -> Vec<Value> {
    let mut seen = Vec::new();
    for key in keys {
        for command in [&["versions", key][..], &["history", key][..]] {
            let mut args = command.to_vec();
            args.extend_from_slice(extra);
            args.push("--json");
            seen.push(json(coffer(d, &args)));
        }
    }
    for command in [&["audit", "--limit", "1000"][..], &["list", "--prefix", ""][..]] {
        let mut args = command.to_vec();
        args.extend_from_slice(extra);
        args.push("--json");
        seen.push(json(coffer(d, &args)));
    }
    seen
}

/// Run `work` on the encrypted store in `d` (its catalog, or the one at `catalog_url`).
fn s3_state<T, F, Fut>(d: &std::path::Path, catalog_url: Option<&str>, work: F) -> T
where
    F: FnOnce(coffer::Store) -> Fut,
    Fut: std::future::Future<Output = T>,
{
    let config = coffer::Config {
        catalog_url: catalog_url.map(str::to_owned),
        encryption: coffer::crypto::EncryptionConfig {
            key_file: Some(d.join("k.key")),
            ..coffer::crypto::EncryptionConfig::default()
        },
        ..coffer::Config::embedded(d.join("coffer-data"))
    };
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(async { work(coffer::Store::open(&config).await.unwrap()).await })
}

#[test]
fn catalog_migrate_moves_everything_into_postgres_and_can_run_again() {
    let Some(db) = database() else { return };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // An encrypted store: its data keys and its key record come along too.
    ok(coffer(d, &["keys", "generate", "k.key"]));
    ok(coffer(d, &["init", "--encrypt", "key-file:k.key"]));
    let first = put(
        d,
        &["docs/a.txt", "--tag", "qc=pending", "--metadata", "dept=finance"],
        b"one",
    );
    put(d, &["docs/a.txt"], b"two");
    ok(coffer(d, &["comment", "docs/a.txt", &id(&first), "first upload"]));
    ok(coffer(d, &["tag", "docs/a.txt", &id(&first), "qc=approved"]));
    ok(coffer(
        d,
        &["rollback", "docs/a.txt", &id(&first), "--comment", "back to one"],
    ));
    put(d, &["docs/b.txt"], b"one");
    ok(coffer(d, &["delete", "docs/b.txt"]));
    ok(coffer(d, &["copy", "docs/a.txt", "docs/c.txt"]));
    // A hook with its deliveries and counters comes along too.
    ok(coffer(d, &["hooks", "add", "filelog", "log", "events.jsonl"]));
    ok(coffer(d, &["events", "fire", "batch.completed", "--key", "docs/a.txt"]));
    ok(coffer(d, &["hooks", "run", "--once"]));
    // A completed bundle with its resources comes along too.
    let bundle = ok(coffer(d, &["bundle", "start", "--primary-url", "https://example.com/"]));
    let bundle = bundle.stdout.trim();
    ok(coffer_in(
        d,
        &["bundle", "add", bundle, "--url", "https://example.com/", "-"],
        Some(b"<html>page</html>"),
        &[],
    ));
    ok(coffer(d, &["bundle", "complete", bundle]));
    let bundle_before = json(coffer(d, &["bundle", "show", bundle, "--json"]));
    // A token comes along too, and an empty bucket and a multipart upload
    // in progress (made by the library, as the S3 endpoint makes them).
    ok(coffer(d, &["token", "create", "--scope", "read", "--name", "reader"]));
    let upload_id = s3_state(d, None, |store| async move {
        store.create_bucket("empty-bucket").await.unwrap();
        let upload = store
            .start_multipart("docs/big.bin", &coffer::PutOptions::default())
            .await
            .unwrap();
        let part = futures::stream::once(async { Ok(bytes::Bytes::from_static(b"part one")) });
        store
            .upload_part(&upload.upload_id, 1, Box::pin(part), None)
            .await
            .unwrap();
        upload.upload_id
    });
    let tokens_before = json(coffer(d, &["token", "list", "--json"]));
    let keys = ["docs/a.txt", "docs/b.txt", "docs/c.txt"];
    let before = snapshot(d, &keys, &[]);
    let hooks_before = json(coffer(d, &["hooks", "stats", "--json"]));
    let info_before = json(coffer(d, &["info", "--json"]));

    let report = json(coffer(d, &["catalog", "migrate", "--to", db.url(), "--json"]));
    let tables: Vec<&str> = report["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["table"].as_str().unwrap())
        .collect();
    assert_eq!(
        tables,
        [
            "blobs",
            "store_settings",
            "versions",
            "hot_content",
            "hot_pending",
            "latest",
            "version_tags",
            "version_comments",
            "audit",
            "hooks",
            "outbox",
            "hook_deliveries",
            "hook_stats",
            "bundles",
            "bundle_resources",
            "tokens",
            "buckets",
            "multipart_uploads",
            "multipart_parts",
            "outbox_counters"
        ]
    );
    let rows = |report: &Value, field: &str| -> Vec<u64> {
        report["tables"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t[field].as_u64().unwrap())
            .collect()
    };
    assert_eq!(rows(&report, "inserted"), rows(&report, "rows"));
    assert!(rows(&report, "rows").iter().all(|n| *n > 0), "{report}");

    // The same store, read through PostgreSQL, shows exactly what it showed through SQLite.
    let on_postgres = ["--catalog", db.url()];
    let (buckets, parts) = s3_state(d, Some(db.url()), |store| async move {
        let buckets: Vec<String> = store.buckets().await.unwrap().into_iter().map(|b| b.name).collect();
        (buckets, store.multipart_parts(&upload_id).await.unwrap())
    });
    assert!(buckets.contains(&"empty-bucket".to_owned()), "{buckets:?}");
    assert_eq!(parts.len(), 1, "the upload's part came along");
    assert_eq!(snapshot(d, &keys, &on_postgres), before);
    let hooks_after = json(coffer(d, &["hooks", "stats", "--json", "--catalog", db.url()]));
    assert_eq!(hooks_after["total"]["delivered"], 1);
    assert_eq!(hooks_after, hooks_before);
    let mut info_after = json(coffer(d, &["info", "--json", "--catalog", db.url()]));
    assert!(info_after["catalog"].as_str().unwrap().starts_with("postgres://"));
    info_after["catalog"] = info_before["catalog"].clone();
    // The hot store's content came along, held by the new catalog's engine.
    assert_eq!(info_after["hot"]["engine"], "postgres");
    info_after["hot"]["engine"] = info_before["hot"]["engine"].clone();
    assert_eq!(info_after, info_before);
    assert_eq!(
        ok(coffer(d, &["get", "docs/c.txt", "--catalog", db.url()])).stdout,
        "one"
    );
    // The bundle reads the same there, and its resource reads back.
    let bundle_after = json(coffer(d, &["bundle", "show", bundle, "--json", "--catalog", db.url()]));
    assert_eq!(bundle_after, bundle_before);
    let tokens_after = json(coffer(d, &["token", "list", "--json", "--catalog", db.url()]));
    assert_eq!(tokens_after, tokens_before);
    assert_eq!(
        ok(coffer(
            d,
            &[
                "bundle",
                "get",
                bundle,
                "--resource",
                "https://example.com/",
                "--catalog",
                db.url()
            ]
        ))
        .stdout,
        "<html>page</html>"
    );

    // The copied versions are searchable there, as they were here.
    let search = |extra: &[&str]| {
        let mut args = vec!["search", "finance", "--all-versions", "--json"];
        args.extend_from_slice(extra);
        let page = json(coffer(d, &args));
        let mut found: Vec<String> = page["hits"]
            .as_array()
            .unwrap()
            .iter()
            .map(|hit| format!("{} {}", hit["key"], hit["version_id"]))
            .collect();
        found.sort();
        found
    };
    assert!(!search(&[]).is_empty());
    assert_eq!(search(&["--catalog", db.url()]), search(&[]));

    // Again: nothing new to insert, and the check still passes.
    let again = json(coffer(d, &["catalog", "migrate", "--to", db.url(), "--json"]));
    assert!(rows(&again, "inserted").iter().all(|n| *n == 0), "{again}");
    assert_eq!(rows(&again, "rows"), rows(&report, "rows"));

    // New changes go on from the copied audit log (the snapshot's audit page follows two reads per key).
    let last_id = before[2 * keys.len()][0]["id"].as_i64().unwrap();
    put(d, &["docs/d.txt", "--catalog", db.url()], b"new");
    let audit = json(coffer(d, &["audit", "--limit", "1", "--json", "--catalog", db.url()]));
    assert_eq!(audit[0]["id"].as_i64(), Some(last_id + 1));

    // Now the destination holds more than the source: the check fails, and says where.
    fails(
        coffer(d, &["catalog", "migrate", "--to", db.url()]),
        6,
        "table blobs holds 5 rows in PostgreSQL and 4 in SQLite",
    );
}

#[test]
fn catalog_migrate_without_from_copies_the_stores_own_catalog_when_the_url_names_the_destination() {
    let Some(db) = database() else { return };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let to_db = [("COFFER_CATALOG_URL", db.url())];
    // No store here yet: one line that names the catalog it looked for and the flag to add.
    fails(
        coffer_in(d, &["catalog", "migrate", "--to", db.url()], None, &to_db),
        13,
        "no catalog at coffer-data/catalog.db (pass --from sqlite://PATH)",
    );
    fails(
        coffer_in(
            d,
            &[
                "catalog",
                "migrate",
                "--from",
                "sqlite:///nonexistent/x.db",
                "--to",
                db.url(),
            ],
            None,
            &to_db,
        ),
        13,
        "no catalog at /nonexistent/x.db",
    );
    put(d, &["docs/a.txt", "--metadata", "dept=finance"], b"one");
    let report = json(coffer_in(
        d,
        &["catalog", "migrate", "--to", db.url(), "--json"],
        None,
        &to_db,
    ));
    assert_eq!(report["tables"][2]["table"], "versions");
    assert_eq!(report["tables"][2]["inserted"], 1);
    let versions = json(coffer_in(d, &["versions", "docs/a.txt", "--json"], None, &to_db));
    assert_eq!(versions.as_array().unwrap().len(), 1);
}

#[test]
fn a_failed_catalog_migrate_leaves_the_destination_as_it_was() {
    let Some(db) = database() else { return };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    put(d, &["docs/a.txt", "--tag", "qc=ok"], b"one");
    put(d, &["docs/b.txt"], b"two");
    // The destination already holds a store of its own, so the check after the first table fails.
    let on_postgres = ["--catalog", db.url()];
    put(d, &["other.txt", "--catalog", db.url()], b"three");
    let before = snapshot(d, &["other.txt"], &on_postgres);
    let info_before = json(coffer(d, &["info", "--json", "--catalog", db.url()]));

    fails(
        coffer(d, &["catalog", "migrate", "--to", db.url()]),
        6,
        "table blobs holds 3 rows in PostgreSQL and 2 in SQLite",
    );
    // Nothing of the copy stayed: not the blobs checked, nor anything after them.
    assert_eq!(json(coffer(d, &["info", "--json", "--catalog", db.url()])), info_before);
    assert_eq!(snapshot(d, &["other.txt"], &on_postgres), before);
    // And the destination works as before.
    put(d, &["other.txt", "--catalog", db.url()], b"four");
    let versions = json(coffer(d, &["versions", "other.txt", "--json", "--catalog", db.url()]));
    assert_eq!(versions.as_array().unwrap().len(), 2);
}

#[test]
fn catalog_migrate_refuses_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fails(
        coffer(d, &["catalog", "migrate", "--to", "sqlite://other.db"]),
        5,
        "copies into PostgreSQL",
    );
    fails(
        coffer(
            d,
            &[
                "catalog",
                "migrate",
                "--from",
                "postgres://db/x",
                "--to",
                "postgres://db/y",
            ],
        ),
        5,
        "copies a SQLite catalog",
    );
    fails(
        coffer(
            d,
            &[
                "catalog",
                "migrate",
                "--from",
                "sqlite://missing.db",
                "--to",
                "postgres://db/y",
            ],
        ),
        13,
        "no catalog at missing.db",
    );
    fails(
        coffer(d, &["catalog", "migrate", "--to", "mysql://root:hunter2@db/y"]),
        5,
        "unsupported catalog URL mysql://root:***@db/y",
    );
    // Nothing was created on the way.
    assert_eq!(std::fs::read_dir(d).unwrap().count(), 0);
}

#[test]
fn postgres_catalog_is_chosen_by_flag_or_environment() {
    let Some(db) = database() else { return };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // A read finds no catalog in the fresh database, and leaves it without one.
    for _ in 0..2 {
        fails(
            coffer(d, &["list", "--catalog", db.url()]),
            13,
            "no catalog in postgres://",
        );
    }
    ok(coffer_in(
        d,
        &["put", "k", "--catalog", db.url()],
        Some(b"by flag"),
        &[],
    ));
    ok(coffer_in(
        d,
        &["put", "k"],
        Some(b"by COFFER_CATALOG_URL"),
        &[("COFFER_CATALOG_URL", db.url())],
    ));
    ok(coffer_in(
        d,
        &["put", "k"],
        Some(b"by DATABASE_URL"),
        &[("DATABASE_URL", db.url())],
    ));
    let versions = json(coffer(d, &["versions", "k", "--json", "--catalog", db.url()]));
    assert_eq!(versions.as_array().unwrap().len(), 3);
    // No embedded catalog was made: a read without --catalog finds no store.
    fails(coffer(d, &["versions", "k"]), 13, "no store at ./coffer-data");
    // A catalog that does not answer is a catalog error, and its password never shows.
    fails(
        coffer(d, &["list", "--catalog", "postgres://nobody:s3cret@127.0.0.1:1/none"]),
        9,
        "postgres://nobody:***@127.0.0.1:1/none",
    );
}

#[test]
fn a_migrate_conflict_counts_one_row_in_the_singular() {
    let Some(db) = database() else { return };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(coffer(d, &["init"]));
    put(d, &["other.txt", "--catalog", db.url()], b"three");
    fails(
        coffer(d, &["catalog", "migrate", "--to", db.url()]),
        6,
        "table blobs holds 1 row in PostgreSQL and 0 in SQLite",
    );
}
