//! Real processes: a writer SIGKILLed at random points, and several writer
//! processes sharing one store. Both run `examples/workload.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use coffer::{Config, Store, VersionId};

fn workload_binary() -> PathBuf {
    // Tests live in target/<profile>/deps; cargo builds examples into target/<profile>/examples.
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(Path::parent).unwrap();
    let path = profile_dir.join("examples").join("workload");
    assert!(
        path.exists(),
        "{} is missing: run the whole `cargo test -p coffer` (it builds examples) or `cargo build -p coffer --example workload`",
        path.display()
    );
    path
}

/// What the workload processes reported as acknowledged.
#[derive(Default)]
struct Acknowledged {
    /// (key, version) -> SHA-256 of the content, for puts not removed since.
    puts: HashMap<(String, String), String>,
    markers: Vec<(String, String)>,
}

impl Acknowledged {
    fn absorb(&mut self, output: &str) {
        // A line without its newline was cut by the kill: it was never fully reported.
        let complete = match output.rfind('\n') {
            Some(end) => &output[..end],
            None => "",
        };
        for line in complete.lines() {
            let fields: Vec<&str> = line.split(' ').collect();
            match fields.as_slice() {
                ["PUT", key, version, sha] => {
                    self.puts
                        .insert((key.to_string(), version.to_string()), sha.to_string());
                }
                ["DEL", key, version] => self.markers.push((key.to_string(), version.to_string())),
                // From the moment its removal starts, a version may be gone.
                ["DROP" | "RMV", key, version] => {
                    self.puts.remove(&(key.to_string(), version.to_string()));
                }
                ["DONE"] => {}
                other => panic!("unexpected workload output {other:?}"),
            }
        }
    }

    /// Every acknowledged version reads back byte-identical and the store is sound.
    async fn verify(&self, dir: &Path) {
        let store = Store::open(&Config::embedded(dir)).await.unwrap();
        for ((key, version), sha) in &self.puts {
            let id: VersionId = version.parse().unwrap();
            let (found, bytes) = store
                .get_bytes(key, Some(&id))
                .await
                .unwrap_or_else(|e| panic!("acknowledged version {version} of {key} is unreadable: {e}"));
            let actual = sha256_hex(&bytes);
            assert_eq!(&actual, sha, "bytes of {key} {version}");
            assert_eq!(found.sha256.as_deref(), Some(sha.as_str()));
        }
        for (key, version) in &self.markers {
            let versions = store.versions(key).await.unwrap();
            assert!(
                versions
                    .iter()
                    .any(|v| v.version_id.as_str() == version && v.is_delete_marker)
            );
        }
        let problems = store.check_consistency().await.unwrap();
        assert!(problems.is_empty(), "store is inconsistent: {problems:#?}");
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_at_random_points_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut acknowledged = Acknowledged::default();
    let mut rng = 0x9E37_79B9_7F4A_7C15_u64;
    const ROUNDS: u64 = 15;
    for round in 0..ROUNDS {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let mut child = Command::new(workload_binary())
            .args([data.to_str().unwrap(), &round.to_string(), "100000", "8"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || std::io::read_to_string(stdout).unwrap());
        // From before the first put lands to well into a busy run.
        tokio::time::sleep(Duration::from_millis(20 + rng % 600)).await;
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        acknowledged.absorb(&reader.join().unwrap());
        acknowledged.verify(&data).await;
    }
    assert!(
        acknowledged.puts.len() > 50,
        "the workload made too little progress to prove anything"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn several_writer_processes_share_one_store() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let children: Vec<_> = (0..3)
        .map(|seed| {
            Command::new(workload_binary())
                .args([data.to_str().unwrap(), &(100 + seed).to_string(), "60", "4"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut acknowledged = Acknowledged::default();
    let mut total_puts = 0;
    for child in children {
        let output = child.wait_with_output().unwrap();
        let stdout = String::from_utf8(output.stdout).unwrap();
        assert!(
            output.status.success(),
            "workload failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(stdout.ends_with("DONE\n"));
        total_puts += stdout.lines().filter(|l| l.starts_with("PUT")).count();
        acknowledged.absorb(&stdout);
    }
    acknowledged.verify(&data).await;
    // Every version any process acknowledged, and nothing else, is in the catalog.
    let store = Store::open(&Config::embedded(&data)).await.unwrap();
    let stats = store.info().await.unwrap().stats;
    assert_eq!(
        stats.versions as usize,
        acknowledged.puts.len() + acknowledged.markers.len()
    );
    assert!(total_puts >= acknowledged.puts.len() && acknowledged.puts.len() > 100);
}
