//! A workload process: random puts, deletes and version removals against a
//! store, printing a line for each change once the store has acknowledged it.
//! The crash test SIGKILLs it at random points; the multi-process test runs
//! several at once on one store.
//!
//! ```text
//! cargo run --example workload -- DATA_DIR SEED OPERATIONS CONCURRENCY
//! PUT <key> <version id> <sha256>     a put was acknowledged
//! DEL <key> <version id>              a delete marker was acknowledged
//! DROP <key> <version id>             a version removal is starting
//! RMV <key> <version id>              a version removal was acknowledged
//! ```

use std::io::Write;
use std::sync::{Arc, Mutex};

use coffer::{Config, ErrorKind, PutOptions, Store, VersionId};

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

async fn worker(
    store: Store,
    seed: u64,
    operations: u64,
    mine: Arc<Mutex<Vec<(String, VersionId)>>>,
) -> coffer::Result<()> {
    let mut rng = Rng(seed | 1);
    for _ in 0..operations {
        let key = format!("keys/k{}", rng.next() % KEYS);
        match rng.next() % 10 {
            0 => match store.delete(&key).await {
                Ok(marker) => emit(format!("DEL {key} {}", marker.version_id)),
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            },
            1 => {
                let target = {
                    let mut mine = mine.lock().map_err(|_| coffer::Error::new(ErrorKind::Io, "poisoned"))?;
                    let len = mine.len() as u64;
                    (len > 0).then(|| mine.swap_remove((rng.next() % len) as usize))
                };
                if let Some((key, version_id)) = target {
                    // Announced first: if the process dies mid-way, the version may or may not be gone.
                    emit(format!("DROP {key} {version_id}"));
                    store.delete_version(&key, &version_id).await?;
                    emit(format!("RMV {key} {version_id}"));
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
            "usage: workload DATA_DIR SEED OPERATIONS CONCURRENCY",
        )
    };
    let [dir, seed, operations, concurrency] = args.as_slice() else {
        return Err(usage());
    };
    let number = |s: &String| s.parse::<u64>().map_err(|_| usage());
    let (seed, operations, concurrency) = (number(seed)?, number(operations)?, number(concurrency)?);
    let store = Store::open(&Config::embedded(dir)).await?.with_actor("workload");
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
