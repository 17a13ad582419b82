//! What the encryption tests share: content that carries a plaintext
//! marker, and putting and getting it through the binary.

#![allow(dead_code)] // each encryption test file uses its part

use std::path::Path;

use super::{coffer_in, json, ok};

/// Found nowhere on a store's backend, whatever was put.
pub const MARKER: &[u8] = b"PLAINTEXT-MARKER-7f3a";
/// The plaintext bytes of one sealed segment.
pub const SEGMENT: usize = 64 * 1024;

/// Content of `size` bytes that starts with the marker when it has room.
pub fn content(size: usize, seed: u8) -> Vec<u8> {
    let mut data: Vec<u8> = (0..size)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect();
    let n = MARKER.len().min(size);
    data[..n].copy_from_slice(&MARKER[..n]);
    data
}

/// Put `data` as `key` from a file, with `env` set; the version id.
pub fn put_file(d: &Path, key: &str, data: &[u8], env: &[(&str, &str)]) -> String {
    let file = d.join("upload.bin");
    std::fs::write(&file, data).unwrap();
    json(coffer_in(
        d,
        &["put", key, "-f", file.to_str().unwrap(), "--json"],
        None,
        env,
    ))["version_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The bytes `coffer get ARGS` writes, with `env` set.
pub fn get(d: &Path, args: &[&str], env: &[(&str, &str)]) -> Vec<u8> {
    let out = d.join("download.bin");
    let mut all = vec!["get"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["-o", out.to_str().unwrap()]);
    ok(coffer_in(d, &all, None, env));
    std::fs::read(out).unwrap()
}
