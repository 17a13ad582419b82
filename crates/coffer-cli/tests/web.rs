//! The web archive browser of `coffer serve`, in Debian's Chromium driven
//! headless by playwright-core: sign in, browse to an object, open its
//! history and a diff, upload a new version, tag it, and find both in the
//! audit page; a change without the CSRF token is refused, and a read-only
//! token's pages offer no changes. Screenshots of each step are saved under
//! the test's output (`target/tmp/web-screenshots`).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::serve::serve;
use common::{client, coffer, coffer_in, json, ok};

/// Where playwright-core is (scripts/services/clients.sh installs it).
fn playwright() -> Option<PathBuf> {
    let modules = common::tools_dir().join("playwright/node_modules");
    if modules.join("playwright-core/package.json").is_file() {
        return Some(modules);
    }
    assert!(
        !coffer::testkit::services::services_required(),
        "playwright-core is required (COFFER_REQUIRE_SERVICES=1) but not installed: run scripts/services/clients.sh"
    );
    eprintln!("SKIPPED: playwright-core is not installed; scripts/services/clients.sh installs it");
    None
}

/// The steps, in playwright-core.
const SCRIPT: &str = include_str!("web/story.js");

#[test]
fn a_browser_signs_in_browses_diffs_uploads_tags_and_audits() {
    let (Some(chromium), Some(modules)) = (client("chromium"), playwright()) else {
        return;
    };
    let Some(node) = client("node") else { return };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(coffer_in(
        d,
        &["put", "docs/notes.txt"],
        Some(b"line one\nline two\n"),
        &[],
    ));
    ok(coffer_in(
        d,
        &["put", "docs/notes.txt"],
        Some(b"line one\nline 2\nline three\n"),
        &[],
    ));
    let token = |scope: &str, name: &str| {
        json(coffer(
            d,
            &["token", "create", "--scope", scope, "--name", name, "--json"],
        ))["secret"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let (writer, reader) = (token("write", "browser"), token("read", "viewer"));
    let server = serve(d, &[], &[]);
    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("web-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let upload = d.join("notes-v3.txt");
    std::fs::write(&upload, "line one\nline 2\nline three\nline four\n").unwrap();
    let script = d.join("story.js");
    std::fs::write(&script, SCRIPT).unwrap();
    let output = Command::new(node)
        .arg(&script)
        .args([
            server.url.as_str(),
            &writer,
            &reader,
            shots.to_str().unwrap(),
            upload.to_str().unwrap(),
        ])
        .env("NODE_PATH", &modules)
        .env("CHROMIUM", &chromium)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
        server.logs()
    );
    for name in [
        "1-sign-in-refused",
        "2-browse",
        "3-history-and-diff",
        "4-uploaded-and-tagged",
        "5-audit",
        "6-read-only",
    ] {
        let png = std::fs::read(shots.join(format!("{name}.png"))).unwrap();
        assert!(png.starts_with(b"\x89PNG"), "{name} is a screenshot");
    }
    // What the pages did is in the store.
    let versions = json(coffer(d, &["versions", "docs/notes.txt", "--json"]));
    assert_eq!(versions.as_array().unwrap().len(), 3, "{versions}");
    let latest = versions
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["is_latest"] == true)
        .unwrap();
    assert_eq!(latest["tags"]["reviewed"], "yes", "{latest}");
    assert_eq!(latest["created_by"], "token:browser");
    assert_ne!(
        coffer(d, &["exists", "docs/forged.txt"]).code,
        0,
        "the forged put stored nothing"
    );
}
