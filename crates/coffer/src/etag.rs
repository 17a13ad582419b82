//! ETags, as S3 gives them: an object of up to [`SINGLE_PART_LIMIT`] bytes
//! has the MD5 of its bytes (a single-part upload's ETag); a larger one the
//! ETag of a multipart upload in parts of [`PART`] bytes, the MD5 of the
//! parts' MD5s followed by `-` and the number of parts. 8 MiB is also the
//! AWS CLI's default part size, so a file uploaded either way has the same
//! ETag.
//!
//! MD5 is the slowest hash a put computes, so the parts of a large object
//! are hashed on threads of their own, several at a time, while SHA-256 runs
//! on another: the work spreads over every core instead of one.

use std::collections::VecDeque;

use bytes::Bytes;
use md5::{Digest, Md5};
use tokio::sync::mpsc;

/// The largest object whose ETag is the MD5 of its bytes.
pub(crate) const SINGLE_PART_LIMIT: u64 = 64 << 20;
/// The part size of a larger object's ETag.
pub(crate) const PART: u64 = 8 << 20;
/// Parts hashed at once; each holds its bytes until hashed.
const PARTS_IN_FLIGHT: usize = 3;

/// Compute the ETag of every chunk `receiver` yields, on blocking threads:
/// the ETag and the length.
pub(crate) fn spawn(mut receiver: mpsc::Receiver<Bytes>) -> tokio::task::JoinHandle<(String, u64)> {
    let runtime = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        let mut etag = Etag::new(runtime);
        while let Some(chunk) = receiver.blocking_recv() {
            etag.update(chunk);
        }
        etag.finish()
    })
}

/// An ETag being computed: the whole MD5 while it may still be wanted, and
/// the parts' MD5s.
struct Etag {
    runtime: tokio::runtime::Handle,
    size: u64,
    whole: Option<Md5>,
    part: Vec<Bytes>,
    part_len: u64,
    hashing: VecDeque<tokio::task::JoinHandle<[u8; 16]>>,
    parts: Vec<[u8; 16]>,
}

impl Etag {
    fn new(runtime: tokio::runtime::Handle) -> Etag {
        Etag {
            runtime,
            size: 0,
            whole: Some(Md5::new()),
            part: Vec::new(),
            part_len: 0,
            hashing: VecDeque::new(),
            parts: Vec::new(),
        }
    }

    fn update(&mut self, mut chunk: Bytes) {
        self.size += chunk.len() as u64;
        match &mut self.whole {
            Some(_) if self.size > SINGLE_PART_LIMIT => self.whole = None,
            Some(whole) => whole.update(&chunk),
            None => {}
        }
        while !chunk.is_empty() {
            let room = (PART - self.part_len) as usize;
            let piece = chunk.split_to(room.min(chunk.len()));
            self.part_len += piece.len() as u64;
            self.part.push(piece);
            if self.part_len == PART {
                self.hash_part();
            }
        }
    }

    /// Hand the part gathered so far to a thread of its own.
    fn hash_part(&mut self) {
        let pieces = std::mem::take(&mut self.part);
        self.part_len = 0;
        if self.hashing.len() == PARTS_IN_FLIGHT {
            self.collect_one();
        }
        self.hashing.push_back(self.runtime.spawn_blocking(move || {
            let mut md5 = Md5::new();
            for piece in &pieces {
                md5.update(piece);
            }
            md5.finalize().into()
        }));
    }

    fn collect_one(&mut self) {
        if let Some(hashing) = self.hashing.pop_front() {
            // A part's thread only fails if it panicked; its MD5 is then zeros,
            // an ETag no content has.
            self.parts.push(self.runtime.block_on(hashing).unwrap_or_default());
        }
    }

    fn finish(mut self) -> (String, u64) {
        if let Some(whole) = self.whole.take() {
            for hashing in self.hashing.drain(..) {
                hashing.abort();
            }
            return (hex::encode(whole.finalize()), self.size);
        }
        if self.part_len > 0 {
            self.hash_part();
        }
        while !self.hashing.is_empty() {
            self.collect_one();
        }
        (of_part_md5s(&self.parts), self.size)
    }
}

/// The ETag of parts with these MD5s: the MD5 of the MD5s, `-`, their number.
fn of_part_md5s(parts: &[[u8; 16]]) -> String {
    let mut of_parts = Md5::new();
    for part in parts {
        of_parts.update(part);
    }
    format!("{}-{}", hex::encode(of_parts.finalize()), parts.len())
}

/// The ETag of content made of parts of these lengths and MD5s (hex), in
/// order, when it can be told without reading the bytes: when the content is
/// larger than [`SINGLE_PART_LIMIT`] and cut as an ETag cuts it (every part
/// but the last of [`PART`] bytes), as the AWS CLI uploads by default.
pub(crate) fn of_parts<'a>(parts: impl ExactSizeIterator<Item = (u64, &'a str)>) -> Option<String> {
    let count = parts.len();
    let mut total = 0u64;
    let mut md5s = Vec::with_capacity(count);
    for (i, (size, md5)) in parts.enumerate() {
        let cut_as_ours = if i + 1 == count {
            size > 0 && size <= PART
        } else {
            size == PART
        };
        if !cut_as_ours {
            return None;
        }
        total += size;
        md5s.push(<[u8; 16]>::try_from(hex::decode(md5).ok()?).ok()?);
    }
    (total > SINGLE_PART_LIMIT).then(|| of_part_md5s(&md5s))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The ETag of `data` as the rules say, computed plainly.
    fn expected(data: &[u8]) -> String {
        if data.len() as u64 <= SINGLE_PART_LIMIT {
            return hex::encode(Md5::digest(data));
        }
        let mut of_parts = Md5::new();
        let parts = data.chunks(PART as usize);
        let count = parts.len();
        for part in parts {
            of_parts.update(Md5::digest(part));
        }
        format!("{}-{count}", hex::encode(of_parts.finalize()))
    }

    async fn etag(data: &[u8], chunk: usize) -> (String, u64) {
        let (sender, receiver) = mpsc::channel(4);
        let handle = spawn(receiver);
        for piece in data.chunks(chunk) {
            sender.send(Bytes::copy_from_slice(piece)).await.unwrap();
        }
        drop(sender);
        handle.await.unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn small_objects_have_their_md5_and_large_ones_the_multipart_etag() {
        let limit = SINGLE_PART_LIMIT as usize;
        for (size, chunk) in [
            (0, 1),
            (5, 2),
            (limit, 1 << 20),
            (limit + 1, 3 << 20),
            (100 << 20, 1_000_003),
        ] {
            let data: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
            let (tag, length) = etag(&data, chunk).await;
            assert_eq!(length, size as u64);
            assert_eq!(tag, expected(&data), "size {size}");
        }
        // The AWS CLI's multipart ETag of 100 MiB in 8 MiB parts has 13 parts.
        let data = vec![7u8; 100 << 20];
        assert!(etag(&data, 1 << 20).await.0.ends_with("-13"));
    }

    /// Parts' lengths and MD5s, cut at `cuts`.
    fn parts_of(data: &[u8], cuts: &[usize]) -> Vec<(u64, String)> {
        let mut parts = Vec::new();
        let mut start = 0;
        for &end in cuts.iter().chain([&data.len()]) {
            parts.push(((end - start) as u64, hex::encode(Md5::digest(&data[start..end]))));
            start = end;
        }
        parts
    }

    #[test]
    fn parts_cut_as_ours_tell_the_etag_and_others_do_not() {
        let part = PART as usize;
        let data: Vec<u8> = (0..9 * part + 1000).map(|i| (i % 253) as u8).collect();
        let told = |cuts: &[usize]| {
            let parts = parts_of(&data, cuts);
            of_parts(parts.iter().map(|(size, md5)| (*size, md5.as_str())))
        };
        let ours: Vec<usize> = (1..=9).map(|i| i * part).collect();
        assert_eq!(told(&ours), Some(expected(&data)));
        // Parts of another size, or a last part larger than ours, tell nothing.
        let fives: Vec<usize> = (1..=14).map(|i| i * (5 << 20)).collect();
        assert_eq!(told(&fives), None);
        assert_eq!(told(&ours[..8]), None);
        // Nor do parts of content small enough for a plain MD5.
        let small = &data[..3 * part];
        let parts = parts_of(small, &[part, 2 * part]);
        assert_eq!(of_parts(parts.iter().map(|(size, md5)| (*size, md5.as_str()))), None);
    }
}
