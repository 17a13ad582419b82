//! End-to-end: retention and legal hold through the built `coffer` binary:
//! the put flags, the store's `[retention]` rules, `retention show|set|clear`,
//! `legal-hold set|clear`, and the refusals (exit 16) of every removal.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::path::Path;

use common::{coffer, coffer_in, fails, json, ok};

/// The exit code of "retention locked".
const LOCKED: i32 = 16;

fn put(d: &Path, key: &str, body: &str, flags: &[&str]) -> String {
    let mut args = vec!["put", key, "--json"];
    args.extend_from_slice(flags);
    let version = json(coffer_in(d, &args, Some(body.as_bytes()), &[]));
    version["version_id"].as_str().unwrap().to_owned()
}

#[test]
fn put_flags_protect_a_version_until_its_date_and_every_removal_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let until = "2099-01-01T00:00:00Z";
    let locked = put(
        d,
        "inv/1.pdf",
        "one",
        &["--retain-until", until, "--retention-mode", "compliance"],
    );
    let held = put(d, "inv/1.pdf", "two", &["--legal-hold"]);
    let governed = put(d, "inv/1.pdf", "three", &["--retain", "10y"]);
    put(d, "inv/1.pdf", "four", &[]);

    let shown = json(coffer(
        d,
        &["retention", "show", "inv/1.pdf", "--version", &locked, "--json"],
    ));
    assert_eq!(shown["retention"]["mode"], "compliance");
    assert_eq!(shown["retention"]["until"], "2099-01-01T00:00:00.000000Z");
    assert_eq!(shown["removable"], false);
    let text = ok(coffer(d, &["retention", "show", "inv/1.pdf", "--version", &locked])).stdout;
    assert!(text.contains("compliance until 2099-01-01"), "{text}");

    fails(
        coffer(d, &["delete", "inv/1.pdf", "--version", &locked, "--bypass-governance"]),
        LOCKED,
        "is under compliance retention until 2099-01-01T00:00:00.000000Z: nobody can remove it",
    );
    fails(
        coffer(d, &["delete", "inv/1.pdf", "--version", &held]),
        LOCKED,
        "is under legal hold",
    );
    fails(
        coffer(d, &["delete", "inv/1.pdf", "--version", &governed]),
        LOCKED,
        "removing it needs --bypass-governance",
    );
    // A delete without a version still writes a delete marker; the versions stay.
    ok(coffer(d, &["delete", "inv/1.pdf"]));
    let pruned = ok(coffer(d, &["prune", "inv/1.pdf", "--keep", "1"])).stdout;
    assert_eq!(pruned.matches("kept ").count(), 3, "{pruned}");
    assert!(pruned.contains("removed 1 version"), "{pruned}");
    let versions = json(coffer(d, &["versions", "inv/1.pdf", "--json"]));
    assert_eq!(versions.as_array().unwrap().len(), 4, "{versions}");

    // Compliance is extended, never shortened; governance yields to the audited bypass.
    ok(coffer(
        d,
        &[
            "retention",
            "set",
            "inv/1.pdf",
            "--version",
            &locked,
            "--retain-until",
            "2100-01-01",
            "--retention-mode",
            "compliance",
        ],
    ));
    fails(
        coffer(
            d,
            &[
                "retention",
                "set",
                "inv/1.pdf",
                "--version",
                &locked,
                "--retain-until",
                "2099-06-01",
                "--retention-mode",
                "compliance",
                "--bypass-governance",
            ],
        ),
        LOCKED,
        "cannot be shortened",
    );
    fails(
        coffer(d, &["retention", "clear", "inv/1.pdf", "--version", &governed]),
        LOCKED,
        "only with --bypass-governance",
    );
    ok(coffer(
        d,
        &[
            "retention",
            "clear",
            "inv/1.pdf",
            "--version",
            &governed,
            "--bypass-governance",
        ],
    ));
    ok(coffer(d, &["delete", "inv/1.pdf", "--version", &governed]));
    ok(coffer(d, &["legal-hold", "clear", "inv/1.pdf", "--version", &held]));
    ok(coffer(d, &["delete", "inv/1.pdf", "--version", &held]));

    let audit = json(coffer(
        d,
        &["audit", "--key", "inv/1.pdf", "--action", "retention", "--json"],
    ));
    let rows = audit.as_array().unwrap();
    assert!(
        rows.iter().any(|r| r["detail"]["bypass_governance"] == true),
        "the bypass is not audited: {audit}"
    );
    let holds = json(coffer(
        d,
        &["audit", "--key", "inv/1.pdf", "--action", "legal_hold", "--json"],
    ));
    assert_eq!(holds.as_array().unwrap().len(), 1, "{holds}");
}

#[test]
fn store_rules_give_new_versions_the_longest_retention_and_bad_requests_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("coffer.toml"),
        "[retention]\nmode = \"governance\"\nduration = \"1d\"\n\n[[retention.rules]]\nprefix = \"invoices/\"\nmode = \"compliance\"\nduration = \"7y\"\n",
    )
    .unwrap();
    let invoice = put(d, "invoices/a.pdf", "a", &[]);
    let shown = json(coffer(
        d,
        &["retention", "show", "invoices/a.pdf", "--version", &invoice, "--json"],
    ));
    assert_eq!(shown["retention"]["mode"], "compliance");
    assert!(shown["retention"]["until"].as_str().unwrap() > "2033", "{shown}");
    let note = put(d, "notes/a.txt", "a", &[]);
    let shown = json(coffer(
        d,
        &["retention", "show", "notes/a.txt", "--version", &note, "--json"],
    ));
    assert_eq!(shown["retention"]["mode"], "governance");

    // Refusals are one line and store nothing.
    for (flags, message) in [
        (&["--retain-until", "2001-01-01"][..], "is in the past"),
        (&["--retention-mode", "compliance"][..], "a retention mode needs"),
        (&["--retain", "forever"][..], "retention span"),
        (
            &["--retain", "1y", "--retention-mode", "strict"][..],
            "expected governance or compliance",
        ),
    ] {
        let mut args = vec!["put", "other/x"];
        args.extend_from_slice(flags);
        fails(coffer_in(d, &args, Some(b"x"), &[]), 5, message);
    }
    fails(coffer(d, &["versions", "other/x"]), 3, "no such key");
    std::fs::write(d.join("coffer.toml"), "[retention]\nduration = \"0d\"\n").unwrap();
    fails(coffer(d, &["list"]), 5, "protects nothing");
}
