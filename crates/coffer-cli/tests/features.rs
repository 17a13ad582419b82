//! A build without some cargo features (the default build has neither the
//! queue sinks, Azure nor PostgreSQL) refuses what they bring with exit 11
//! and one line naming the feature, and changes nothing. Each test runs in
//! builds that leave its feature out: `cargo test -p coffer-cli --test features`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design
#![allow(unused_imports, dead_code)] // a build with every feature runs none of these

mod common;

use std::path::Path;

use common::{coffer, coffer_in, fails, json, ok};

/// Refused with exit 11 naming `feature`, and the store's hooks unchanged.
fn refused(d: &Path, args: &[&str], feature: &str) {
    ok(coffer(d, &["init"]));
    fails(
        coffer(d, args),
        11,
        &format!("rebuild it with the cargo feature {feature})"),
    );
    assert_eq!(json(coffer(d, &["hooks", "list", "--json"])), serde_json::json!([]));
}

#[cfg(not(feature = "server"))]
#[test]
fn serve_names_its_feature_and_creates_no_store() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fails(coffer(d, &["serve"]), 11, "rebuild it with the cargo feature server)");
    assert!(!d.join("coffer-data").exists(), "no store was made");
}

#[cfg(not(feature = "sink-nats"))]
#[test]
fn nats_hooks_name_their_feature() {
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "hooks",
        "add",
        "nats",
        "bus",
        "nats://127.0.0.1:4222",
        "--subject",
        "coffer.{type}",
    ];
    refused(dir.path(), &args, "sink-nats");
}

#[cfg(not(feature = "sink-amqp"))]
#[test]
fn amqp_hooks_name_their_feature() {
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "hooks",
        "add",
        "amqp",
        "rabbit",
        "amqp://127.0.0.1:5672/%2f",
        "--exchange",
        "coffer",
    ];
    refused(dir.path(), &args, "sink-amqp");
}

#[cfg(not(feature = "backend-azblob"))]
#[test]
fn azure_names_its_feature() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    refused(d, &["--backend", "azure", "--container", "c", "list"], "backend-azblob");
    // The same line wherever the kind is named, by its name or its alias:
    // the variable, and the config file's [backend] or a named store.
    let message = "the azure backend (COFFER_BACKEND=azblob): not in this build of coffer \
                   (rebuild it with the cargo feature backend-azblob)";
    let env = [("COFFER_BACKEND", "azblob"), ("COFFER_AZURE_CONTAINER", "c")];
    fails(coffer_in(d, &["list"], None, &env), 11, message);
    for (table, given) in [
        ("[backend]", "[backend] kind = \"azblob\""),
        ("[stores.cold]", "[stores.cold] kind = \"azblob\""),
    ] {
        std::fs::write(
            d.join("coffer.toml"),
            format!("{table}\nkind = \"azblob\"\ncontainer = \"c\"\n"),
        )
        .unwrap();
        let message = format!("the azure backend ({given}): not in this build of coffer");
        fails(coffer(d, &["list"]), 11, &message);
    }
}

#[cfg(not(feature = "catalog-postgres"))]
#[test]
fn postgres_names_its_feature() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    refused(
        d,
        &["--catalog", "postgres://app:s3cret@127.0.0.1/db", "list"],
        "catalog-postgres",
    );
    let run = coffer(d, &["catalog", "migrate", "--to", "postgres://app:s3cret@127.0.0.1/db"]);
    assert!(!run.stderr.contains("s3cret"), "{}", run.stderr);
    fails(run, 11, "rebuild it with the cargo feature catalog-postgres)");
}
