//! End-to-end: `coffer keys rotate` killed with SIGKILL at random points,
//! at least 50 times, rotating from a key file to a passphrase and back:
//! after every kill every version reads back (`verify` re-hashes them all)
//! with the key the store names, and running the rotation again finishes it.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{coffer, coffer_in, json, ok};

const PASSPHRASE: (&str, &str) = ("PW", "a long and winding passphrase");
const FILE_CONFIG: &str = "[encryption]\nkey_file = \"k.key\"\n";
const PASSPHRASE_CONFIG: &str = "[encryption]\npassphrase_env = \"PW\"\n";

/// The rotation away from the key the config names.
fn rotate_args(config: &str) -> Vec<&'static str> {
    match config == FILE_CONFIG {
        true => vec!["keys", "rotate", "--new-passphrase-env", "PW"],
        false => vec!["keys", "rotate", "--new-key-file", "k.key"],
    }
}

/// Every version reads back, whole, with the config `d` has.
fn all_readable(d: &Path, versions: usize) {
    let verify = ok(coffer_in(d, &["verify"], None, &[PASSPHRASE])).stdout;
    assert!(verify.contains(&format!("checked {versions} versions")), "{verify}");
    assert!(verify.contains(" 0 problems"), "{verify}");
}

#[test]
fn a_rotation_killed_at_random_points_loses_no_version_and_finishes_when_run_again() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(coffer(d, &["keys", "generate", "k.key"]));
    ok(coffer(d, &["init", "--encrypt", "key-file:k.key"]));
    let files = d.join("files");
    std::fs::create_dir(&files).unwrap();
    const VERSIONS: usize = 400;
    for i in 0..VERSIONS {
        std::fs::write(
            files.join(format!("{i:04}.txt")),
            format!("record {i} {}", "x".repeat(i)),
        )
        .unwrap();
    }
    ok(coffer(d, &["import", files.to_str().unwrap()]));
    let mut config = FILE_CONFIG;
    std::fs::write(d.join("coffer.toml"), config).unwrap();
    let (mut kills, mut switches, mut seed) = (0, 0, 0x5eed_u64);
    while kills < 50 {
        let mut child = Command::new(env!("CARGO_BIN_EXE_coffer"))
            .current_dir(d)
            .args(rotate_args(config))
            .env(PASSPHRASE.0, PASSPHRASE.1)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        std::thread::sleep(Duration::from_millis(20 + (seed >> 33) % 900));
        let finished = child.try_wait().unwrap().is_some();
        if !finished {
            let pid = nix::unistd::Pid::from_raw(child.id() as i32);
            nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL).unwrap();
            kills += 1;
        }
        child.wait().unwrap();
        // The key the store names now: the config follows it, as a user would.
        let status = json(coffer_in(d, &["keys", "status", "--json"], None, &[PASSPHRASE]));
        let now = match status["key_id"].as_str().unwrap().starts_with("passphrase:") {
            true => PASSPHRASE_CONFIG,
            false => FILE_CONFIG,
        };
        if now != config {
            config = now;
            switches += 1;
            std::fs::write(d.join("coffer.toml"), config).unwrap();
        }
        all_readable(d, VERSIONS);
    }
    // Run to the end, both ways.
    for _ in 0..2 {
        ok(coffer_in(d, &rotate_args(config), None, &[PASSPHRASE]));
        config = if config == FILE_CONFIG {
            PASSPHRASE_CONFIG
        } else {
            FILE_CONFIG
        };
        std::fs::write(d.join("coffer.toml"), config).unwrap();
        all_readable(d, VERSIONS);
        let status = json(coffer_in(d, &["keys", "status", "--json"], None, &[PASSPHRASE]));
        assert!(status["rotation"].is_null(), "{status}");
        let keys = status["data_keys"].as_object().unwrap();
        assert_eq!(keys.len(), 1, "one key wraps every data key once done: {status}");
        assert_eq!(keys.values().next().unwrap(), VERSIONS);
    }
    assert!(
        switches >= 1,
        "the kills let at least one rotation take effect ({kills} kills)"
    );
}
