//! Pseudo-random test data, and files of it.

use std::fs::File;
use std::io::{Read, Write};
use std::path::Path;

use anyhow::{Context, Result};

const CHUNK: usize = 1 << 20;

/// A xorshift64 generator: cheap, and good enough that content neither
/// compresses nor deduplicates.
pub struct XorShift(u64);

impl XorShift {
    /// A generator whose stream is determined by `seed`; distinct seeds give distinct streams.
    pub fn new(seed: u64) -> XorShift {
        // splitmix64 spreads nearby seeds apart; xorshift needs a non-zero state.
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        XorShift((z ^ (z >> 31)) | 1)
    }

    fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// Fill `buf` with the next bytes of the stream.
    pub fn fill(&mut self, buf: &mut [u8]) {
        for word in buf.chunks_mut(8) {
            let bytes = self.next_u64().to_le_bytes();
            word.copy_from_slice(&bytes[..word.len()]);
        }
    }

    /// The next `len` bytes of the stream.
    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        let mut buf = vec![0; len];
        self.fill(&mut buf);
        buf
    }
}

/// Write `size` pseudo-random bytes to a new file at `path` and fsync it.
pub fn write_random_file(path: &Path, size: u64, seed: u64) -> Result<()> {
    let mut file = File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    let mut rng = XorShift::new(seed);
    let mut buf = vec![0; CHUNK];
    let mut left = size;
    while left > 0 {
        let n = left.min(CHUNK as u64) as usize;
        rng.fill(&mut buf[..n]);
        file.write_all(&buf[..n])
            .with_context(|| format!("cannot write {}", path.display()))?;
        left -= n as u64;
    }
    file.sync_all()
        .with_context(|| format!("cannot fsync {}", path.display()))
}

/// Whether the two files hold the same bytes, compared a chunk at a time.
pub fn files_identical(a: &Path, b: &Path) -> Result<bool> {
    let open = |p: &Path| File::open(p).with_context(|| format!("cannot open {}", p.display()));
    let (mut file_a, mut file_b) = (open(a)?, open(b)?);
    let len = |f: &File, p: &Path| {
        f.metadata()
            .map(|m| m.len())
            .with_context(|| format!("cannot stat {}", p.display()))
    };
    let size = len(&file_a, a)?;
    if size != len(&file_b, b)? {
        return Ok(false);
    }
    let (mut buf_a, mut buf_b) = (vec![0; CHUNK], vec![0; CHUNK]);
    let mut left = size;
    while left > 0 {
        let n = left.min(CHUNK as u64) as usize;
        file_a
            .read_exact(&mut buf_a[..n])
            .with_context(|| format!("cannot read {}", a.display()))?;
        file_b
            .read_exact(&mut buf_b[..n])
            .with_context(|| format!("cannot read {}", b.display()))?;
        if buf_a[..n] != buf_b[..n] {
            return Ok(false);
        }
        left -= n as u64;
    }
    Ok(true)
}

/// fsync a file, returning how long it took.
pub fn fsync(path: &Path) -> Result<std::time::Duration> {
    let start = std::time::Instant::now();
    File::open(path)
        .and_then(|f| f.sync_all())
        .with_context(|| format!("cannot fsync {}", path.display()))?;
    Ok(start.elapsed())
}

/// `path` as text, for a command's arguments.
pub fn path_str(path: &Path) -> Result<&str> {
    path.to_str().context("work path is not UTF-8")
}
