//! A resource taken in whole before it is stored, so that nothing of it is
//! stored unless all of it arrived: held in memory up to [`IN_MEMORY`]
//! bytes and in an unnamed temporary file beyond, hashed (SHA-256, CRC-32)
//! and counted on the way, and raw-deflated for a zip entry when asked and
//! when its first bytes show deflate pays (incompressible bytes are kept
//! as they are, as zip tools store what deflate would not shrink).

use std::io::{Seek, SeekFrom, Write};

use bytes::Bytes;
use flate2::Compression;
use flate2::write::DeflateEncoder;
use futures::StreamExt;

use crate::body::{self, ByteStream};
use crate::error::{Error, ErrorKind, Result};

/// Bytes a spool keeps in memory before it moves to a temporary file: the
/// memory of the resources being added at once stays bounded.
const IN_MEMORY: usize = 1 << 20;

/// Chunks of at least this size are hashed and deflated off the async threads.
const OFF_THREAD: usize = 64 << 10;

/// Bytes deflated before the spool decides whether deflate pays.
const SAMPLE: u64 = 64 << 10;

/// A resource's bytes, whole, with what a store and a zip need to know.
pub(crate) struct Spooled {
    /// SHA-256 of the bytes (as given, before any deflating).
    pub(crate) sha256: String,
    /// Their count.
    pub(crate) size: u64,
    /// CRC-32 of the bytes, for a zip entry.
    pub(crate) crc32: u32,
    /// The spool holds them raw-deflated.
    pub(crate) deflated: bool,
    /// Bytes the spool holds (the deflated size when deflated).
    pub(crate) stored_size: u64,
    data: Data,
}

enum Data {
    Memory(Vec<Bytes>),
    File(std::fs::File),
}

/// Hashes, counts and (optionally) deflates what passes through it.
struct Digester {
    sha256: aws_lc_rs::digest::Context,
    crc32: crc32fast::Hasher,
    size: u64,
    deflate: Option<DeflateEncoder<Vec<u8>>>,
}

impl Digester {
    /// Take in `chunk`; returns the bytes to keep (the chunk, or what the
    /// deflater let out).
    fn feed(&mut self, chunk: Bytes) -> Result<Bytes> {
        self.sha256.update(&chunk);
        self.crc32.update(&chunk);
        self.size += chunk.len() as u64;
        match &mut self.deflate {
            None => Ok(chunk),
            Some(encoder) => {
                encoder
                    .write_all(&chunk)
                    .map_err(|e| Error::io("deflating a resource", e))?;
                Ok(Bytes::from(std::mem::take(encoder.get_mut())))
            }
        }
    }

    /// Whether deflating pays, from what went in so far: it must have shrunk
    /// the bytes by a sixteenth at least. Flushes the deflater (the stream
    /// stays valid) and returns what it let out.
    fn deflate_pays(&mut self) -> Result<(bool, Bytes)> {
        let Some(encoder) = &mut self.deflate else {
            return Ok((false, Bytes::new()));
        };
        encoder.flush().map_err(|e| Error::io("deflating a resource", e))?;
        let pays = encoder.total_out() < encoder.total_in() - encoder.total_in() / 16;
        Ok((pays, Bytes::from(std::mem::take(encoder.get_mut()))))
    }

    /// Feed `chunk` off the async threads when it is large.
    async fn feed_async(mut self, chunk: Bytes) -> Result<(Digester, Bytes)> {
        if chunk.len() < OFF_THREAD {
            let kept = self.feed(chunk)?;
            return Ok((self, kept));
        }
        tokio::task::spawn_blocking(move || self.feed(chunk).map(|kept| (self, kept)))
            .await
            .map_err(|e| Error::new(ErrorKind::Io, format!("spooling a resource: {e}")))?
    }
}

impl Spooled {
    /// Take all of `body` in, deflating it at `deflate_level` when given.
    /// Fails, keeping nothing, when the body fails or ends early.
    pub(crate) async fn take(mut body: ByteStream, deflate_level: Option<u32>) -> Result<Spooled> {
        let mut digester = Digester {
            sha256: aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256),
            crc32: crc32fast::Hasher::new(),
            size: 0,
            deflate: deflate_level.map(|level| DeflateEncoder::new(Vec::new(), Compression::new(level))),
        };
        let mut holder = Holder::default();
        // The raw bytes until deflate has shown whether it pays.
        let mut sample: Option<Vec<Bytes>> = deflate_level.map(|_| Vec::new());
        while let Some(chunk) = body.next().await {
            let chunk = chunk?;
            if let Some(raw) = &mut sample {
                raw.push(chunk.clone());
            }
            let (next, kept) = digester.feed_async(chunk).await?;
            digester = next;
            holder.keep(kept)?;
            if digester.size >= SAMPLE
                && let Some(raw) = sample.take()
            {
                let (pays, flushed) = digester.deflate_pays()?;
                holder.keep(flushed)?;
                if !pays {
                    digester.deflate = None;
                    holder = Holder::default();
                    for chunk in raw {
                        holder.keep(chunk)?;
                    }
                }
            }
        }
        let deflated = digester.deflate.is_some();
        if let Some(encoder) = digester.deflate.take() {
            let tail = encoder.finish().map_err(|e| Error::io("deflating a resource", e))?;
            holder.keep(Bytes::from(tail))?;
        }
        Ok(Spooled {
            sha256: hex::encode(digester.sha256.finish()),
            size: digester.size,
            crc32: digester.crc32.finalize(),
            deflated,
            stored_size: holder.size,
            data: holder.into_data(),
        })
    }

    /// The bytes the spool holds, as a stream.
    pub(crate) fn into_stream(self) -> Result<ByteStream> {
        match self.data {
            Data::Memory(chunks) => Ok(futures::stream::iter(chunks.into_iter().map(Ok)).boxed()),
            Data::File(mut file) => {
                file.seek(SeekFrom::Start(0))
                    .map_err(|e| Error::io("reading a spooled resource", e))?;
                Ok(body::reader_stream(tokio::fs::File::from_std(file)))
            }
        }
    }

    /// The bytes the spool holds, written to a named temporary file (for a
    /// reader that needs a path).
    pub(crate) async fn into_named_file(self) -> Result<tempfile::NamedTempFile> {
        let file = tempfile::NamedTempFile::new().map_err(|e| Error::io("creating a temporary file", e))?;
        let mut out = tokio::fs::File::from_std(file.reopen().map_err(|e| Error::io("opening a temporary file", e))?);
        let mut stream = self.into_stream()?;
        while let Some(chunk) = stream.next().await {
            tokio::io::AsyncWriteExt::write_all(&mut out, &chunk?)
                .await
                .map_err(|e| Error::io("writing a temporary file", e))?;
        }
        tokio::io::AsyncWriteExt::flush(&mut out)
            .await
            .map_err(|e| Error::io("writing a temporary file", e))?;
        Ok(file)
    }
}

/// Where a spool's bytes go: memory, then a temporary file.
#[derive(Default)]
struct Holder {
    chunks: Vec<Bytes>,
    file: Option<std::fs::File>,
    size: u64,
}

impl Holder {
    fn keep(&mut self, bytes: Bytes) -> Result<()> {
        if bytes.is_empty() {
            return Ok(());
        }
        self.size += bytes.len() as u64;
        if self.file.is_none() && self.size <= IN_MEMORY as u64 {
            self.chunks.push(bytes);
            return Ok(());
        }
        let file = match &mut self.file {
            Some(file) => file,
            None => {
                let mut file = tempfile::tempfile().map_err(|e| Error::io("creating a temporary file", e))?;
                for held in self.chunks.drain(..) {
                    file.write_all(&held).map_err(|e| Error::io("spooling a resource", e))?;
                }
                self.file.insert(file)
            }
        };
        file.write_all(&bytes).map_err(|e| Error::io("spooling a resource", e))
    }

    fn into_data(self) -> Data {
        match self.file {
            Some(file) => Data::File(file),
            None => Data::Memory(self.chunks),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::TryStreamExt;
    use std::io::Read;

    fn body_of(chunks: Vec<Vec<u8>>) -> ByteStream {
        futures::stream::iter(chunks.into_iter().map(|c| Ok(Bytes::from(c)))).boxed()
    }

    async fn read_all(spooled: Spooled) -> Vec<u8> {
        let chunks: Vec<Bytes> = spooled.into_stream().unwrap().try_collect().await.unwrap();
        chunks.concat()
    }

    #[tokio::test]
    async fn small_and_large_resources_come_back_whole() {
        for size in [0usize, 10, IN_MEMORY, IN_MEMORY + 1, 3 * IN_MEMORY + 17] {
            let data: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
            let chunks = data.chunks(300_000).map(<[u8]>::to_vec).collect();
            let spooled = Spooled::take(body_of(chunks), None).await.unwrap();
            assert_eq!(spooled.size, size as u64);
            assert_eq!(spooled.stored_size, size as u64);
            assert_eq!(spooled.crc32, crc32fast::hash(&data));
            assert_eq!(
                spooled.sha256,
                hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &data))
            );
            assert_eq!(read_all(spooled).await, data, "size {size}");
        }
    }

    #[tokio::test]
    async fn a_deflated_spool_inflates_to_the_resource() {
        let data = b"<html>hello hello hello hello</html>\n".repeat(100_000);
        let spooled = Spooled::take(body_of(vec![data.clone()]), Some(1)).await.unwrap();
        assert!(spooled.deflated && spooled.stored_size < spooled.size / 10);
        assert_eq!(spooled.size, data.len() as u64);
        let stored = read_all(spooled).await;
        let mut inflated = Vec::new();
        flate2::read::DeflateDecoder::new(&stored[..])
            .read_to_end(&mut inflated)
            .unwrap();
        assert_eq!(inflated, data);
    }

    #[tokio::test]
    async fn incompressible_bytes_are_kept_as_they_are() {
        let data = coffer_pattern(3 * IN_MEMORY);
        let chunks = data.chunks(50_000).map(<[u8]>::to_vec).collect();
        let spooled = Spooled::take(body_of(chunks), Some(1)).await.unwrap();
        assert!(!spooled.deflated);
        assert_eq!(spooled.stored_size, data.len() as u64);
        assert_eq!(spooled.crc32, crc32fast::hash(&data));
        assert_eq!(read_all(spooled).await, data);
        // Text after an incompressible start is kept raw too: the first 64 KiB decide.
        let mut mixed = coffer_pattern(100_000);
        mixed.extend(b"text ".repeat(100_000));
        let chunks = mixed.chunks(50_000).map(<[u8]>::to_vec).collect();
        let spooled = Spooled::take(body_of(chunks), Some(1)).await.unwrap();
        assert!(!spooled.deflated);
        assert_eq!(read_all(spooled).await, mixed);
    }

    /// Bytes deflate cannot shrink.
    fn coffer_pattern(len: usize) -> Vec<u8> {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect()
    }

    #[tokio::test]
    async fn a_failing_body_keeps_nothing() {
        let body = futures::stream::iter(vec![
            Ok(Bytes::from_static(b"partial")),
            Err(Error::new(ErrorKind::Io, "connection reset")),
        ])
        .boxed();
        let err = Spooled::take(body, None).await.err().unwrap();
        assert_eq!(err.message(), "connection reset");
    }
}
