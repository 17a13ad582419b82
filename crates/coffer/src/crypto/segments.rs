//! The encrypted blob format: age's STREAM construction over AES-256-GCM.
//!
//! ```text
//! header   "coffer-e1" 0x00 0x00 0x00 0x00 0x00 0x00 0x00 | key id (16 bytes)     32 bytes
//! segment  AES-256-GCM(data key, nonce, aad = header, 64 KiB of plaintext) | tag   65,552 bytes
//! ...
//! last     the same over the rest (0 to 64 KiB), its nonce marked final
//! ```
//! As in age (<https://age-encryption.org/v1>, "payload"), the nonce of
//! segment `i` is `i` as an 11-byte big-endian counter followed by one byte,
//! `0x01` for the last segment and `0x00` for every other: segments cannot
//! be reordered (the counter), dropped from the end or added after it (the
//! final flag), or taken from another blob (each blob has its own random
//! data key, and its key id is in every segment's associated data). An
//! empty blob is one empty final segment. Age uses ChaCha20-Poly1305; coffer
//! uses AES-256-GCM, which the CPUs it runs on do in hardware (see the
//! README's figures).
//!
//! A segment's place in the ciphertext follows from its index alone, so a
//! ranged read fetches and opens only the segments the range touches.

use std::ops::Range;

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use bytes::{Bytes, BytesMut};
use futures::StreamExt;

use super::DataKey;
use crate::body::ByteStream;
use crate::error::{Error, ErrorKind, Result};

/// Plaintext bytes per segment.
pub(crate) const SEGMENT: u64 = 64 * 1024;
/// The authentication tag each segment carries.
const TAG: u64 = 16;
/// Ciphertext bytes of a full segment.
const SEALED_SEGMENT: u64 = SEGMENT + TAG;
const MAGIC: &[u8; 16] = b"coffer-e1\0\0\0\0\0\0\0";
/// The header: the format's magic and the data key's id.
pub(crate) const HEADER: u64 = 32;
/// Sealed segments gathered into one chunk of the output, so that writes
/// stay large.
const SEGMENTS_PER_CHUNK: u64 = 16;

/// How many segments `size` bytes of plaintext make (at least one).
fn segments(size: u64) -> u64 {
    size.div_ceil(SEGMENT).max(1)
}

/// The length of the encrypted form of `size` bytes of plaintext.
pub(crate) fn sealed_size(size: u64) -> u64 {
    HEADER + size + segments(size) * TAG
}

/// The length of `size` bytes of content as stored: sealed or as they are.
pub(crate) fn stored_size(sealed: bool, size: u64) -> u64 {
    match sealed {
        true => sealed_size(size),
        false => size,
    }
}

/// The header of a blob sealed with `key`.
fn header(key: &DataKey) -> [u8; HEADER as usize] {
    let mut header = [0u8; HEADER as usize];
    header[..16].copy_from_slice(MAGIC);
    header[16..].copy_from_slice(&key.id);
    header
}

/// Whether stored bytes starting with `head` are a sealed blob (by its magic).
pub(crate) fn is_sealed(head: &[u8]) -> bool {
    head.starts_with(MAGIC)
}

/// Whether the blob at `path` on `backend` is sealed with the data key `key`
/// names (its header says so).
pub(crate) async fn sealed_with(
    backend: &dyn crate::backend::Backend,
    path: &str,
    key: &super::BlobKey,
) -> Result<bool> {
    let Ok(id) = uuid::Uuid::parse_str(&key.id) else {
        return Ok(false);
    };
    let head = crate::backend::read_range(backend, path, 0..HEADER).await?;
    Ok(head.len() == HEADER as usize && is_sealed(&head) && head[16..] == id.as_bytes()[..])
}

fn nonce(index: u64, last: bool) -> Nonce {
    let mut nonce = [0u8; 12];
    nonce[3..11].copy_from_slice(&index.to_be_bytes());
    nonce[11] = u8::from(last);
    Nonce::assume_unique_for_key(nonce)
}

fn cipher(key: &DataKey) -> Result<LessSafeKey> {
    UnboundKey::new(&AES_256_GCM, key.secret())
        .map(LessSafeKey::new)
        .map_err(|_| Error::new(ErrorKind::Catalog, "a data key has the wrong length"))
}

/// Encrypt `body` with `key`: the header, then its segments, as they come.
/// Holds at most one input chunk and one segment beyond it in memory.
pub(crate) fn seal_stream(key: &DataKey, body: ByteStream) -> Result<ByteStream> {
    struct Sealing {
        body: ByteStream,
        cipher: LessSafeKey,
        aad: [u8; HEADER as usize],
        pending: BytesMut,
        index: u64,
        ended: bool,
        header_sent: bool,
    }
    let state = Sealing {
        body,
        cipher: cipher(key)?,
        aad: header(key),
        pending: BytesMut::new(),
        index: 0,
        ended: false,
        header_sent: false,
    };
    Ok(futures::stream::try_unfold(Some(state), |state| async move {
        let Some(mut s) = state else {
            return Ok(None);
        };
        if !s.header_sent {
            s.header_sent = true;
            return Ok(Some((Bytes::copy_from_slice(&s.aad), Some(s))));
        }
        loop {
            // A segment is sealed once a byte after it has arrived (or the
            // body ended): only then is it known whether it is the last. The
            // last holds 1 to 64 KiB, or nothing when the whole body is empty.
            let ready = ((s.pending.len() as u64).saturating_sub(1) / SEGMENT).min(SEGMENTS_PER_CHUNK);
            if ready > 0 {
                let mut out = Vec::with_capacity((ready * SEALED_SEGMENT) as usize);
                for _ in 0..ready {
                    let segment = s.pending.split_to(SEGMENT as usize);
                    seal_into(&s.cipher, &s.aad, s.index, false, &segment, &mut out)?;
                    s.index += 1;
                }
                return Ok(Some((Bytes::from(out), Some(s))));
            }
            if s.ended {
                let mut out = Vec::with_capacity(s.pending.len() + TAG as usize);
                seal_into(&s.cipher, &s.aad, s.index, true, &s.pending, &mut out)?;
                return Ok(Some((Bytes::from(out), None)));
            }
            match s.body.next().await {
                Some(chunk) => s.pending.extend_from_slice(&chunk?),
                None => s.ended = true,
            }
        }
    })
    .boxed())
}

/// Encrypt `plain` (held in memory) with `key`: the header and its segments.
pub(crate) fn seal_bytes(key: &DataKey, plain: &[u8]) -> Result<Vec<u8>> {
    let cipher = cipher(key)?;
    let aad = header(key);
    let mut out = Vec::with_capacity(sealed_size(plain.len() as u64) as usize);
    out.extend_from_slice(&aad);
    let count = segments(plain.len() as u64) as usize;
    for (index, chunk) in plain.chunks(SEGMENT as usize).enumerate() {
        seal_into(&cipher, &aad, index as u64, index + 1 == count, chunk, &mut out)?;
    }
    if plain.is_empty() {
        seal_into(&cipher, &aad, 0, true, &[], &mut out)?;
    }
    Ok(out)
}

/// Decrypt a whole sealed blob held in memory (`size` bytes of plaintext).
pub(crate) fn open_bytes(key: &DataKey, sealed: &[u8], size: u64) -> Result<Vec<u8>> {
    let cipher = cipher(key)?;
    let aad = header(key);
    let damaged = || Error::new(ErrorKind::IntegrityMismatch, "sealed bytes fail authentication");
    if sealed.len() as u64 != sealed_size(size) || sealed[..HEADER as usize] != aad[..] {
        return Err(damaged());
    }
    let count = segments(size);
    let mut out = Vec::with_capacity(size as usize);
    for (index, chunk) in sealed[HEADER as usize..].chunks(SEALED_SEGMENT as usize).enumerate() {
        let mut chunk = chunk.to_vec();
        let last = index as u64 + 1 == count;
        let plain = cipher
            .open_in_place(nonce(index as u64, last), Aad::from(&aad[..]), &mut chunk)
            .map_err(|_| damaged())?;
        out.extend_from_slice(plain);
    }
    Ok(out)
}

fn seal_into(cipher: &LessSafeKey, aad: &[u8], index: u64, last: bool, plain: &[u8], out: &mut Vec<u8>) -> Result<()> {
    let start = out.len();
    out.extend_from_slice(plain);
    let tag = cipher
        .seal_in_place_separate_tag(nonce(index, last), Aad::from(aad), &mut out[start..])
        .map_err(|_| Error::new(ErrorKind::Io, "encrypting a segment failed"))?;
    out.extend_from_slice(tag.as_ref());
    Ok(())
}

/// Which stored bytes a read of `range` of `size` bytes of plaintext needs,
/// and how to open them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SealedRange {
    /// The ciphertext to fetch.
    pub stored: Range<u64>,
    /// Whether it starts with the header (a read from the start).
    with_header: bool,
    /// The index of its first segment.
    first: u64,
    /// The index of the blob's last segment.
    last: u64,
    /// Plaintext bytes to drop from the front of its first segment.
    skip: u64,
    /// Plaintext bytes to pass on.
    take: u64,
}

impl SealedRange {
    /// The stored bytes for `range` (within `0..size`) of a blob of `size`
    /// bytes of plaintext; `None` for the whole blob.
    pub(crate) fn of(size: u64, range: Option<Range<u64>>) -> SealedRange {
        let last = segments(size) - 1;
        let total = sealed_size(size);
        match range {
            None => SealedRange {
                stored: 0..total,
                with_header: true,
                first: 0,
                last,
                skip: 0,
                take: size,
            },
            Some(range) => {
                let first = range.start / SEGMENT;
                let end_segment = range.end.saturating_sub(1).max(range.start) / SEGMENT;
                let start = HEADER + first * SEALED_SEGMENT;
                let end = (HEADER + (end_segment + 1) * SEALED_SEGMENT).min(total);
                SealedRange {
                    stored: start..end,
                    with_header: false,
                    first,
                    last,
                    skip: range.start - first * SEGMENT,
                    take: range.end - range.start,
                }
            }
        }
    }
}

/// A sealed stream being opened.
struct Opening {
    body: ByteStream,
    cipher: LessSafeKey,
    aad: [u8; HEADER as usize],
    range: SealedRange,
    pending: BytesMut,
    index: u64,
    ended: bool,
    what: String,
}

/// Open the next `count` segments (`bytes` of `pending`) in place, close the
/// gaps their tags leave, and keep the part of the range they hold.
fn open_batch(s: &mut Opening, count: u64, bytes: usize) -> Result<Bytes> {
    let mut batch = s.pending.split_to(bytes);
    let mut written = 0;
    for i in 0..count {
        let index = s.index + i;
        let start = (i * SEALED_SEGMENT) as usize;
        let end = (start + SEALED_SEGMENT as usize).min(bytes);
        let plain = s
            .cipher
            .open_in_place(nonce(index, index == s.range.last), Aad::from(&s.aad[..]), &mut batch[start..end])
            .map_err(|_| {
                Error::new(
                    ErrorKind::IntegrityMismatch,
                    format!(
                        "{}: its stored content fails authentication at segment {index} (tampered, truncated or swapped)",
                        s.what
                    ),
                )
            })?
            .len();
        batch.copy_within(start..start + plain, written);
        written += plain;
    }
    s.index += count;
    batch.truncate(written);
    let skip = s.range.skip.min(written as u64) as usize;
    s.range.skip -= skip as u64;
    let give = ((written - skip) as u64).min(s.range.take) as usize;
    s.range.take -= give as u64;
    Ok(batch.freeze().slice(skip..skip + give))
}

/// Decrypt `stored` (the bytes `range.stored` of a blob sealed with `key`)
/// into the plaintext `range` asked for. A segment that fails to open, a
/// missing or foreign header, and bytes missing or left over each end the
/// stream with an `IntegrityMismatch` error naming `what`.
pub(crate) fn open_stream(key: &DataKey, range: SealedRange, stored: ByteStream, what: String) -> Result<ByteStream> {
    let state = Opening {
        body: stored,
        cipher: cipher(key)?,
        aad: header(key),
        index: range.first,
        range,
        pending: BytesMut::new(),
        ended: false,
        what,
    };
    let damaged = |what: &str, problem: String| {
        Error::new(
            ErrorKind::IntegrityMismatch,
            format!("{what}: its stored content {problem}"),
        )
    };
    Ok(futures::stream::try_unfold(Some(state), move |state| async move {
        let Some(mut s) = state else {
            return Ok(None);
        };
        loop {
            if s.range.with_header && s.pending.len() as u64 >= HEADER {
                let head = s.pending.split_to(HEADER as usize);
                if head[..] != s.aad[..] {
                    let problem = match head[..16] == MAGIC[..] {
                        true => "belongs to another blob (its key id differs)".to_owned(),
                        false => "is not coffer-encrypted".to_owned(),
                    };
                    return Err(damaged(&s.what, problem));
                }
                s.range.with_header = false;
            }
            if !s.range.with_header {
                // The segments that can be opened now, up to a chunk's worth:
                // full ones, and the last once the stored bytes have ended.
                let (mut count, mut bytes) = (0u64, 0usize);
                while count < SEGMENTS_PER_CHUNK && s.index + count <= s.range.last {
                    let available = s.pending.len() - bytes;
                    if s.index + count == s.range.last {
                        if s.ended {
                            bytes += available;
                            count += 1;
                        }
                        break;
                    }
                    if available < SEALED_SEGMENT as usize {
                        break;
                    }
                    bytes += SEALED_SEGMENT as usize;
                    count += 1;
                }
                if count > 0 {
                    let out = open_batch(&mut s, count, bytes)?;
                    let done = s.range.take == 0;
                    return Ok(Some((out, (!done).then_some(s))));
                }
            }
            if s.ended {
                return Err(damaged(&s.what, "is truncated".to_owned()));
            }
            match s.body.next().await {
                Some(chunk) => s.pending.extend_from_slice(&chunk?),
                None => s.ended = true,
            }
        }
    })
    .filter(|chunk| std::future::ready(!matches!(chunk, Ok(bytes) if bytes.is_empty())))
    .boxed())
}

#[cfg(test)]
mod tests {
    use futures::TryStreamExt;

    use super::*;

    async fn sealed(key: &DataKey, plain: &[u8], chunk: usize) -> Vec<u8> {
        let chunks: Vec<Result<Bytes>> = plain
            .chunks(chunk.max(1))
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        let body = futures::stream::iter(chunks).boxed();
        let out: Vec<Bytes> = seal_stream(key, body).unwrap().try_collect().await.unwrap();
        out.concat()
    }

    async fn opened(key: &DataKey, stored: &[u8], size: u64, range: Option<Range<u64>>) -> Result<Vec<u8>> {
        let sealed = SealedRange::of(size, range);
        let part = stored
            .get(sealed.stored.start as usize..(sealed.stored.end as usize).min(stored.len()))
            .unwrap_or_default()
            .to_vec();
        let body = crate::body::once(Bytes::from(part));
        let out: Vec<Bytes> = open_stream(key, sealed, body, "test".into())?.try_collect().await?;
        Ok(out.concat())
    }

    fn plain(size: usize) -> Vec<u8> {
        (0..size).map(|i| (i * 7 % 251) as u8).collect()
    }

    #[tokio::test]
    async fn every_size_round_trips_whole_and_in_ranges() {
        let key = DataKey::generate().unwrap();
        let s = SEGMENT as usize;
        for size in [0, 1, s - 1, s, s + 1, 2 * s, 3 * s + 5] {
            let data = plain(size);
            let stored = sealed(&key, &data, 10_000).await;
            assert_eq!(stored.len() as u64, sealed_size(size as u64), "size {size}");
            assert_eq!(stored, seal_bytes(&key, &data).unwrap(), "size {size}");
            assert_eq!(opened(&key, &stored, size as u64, None).await.unwrap(), data);
            for (a, b) in [(0, 1), (s - 1, s + 1), (s, s + 1), (1, size), (size / 2, size)] {
                if a < b && b <= size {
                    let got = opened(&key, &stored, size as u64, Some(a as u64..b as u64))
                        .await
                        .unwrap();
                    assert_eq!(got, data[a..b], "size {size} range {a}..{b}");
                }
            }
        }
    }

    /// The cipher is AES-256-GCM as specified: test cases 13 and 14 of
    /// McGrew and Viega, "The Galois/Counter Mode of Operation (GCM)"
    /// (the NIST submission), zero key and zero nonce.
    #[test]
    fn segments_use_standard_aes_256_gcm() {
        let key = DataKey::from_parts("01a24ea3-2a88-766f-9322-0fd5572a8c7d", &[0u8; 32]).unwrap();
        let cipher = cipher(&key).unwrap();
        let mut empty = Vec::new();
        cipher
            .seal_in_place_append_tag(nonce(0, false), Aad::empty(), &mut empty)
            .unwrap();
        assert_eq!(hex::encode(&empty), "530f8afbc74536b9a963b4f1c4cb738b");
        let mut block = vec![0u8; 16];
        cipher
            .seal_in_place_append_tag(nonce(0, false), Aad::empty(), &mut block)
            .unwrap();
        assert_eq!(
            hex::encode(&block),
            "cea7403d4d606b6e074ec5d3baf39d18d0d1c8a799996bf0265b98b5d48ab919"
        );
    }

    #[tokio::test]
    async fn tampering_truncation_reordering_and_another_key_fail() {
        let key = DataKey::generate().unwrap();
        let size = 3 * SEGMENT as usize + 10;
        let data = plain(size);
        let stored = sealed(&key, &data, 1 << 20).await;
        let fails = |result: Result<Vec<u8>>| {
            let err = result.expect_err("must fail");
            assert_eq!(err.kind(), ErrorKind::IntegrityMismatch, "{}", err.message());
        };
        let mut flipped = stored.clone();
        flipped[HEADER as usize + 100] ^= 1;
        fails(opened(&key, &flipped, size as u64, None).await);
        let truncated = &stored[..stored.len() - SEALED_SEGMENT as usize];
        fails(opened(&key, truncated, size as u64, None).await);
        // The first two segments swapped.
        let (h, a, b) = (HEADER as usize, SEALED_SEGMENT as usize, 2 * SEALED_SEGMENT as usize);
        let mut swapped = stored[..h].to_vec();
        swapped.extend_from_slice(&stored[h + a..h + b]);
        swapped.extend_from_slice(&stored[h..h + a]);
        swapped.extend_from_slice(&stored[h + b..]);
        fails(opened(&key, &swapped, size as u64, None).await);
        fails(opened(&key, &swapped, size as u64, Some(0..10)).await);
        // The final segment dropped: the one before is not marked final.
        let whole_segments = &stored[..h + 3 * SEALED_SEGMENT as usize];
        fails(opened(&key, whole_segments, 3 * SEGMENT, None).await);
        let other = DataKey::generate().unwrap();
        fails(opened(&other, &stored, size as u64, None).await);
        fails(opened(&other, &stored, size as u64, Some(5..6)).await);
    }
}
