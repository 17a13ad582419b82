//! Verify figures: `Store::verify` of a store holding the large object,
//! against `sha256sum` over the same blob files on disk; and, for reference
//! only, `openssl dgst -sha256` (which uses the CPU's SHA instructions where
//! coreutils' `sha256sum` may not), when there is an `openssl`.

use std::ffi::OsStr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use coffer::{Store, VerifyOptions};
use tokio::runtime::Runtime;

use crate::limit;
use crate::measure::measure;
use crate::samples::Samples;
use crate::versions::{files_under, sync_all};

/// The verify figures.
#[derive(Debug, Clone)]
pub struct VerifyFigures {
    /// Blobs verified.
    pub blobs: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Each `Store::verify`.
    pub coffer: Samples,
    /// Each `sha256sum` of the blob files, process start included.
    pub peer: Samples,
    /// Each `openssl dgst -sha256` of them, when there is an `openssl`.
    pub openssl: Option<Samples>,
}

/// The sides of a verify run.
#[derive(Debug, Clone, Copy)]
enum Side {
    Coffer,
    Sha256sum,
    Openssl,
}

/// Verify the store in `data_dir` and `sha256sum` its blob files, `repeats`
/// times each, alternating which goes first; each must take less than `limit`.
pub fn run(
    runtime: &Runtime,
    store: &Store,
    data_dir: &Path,
    limit: Duration,
    repeats: usize,
) -> Result<VerifyFigures> {
    let blob_files = files_under(&data_dir.join("store").join("blobs"))?;
    let bytes: u64 = blob_files.iter().map(|(_, size)| size).sum();
    let blobs = blob_files.len() as u64;
    let files = blob_files.iter().map(|(path, _)| path.as_os_str());
    let sha256sum_args: Vec<&OsStr> = [OsStr::new("--")].into_iter().chain(files.clone()).collect();
    let openssl_args: Vec<&OsStr> = [OsStr::new("dgst"), OsStr::new("-sha256")]
        .into_iter()
        .chain(files)
        .collect();
    let mut sides = vec![Side::Coffer, Side::Sha256sum];
    if has_openssl() {
        sides.push(Side::Openssl);
    }

    let (mut coffer, mut peer, mut openssl) = (Samples::default(), Samples::default(), Samples::default());
    for repeat in 0..repeats {
        eprintln!("versions: verify, run {} of {repeats}", repeat + 1);
        // Each side goes first in turn.
        let mut order = sides.clone();
        order.rotate_left(repeat % sides.len());
        for side in order {
            sync_all()?;
            match side {
                Side::Coffer => coffer.push(runtime.block_on(limit::within(
                    limit,
                    "Store::verify",
                    timed_verify(store, blobs, bytes),
                ))?),
                Side::Sha256sum => peer.push(measure(OsStr::new("sha256sum"), &sha256sum_args, limit)?.wall),
                Side::Openssl => openssl.push(measure(OsStr::new("openssl"), &openssl_args, limit)?.wall),
            }
        }
    }
    Ok(VerifyFigures {
        blobs,
        bytes,
        coffer,
        peer,
        openssl: (openssl.count() > 0).then_some(openssl),
    })
}

/// Whether `openssl` runs here.
fn has_openssl() -> bool {
    Command::new("openssl")
        .arg("version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// Time a verify; it must be clean and hash exactly the `blobs` blob files of `bytes` bytes.
async fn timed_verify(store: &Store, blobs: u64, bytes: u64) -> Result<Duration> {
    let options = VerifyOptions {
        min_orphan_age: Duration::from_secs(3600),
        ..VerifyOptions::default()
    };
    let start = Instant::now();
    let report = store.verify(&options).await.context("Store::verify failed")?;
    let elapsed = start.elapsed();
    if !report.is_clean() {
        bail!("the verify report is not clean: {:#?}", report.problems);
    }
    if report.blobs != blobs || report.bytes != bytes {
        bail!(
            "verify hashed {} blobs of {} bytes; the blob directory holds {blobs} files of {bytes} bytes",
            report.blobs,
            report.bytes
        );
    }
    Ok(elapsed)
}
