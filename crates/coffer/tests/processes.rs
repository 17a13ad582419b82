//! Real processes: a writer SIGKILLed at random points, and several writer
//! processes sharing one store. Both run `examples/workload.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use coffer::testkit::TestDatabase;
use coffer::{AuditQuery, Config, Store, VerifyOptions, VersionId};

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
    /// (key, version) -> SHA-256 of the content, or `None` for a delete marker.
    versions: HashMap<(String, String), Option<String>>,
    /// (key, version, tag name) -> the value last acknowledged.
    tags: HashMap<(String, String, String), String>,
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
                ["PUT" | "COPY" | "ROLL", key, version, sha] => {
                    self.versions
                        .insert((key.to_string(), version.to_string()), Some(sha.to_string()));
                }
                ["DEL", key, version] => {
                    self.versions.insert((key.to_string(), version.to_string()), None);
                }
                ["TAG", key, version, name, value] => {
                    self.tags.insert(
                        (key.to_string(), version.to_string(), name.to_string()),
                        value.to_string(),
                    );
                }
                // Removals are read back from the audit log instead.
                ["DROP" | "RMV", _, _] | ["PRUNE", _] | ["DONE"] => {}
                other => panic!("unexpected workload output {other:?}"),
            }
        }
    }

    /// Every acknowledged version that no committed removal (per the audit
    /// log) took is present, byte-identical, with its acknowledged tags; the
    /// catalog holds nothing else (or, when processes were killed, possibly
    /// changes they made but never reported); reference counts and latest
    /// pointers are right, and every referenced blob re-hashes correctly.
    async fn verify(&self, config: &Config, exact: bool) {
        let store = Store::open(config).await.unwrap();
        let mut removed = HashSet::new();
        for action in ["prune", "delete_version"] {
            let query = AuditQuery {
                action: Some(action.into()),
                limit: 1_000_000,
                ..AuditQuery::default()
            };
            for row in store.audit(&query).await.unwrap() {
                removed.insert((row.key.unwrap(), row.version_id.unwrap()));
            }
        }
        let mut present = HashMap::new();
        for key in self.versions.keys().map(|(key, _)| key.clone()).collect::<HashSet<_>>() {
            for version in store.versions(&key).await.unwrap_or_default() {
                present.insert((key.clone(), version.version_id.to_string()), version);
            }
        }
        for (id, sha) in &self.versions {
            if removed.contains(id) {
                assert!(!present.contains_key(id), "{id:?} was removed but is still listed");
                continue;
            }
            let (key, version) = id;
            let found = present
                .get(id)
                .unwrap_or_else(|| panic!("acknowledged version {version} of {key} is missing"));
            assert_eq!(found.sha256.as_ref(), sha.as_ref(), "content of {key} {version}");
            if let Some(sha) = sha {
                let version_id: VersionId = version.parse().unwrap();
                let (_, bytes) = store
                    .get_bytes(key, Some(&version_id))
                    .await
                    .unwrap_or_else(|e| panic!("acknowledged version {version} of {key} is unreadable: {e}"));
                assert_eq!(&sha256_hex(&bytes), sha, "bytes of {key} {version}");
            }
        }
        for ((key, version, name), value) in &self.tags {
            if let Some(found) = present.get(&(key.clone(), version.clone())) {
                // A worker's tag values count up. A killed worker may have
                // committed a later value it never reported, never an earlier one.
                let stored = found.tags.get(name).map(|v| v.parse::<u64>().unwrap());
                let acknowledged = value.parse::<u64>().unwrap();
                if exact {
                    assert_eq!(stored, Some(acknowledged), "tag {name} of {key} {version}");
                } else {
                    assert!(
                        stored.is_some_and(|v| v >= acknowledged),
                        "tag {name} of {key} {version} is {stored:?}, acknowledged {acknowledged}"
                    );
                }
            }
        }
        let expected = self.versions.keys().filter(|id| !removed.contains(*id)).count();
        if exact {
            assert_eq!(
                present.len(),
                expected,
                "the catalog holds versions nobody acknowledged"
            );
        }
        let problems = store.check_consistency().await.unwrap();
        assert!(problems.is_empty(), "store is inconsistent: {problems:#?}");
        let report = store.verify(&VerifyOptions::default()).await.unwrap();
        assert!(report.is_clean(), "verify found problems: {:#?}", report.problems);
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// Run the workload with `args`, SIGKILL it after `after`, and return what it printed.
async fn run_then_kill(args: &[&str], after: Duration) -> String {
    let mut child = Command::new(workload_binary())
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || std::io::read_to_string(stdout).unwrap());
    tokio::time::sleep(after).await;
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    reader.join().unwrap()
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
        // From before the first put lands to well into a busy run.
        let round_args = [data.to_str().unwrap(), &round.to_string(), "100000", "8"];
        let output = run_then_kill(&round_args, Duration::from_millis(20 + rng % 600)).await;
        acknowledged.absorb(&output);
        acknowledged.verify(&Config::embedded(&data), false).await;
    }
    assert!(
        acknowledged.versions.len() > 50,
        "the workload made too little progress to prove anything: {} versions acknowledged",
        acknowledged.versions.len()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_while_the_hot_store_flushes_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = 0x2545_F491_4F6C_DD1D_u64;
    const ROUNDS: u64 = 100;
    // A fresh store every 20 rounds keeps each round's checks short.
    const ROUNDS_PER_STORE: u64 = 20;
    let mut acknowledged = Acknowledged::default();
    let mut total = 0;
    for round in 0..ROUNDS {
        let data = dir.path().join(format!("data-{}", round / ROUNDS_PER_STORE));
        if round % ROUNDS_PER_STORE == 0 {
            total += acknowledged.versions.len();
            acknowledged = Acknowledged::default();
        }
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        // Between puts, flushes and their marks.
        let round_args = [data.to_str().unwrap(), &round.to_string(), "100000", "8", "flush"];
        let output = run_then_kill(&round_args, Duration::from_millis(20 + rng % 300)).await;
        acknowledged.absorb(&output);
        // Every acknowledged version reads back, from its hot copy or the backend.
        let config = Config::embedded(&data);
        acknowledged.verify(&config, false).await;
        // Once flushed, the backend alone rebuilds every version.
        let store = Store::open(&config).await.unwrap();
        store.flush_hot().await.unwrap();
        let report = store.verify(&VerifyOptions::default()).await.unwrap();
        assert!(report.is_clean(), "after a flush: {:#?}", report.problems);
        assert_eq!(report.unflushed_versions, 0);
        let fresh = coffer::catalog::SqliteCatalog::open(&dir.path().join(format!("rebuilt-{round}.db")))
            .await
            .unwrap();
        let rebuilt = store.reindex_into(&fresh).await.unwrap();
        // (A put killed before its commit may leave a manifest the rebuild
        // finds too, or one half-written that it skips.)
        let _ = rebuilt;
        let found: HashSet<(String, String)> = coffer::catalog::Catalog::version_refs(&fresh, "")
            .await
            .unwrap()
            .into_iter()
            .map(|r| (r.key.to_string(), r.version_id.to_string()))
            .collect();
        for version in store.catalog().version_refs("").await.unwrap() {
            let id = (version.key.to_string(), version.version_id.to_string());
            assert!(found.contains(&id), "round {round}: the rebuild lacks {id:?}");
        }
    }
    total += acknowledged.versions.len();
    assert!(
        total > 300,
        "the workload made too little progress: {total} versions acknowledged"
    );
}

/// Run three workload processes at once on one store and check the outcome.
async fn several_writers(config: &Config) {
    let data = &config.data_dir;
    let children: Vec<_> = (0..3)
        .map(|seed| {
            let mut command = Command::new(workload_binary());
            command
                .args([data.to_str().unwrap(), &(100 + seed).to_string(), "80", "4"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            if let Some(url) = &config.catalog_url {
                command.env("COFFER_CATALOG_URL", url);
            }
            command.spawn().unwrap()
        })
        .collect();
    let mut acknowledged = Acknowledged::default();
    let mut kinds = HashSet::new();
    for child in children {
        let output = child.wait_with_output().unwrap();
        let stdout = String::from_utf8(output.stdout).unwrap();
        assert!(
            output.status.success(),
            "workload failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(stdout.ends_with("DONE\n"));
        kinds.extend(stdout.lines().filter_map(|l| l.split(' ').next()).map(str::to_owned));
        acknowledged.absorb(&stdout);
    }
    // Every kind of change happened, so the check proves something about each.
    for kind in ["PUT", "COPY", "ROLL", "DEL", "TAG", "PRUNE", "RMV"] {
        assert!(kinds.contains(kind), "no {kind} in the workload's output");
    }
    assert!(acknowledged.versions.len() > 100);
    acknowledged.verify(config, true).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn several_writer_processes_share_one_store() {
    let dir = tempfile::tempdir().unwrap();
    several_writers(&Config::embedded(dir.path().join("data"))).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn several_writer_processes_share_one_postgres_catalog() {
    let Some(database) = TestDatabase::create().await.unwrap() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        catalog_url: Some(database.url().to_owned()),
        ..Config::embedded(dir.path().join("data"))
    };
    several_writers(&config).await;
}
