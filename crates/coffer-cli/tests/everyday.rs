//! End-to-end: the everyday edges a new user hits by following the README,
//! run through the built `coffer` binary: pipes closed early, reads in the
//! wrong directory, and the like.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::io::{BufReader, Read};
use std::path::Path;
use std::process::{Command, Stdio};

use common::{coffer, coffer_in, fails, flush, json, ok};

/// The exit code a shell shows for a command a closed pipe ended (128 + SIGPIPE).
const CLOSED_PIPE: i32 = 141;

/// Run `coffer ARGS` in `dir`, read `keep` bytes of its output, close the
/// pipe, and return its exit code and standard error.
fn closed_early(dir: &Path, args: &[&str], keep: usize) -> (i32, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_coffer"))
        .current_dir(dir)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut head = vec![0; keep];
    BufReader::new(child.stdout.take().unwrap())
        .read_exact(&mut head)
        .unwrap();
    let mut stderr = String::new();
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    (child.wait().unwrap().code().unwrap_or(-1), stderr)
}

/// A store in `d` with `n` keys under a long prefix, imported at once.
fn many_keys(d: &Path, n: usize) {
    let src = d.join("src");
    std::fs::create_dir(&src).unwrap();
    for i in 0..n {
        std::fs::write(src.join(format!("file_{i:05}.txt")), i.to_string()).unwrap();
    }
    ok(coffer(d, &["init"]));
    ok(coffer(
        d,
        &["import", "src", "--prefix", "a/rather/long/prefix/for/wide/lines/"],
    ));
}

#[test]
fn a_pipe_closed_early_ends_any_command_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // 1500 rows of about 100 bytes: well over a pipe's 64 KiB buffer.
    many_keys(d, 1500);
    for args in [&["list"][..], &["audit", "--limit", "1500"], &["list", "--json"]] {
        let (code, stderr) = closed_early(d, args, 10);
        assert_eq!((code, stderr.as_str()), (CLOSED_PIPE, ""), "{args:?}");
    }
    // Content streamed to standard output ends the same way.
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(d.join("big.bin"), &big).unwrap();
    ok(coffer(d, &["put", "big.bin", "--file", "big.bin"]));
    let (code, stderr) = closed_early(d, &["get", "big.bin"], 10);
    assert_eq!((code, stderr.as_str()), (CLOSED_PIPE, ""));
    // Read to the end, the same commands succeed.
    let listed = ok(coffer(d, &["list"])).stdout;
    assert_eq!(
        listed.lines().count(),
        1 + 1000 + 1,
        "a header, a page, and the --start-after hint"
    );
}

#[test]
fn reads_of_a_missing_store_fail_with_their_own_code_and_create_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let missing = "no store at ./coffer-data (run `coffer init`, or pass --data-dir)";
    let reads: [&[&str]; 12] = [
        &["list"],
        &["get", "a.txt"],
        &["versions", "a.txt"],
        &["info"],
        &["metadata", "a.txt"],
        &["exists", "a.txt"],
        &["search", "word"],
        &["audit"],
        &["history", "a.txt"],
        &["verify"],
        &["delete", "a.txt"],
        &["hooks", "list"],
    ];
    for args in reads {
        fails(coffer(d, args), 13, missing);
    }
    let run = coffer(d, &["list", "--json"]);
    assert_eq!(run.code, 13);
    let error: serde_json::Value = serde_json::from_str(&run.stderr).unwrap();
    assert_eq!(error["error"]["kind"], "no_store");
    assert_eq!(std::fs::read_dir(d).unwrap().count(), 0, "nothing created");

    // A mistyped catalog is not created either, nor its directory.
    let typo = d.join("nonexistent/dir/cat.db");
    let url = format!("sqlite://{}", typo.display());
    fails(coffer(d, &["--catalog", &url, "list"]), 13, "no catalog at");
    assert!(!d.join("nonexistent").exists());
    fails(
        coffer(d, &["--data-dir", "elsewhere", "list"]),
        13,
        "no store at ./elsewhere",
    );
    assert_eq!(std::fs::read_dir(d).unwrap().count(), 0, "nothing created");

    // init creates it, and a write does too; then reads work.
    ok(coffer(d, &["init"]));
    assert_eq!(ok(coffer(d, &["list"])).stdout.lines().count(), 1, "only the header");
    let other = d.join("other");
    std::fs::create_dir(&other).unwrap();
    let put = json(coffer_in(&other, &["put", "a.txt", "--json"], Some(b"hi"), &[]));
    assert_eq!(put["key"], "a.txt");
    assert_eq!(ok(coffer(&other, &["get", "a.txt"])).stdout, "hi");
    let help = ok(coffer(d, &["--help"])).stdout;
    assert!(help.contains(" 13  no store there"), "{help}");
}

#[test]
fn a_storage_class_on_local_disk_is_refused_even_for_stored_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(coffer_in(d, &["put", "a.txt"], Some(b"same bytes"), &[]));
    for key in ["a.txt", "b.txt", "c.txt"] {
        // Stored bytes (dedup) and new ones refuse alike.
        let content: &[u8] = if key == "c.txt" { b"new bytes" } else { b"same bytes" };
        let run = coffer_in(d, &["put", key, "--storage-class", "STANDARD_IA"], Some(content), &[]);
        fails(run, 11, "has no storage classes");
    }
    assert_eq!(
        json(coffer(d, &["versions", "a.txt", "--json"]))
            .as_array()
            .unwrap()
            .len(),
        1
    );
    fails(coffer(d, &["versions", "b.txt"]), 3, "");
    fails(coffer(d, &["versions", "c.txt"]), 3, "");
}

#[test]
fn put_at_a_terminal_says_it_reads_standard_input() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // `script` gives the command a terminal; Ctrl-D (\x04) after a line ends the input.
    let mut child = Command::new("script")
        .current_dir(d)
        .args([
            "-qec",
            &format!("{} put note.txt", env!("CARGO_BIN_EXE_coffer")),
            "/dev/null",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("script (util-linux) runs a command at a terminal");
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), b"typed\n\x04").unwrap();
    let output = child.wait_with_output().unwrap();
    let shown = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{shown}");
    assert!(shown.contains("reading from standard input (Ctrl-D to end)"), "{shown}");
    assert_eq!(ok(coffer(d, &["get", "note.txt"])).stdout, "typed\n");
    // Piped input stays quiet.
    ok(coffer_in(d, &["put", "piped.txt"], Some(b"piped"), &[]));
}

#[test]
fn get_output_into_a_directory_uses_the_last_segment_of_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(coffer_in(d, &["put", "invoices/2024/inv_001.pdf"], Some(b"%PDF"), &[]));
    std::fs::create_dir(d.join("out")).unwrap();
    for output in ["out", "out/"] {
        ok(coffer(d, &["get", "invoices/2024/inv_001.pdf", "--output", output]));
        assert_eq!(std::fs::read(d.join("out/inv_001.pdf")).unwrap(), b"%PDF");
        std::fs::remove_file(d.join("out/inv_001.pdf")).unwrap();
    }
    let report = json(coffer(
        d,
        &["get", "invoices/2024/inv_001.pdf", "--output", "out/", "--json"],
    ));
    assert_eq!(report["output"], "out/inv_001.pdf");
    // A path ending in / that is no directory is one clear error, and writes nothing.
    fails(
        coffer(d, &["get", "invoices/2024/inv_001.pdf", "--output", "missing/"]),
        10,
        "cannot write into missing/",
    );
    assert!(!d.join("missing").exists());
    // A plain file name is still the file written.
    ok(coffer(d, &["get", "invoices/2024/inv_001.pdf", "--output", "copy.pdf"]));
    assert_eq!(std::fs::read(d.join("copy.pdf")).unwrap(), b"%PDF");
}

#[test]
fn latest_is_accepted_wherever_a_version_id_is() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let v1 = json(coffer_in(d, &["put", "k.txt", "--json"], Some(b"one"), &[]));
    let v2 = json(coffer_in(d, &["put", "k.txt", "--json"], Some(b"two"), &[]));
    let (v1, v2) = (v1["version_id"].as_str().unwrap(), v2["version_id"].as_str().unwrap());
    assert_eq!(ok(coffer(d, &["get", "k.txt", "--version", "latest"])).stdout, "two");
    assert_eq!(
        json(coffer(d, &["metadata", "k.txt", "--version", "latest", "--json"]))["version_id"],
        v2
    );
    ok(coffer(d, &["tag", "k.txt", "latest", "state=final"]));
    ok(coffer(d, &["comment", "k.txt", "latest", "checked"]));
    let head = json(coffer(d, &["metadata", "k.txt", "--json"]));
    assert_eq!(
        (&head["tags"]["state"], &head["comments"][0]["text"]),
        (&"final".into(), &"checked".into())
    );
    let diff = json(coffer(d, &["compare", "k.txt", v1, "latest", "--json"]));
    assert_eq!(diff["to"]["version_id"], v2, "{diff}");
    ok(coffer(d, &["copy", "k.txt", "c.txt", "--version", "latest"]));
    assert_eq!(ok(coffer(d, &["get", "c.txt"])).stdout, "two");
    ok(coffer(d, &["rollback", "k.txt", v1]));
    ok(coffer(d, &["delete", "k.txt", "--version", "latest"]));
    assert_eq!(
        ok(coffer(d, &["get", "k.txt"])).stdout,
        "two",
        "the rollback's version was removed"
    );
    fails(coffer(d, &["get", "k.txt", "--version", "newest"]), 5, "newest");
    fails(
        coffer(d, &["get", "none.txt", "--version", "latest"]),
        3,
        "no such key: none.txt",
    );
}

#[test]
fn a_backend_flag_after_the_command_gets_a_hint() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for (args, flag) in [
        (&["list", "--bucket", "b"][..], "--bucket"),
        (&["get", "k", "--backend=s3"], "--backend"),
        (&["versions", "k", "--endpoint", "http://x"], "--endpoint"),
    ] {
        fails(
            coffer(d, args),
            2,
            &format!("{flag} is a backend flag: put it before the command"),
        );
    }
    // Other usage errors keep clap's own message.
    let run = coffer(d, &["list", "--no-such-flag"]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("unexpected argument '--no-such-flag'"),
        "{}",
        run.stderr
    );
    assert_eq!(std::fs::read_dir(d).unwrap().count(), 0, "nothing created");
}

#[test]
fn verify_min_age_holds_for_foreign_files_by_their_modification_time() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(coffer_in(d, &["put", "k.txt"], Some(b"kept"), &[]));
    flush(d);
    let store = d.join("coffer-data/store/blobs");
    // Files another tool left, with no version id in their names.
    std::fs::write(store.join("fresh-foreign.bin"), b"just written").unwrap();
    std::fs::write(store.join("old-foreign.bin"), b"written long ago").unwrap();
    let two_hours_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(7200);
    std::fs::File::options()
        .write(true)
        .open(store.join("old-foreign.bin"))
        .unwrap()
        .set_modified(two_hours_ago)
        .unwrap();

    let run = ok(coffer(d, &["verify", "--repair", "--min-age", "1h"])).stdout;
    assert!(run.contains("[repaired] orphan_blob: blobs/old-foreign.bin"), "{run}");
    assert!(!run.contains("fresh-foreign"), "{run}");
    assert!(
        run.contains("1 unreferenced object younger than 1h left alone"),
        "{run}"
    );
    assert!(store.join("fresh-foreign.bin").exists(), "a fresh foreign file is kept");
    assert!(!store.join("old-foreign.bin").exists(), "an old one is removed");
    assert_eq!(ok(coffer(d, &["get", "k.txt"])).stdout, "kept");
}
