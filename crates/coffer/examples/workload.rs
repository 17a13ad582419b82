//! A workload process: random puts, copies, rollbacks, tags, deletes, prunes
//! and version removals against a store, printing a line for each change
//! once the store has acknowledged it. The crash test SIGKILLs it at random
//! points; the multi-process tests run several at once on one store (and
//! one catalog: `COFFER_CATALOG_URL` may name a shared PostgreSQL database).
//!
//! ```text
//! cargo run --example workload -- DATA_DIR SEED OPERATIONS CONCURRENCY [flush]
//! (with `flush`, the hot store's flusher runs all along, as in a long-running process)
//! PUT <key> <version id> <sha256>     a put was acknowledged
//! COPY <key> <version id> <sha256>    a copy into <key> was acknowledged
//! ROLL <key> <version id> <sha256>    a rollback of <key> was acknowledged
//! DEL <key> <version id>              a delete marker was acknowledged
//! TAG <key> <version id> <name> <value>  a tag was acknowledged
//! DROP <key> <version id>             a version removal is starting
//! RMV <key> <version id>              a version removal was acknowledged
//! PRUNE <key>                         a prune of <key> is starting
//! ```
//! Removals (by anyone) are read back from the audit log by the tests.

use std::io::Write;
use std::sync::{Arc, Mutex};

use coffer::{Config, CopyOptions, ErrorKind, PrunePolicy, PutOptions, Store, Tags, VersionId};

const KEYS: u64 = 12;

/// A small deterministic generator, so a failing seed can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn content(rng: &mut Rng) -> Vec<u8> {
    // Some contents repeat, so dedup and reference counts are exercised.
    let seed = rng.next() % 40;
    let len = (seed * 7919) % 200_000;
    (0..len).map(|i| (i.wrapping_mul(seed + 3) >> 3) as u8).collect()
}

fn emit(line: String) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// Errors a concurrent writer can expect: another process removed the
/// version or content this change referred to, or the key has none yet.
fn expected(err: &coffer::Error) -> bool {
    matches!(err.kind(), ErrorKind::NotFound | ErrorKind::InvalidInput)
}

/// A version of `key` with content, picked at random, if it has any.
async fn some_version(store: &Store, key: &str, rng: &mut Rng) -> coffer::Result<Option<VersionId>> {
    let versions = match store.versions(key).await {
        Ok(versions) => versions,
        Err(e) if expected(&e) => return Ok(None),
        Err(e) => return Err(e),
    };
    let live: Vec<_> = versions.into_iter().filter(|v| !v.is_delete_marker).collect();
    Ok((!live.is_empty()).then(|| live[(rng.next() % live.len() as u64) as usize].version_id.clone()))
}

async fn worker(
    store: Store,
    seed: u64,
    operations: u64,
    mine: Arc<Mutex<Vec<(String, VersionId)>>>,
) -> coffer::Result<()> {
    let mut rng = Rng(seed | 1);
    let mut tags_set = 0u64;
    for _ in 0..operations {
        let key = format!("keys/k{}", rng.next() % KEYS);
        match rng.next() % 20 {
            0 | 1 => match store.delete(&key).await {
                Ok(marker) => emit(format!("DEL {key} {}", marker.version_id)),
                Err(e) if expected(&e) => {}
                Err(e) => return Err(e),
            },
            2 => {
                let target = {
                    let mut mine = mine.lock().map_err(|_| coffer::Error::new(ErrorKind::Io, "poisoned"))?;
                    let len = mine.len() as u64;
                    (len > 0).then(|| mine.swap_remove((rng.next() % len) as usize))
                };
                if let Some((key, version_id)) = target {
                    // Announced first: if the process dies mid-way, the version may or may not be gone.
                    emit(format!("DROP {key} {version_id}"));
                    match store.delete_version(&key, &version_id).await {
                        Ok(_) => emit(format!("RMV {key} {version_id}")),
                        // A prune (here or in another process) got there first.
                        Err(e) if expected(&e) => {}
                        Err(e) => return Err(e),
                    }
                }
            }
            3 | 4 => {
                let source = format!("keys/k{}", rng.next() % KEYS);
                match store.copy(&source, &key, CopyOptions::default()).await {
                    Ok(v) => emit(format!("COPY {key} {} {}", v.version_id, v.sha256.unwrap_or_default())),
                    Err(e) if expected(&e) => {}
                    Err(e) => return Err(e),
                }
            }
            5 | 6 => {
                if let Some(target) = some_version(&store, &key, &mut rng).await? {
                    match store.rollback(&key, &target, Some("workload rollback")).await {
                        Ok(v) => emit(format!("ROLL {key} {} {}", v.version_id, v.sha256.unwrap_or_default())),
                        Err(e) if expected(&e) => {}
                        Err(e) => return Err(e),
                    }
                }
            }
            7 | 8 => {
                if let Some(target) = some_version(&store, &key, &mut rng).await? {
                    tags_set += 1;
                    let (name, value) = (format!("w{seed}"), tags_set.to_string());
                    let tags = Tags::from([(name.clone(), value.clone())]);
                    match store.tag(&key, &target, tags, &[]).await {
                        Ok(_) => emit(format!("TAG {key} {target} {name} {value}")),
                        Err(e) if expected(&e) => {}
                        Err(e) => return Err(e),
                    }
                }
            }
            9 => {
                emit(format!("PRUNE {key}"));
                let policy = PrunePolicy {
                    keep: 4,
                    keep_tagged: false,
                };
                match store.prune(&key, policy, false).await {
                    Ok(_) => {}
                    Err(e) if expected(&e) => {}
                    Err(e) => return Err(e),
                }
            }
            _ => {
                let version = store.put_bytes(&key, content(&mut rng), PutOptions::default()).await?;
                let sha256 = version.sha256.clone().unwrap_or_default();
                emit(format!("PUT {key} {} {sha256}", version.version_id));
                if let Ok(mut mine) = mine.lock() {
                    mine.push((key, version.version_id));
                }
            }
        }
    }
    Ok(())
}

#[tokio::main]
async fn main() -> coffer::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = || {
        coffer::Error::new(
            ErrorKind::InvalidInput,
            "usage: workload DATA_DIR SEED OPERATIONS CONCURRENCY [flush]",
        )
    };
    let (dir, seed, operations, concurrency, flush) = match args.as_slice() {
        [dir, seed, operations, concurrency] => (dir, seed, operations, concurrency, false),
        [dir, seed, operations, concurrency, flag] if flag == "flush" => (dir, seed, operations, concurrency, true),
        _ => return Err(usage()),
    };
    let number = |s: &String| s.parse::<u64>().map_err(|_| usage());
    let (seed, operations, concurrency) = (number(seed)?, number(operations)?, number(concurrency)?);
    let config = Config {
        catalog_url: std::env::var("COFFER_CATALOG_URL").ok(),
        ..Config::embedded(dir)
    };
    let store = Store::open(&config).await?.with_actor("workload");
    let _flusher = flush.then(|| store.spawn_hot(std::time::Duration::from_millis(2)));
    let mine = Arc::new(Mutex::new(Vec::new()));
    let tasks: Vec<_> = (0..concurrency)
        .map(|i| tokio::spawn(worker(store.clone(), seed * 1000 + i + 1, operations, mine.clone())))
        .collect();
    for task in tasks {
        task.await
            .map_err(|e| coffer::Error::new(ErrorKind::Io, e.to_string()))??;
    }
    emit("DONE".into());
    Ok(())
}
