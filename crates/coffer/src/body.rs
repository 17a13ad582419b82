//! Bodies in motion: chunking readers into streams, and hashing while streaming.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use md5::{Digest, Md5};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::mpsc;

use crate::error::{Error, ErrorKind, Result};

/// A stream of bytes: a body going in or coming out.
pub type ByteStream = futures::stream::BoxStream<'static, Result<Bytes>>;

/// Size of the chunks a reader is cut into. With [`HASH_QUEUE`] this bounds the
/// memory one transfer holds, whatever the object's size.
pub(crate) const CHUNK_SIZE: usize = 1 << 20;
/// Chunks that may wait for the hasher before the transfer waits for it.
const HASH_QUEUE: usize = 4;
/// Bodies up to this size are hashed on the task that moves them: a hand-off
/// to a hashing thread would cost more than the hash.
const INLINE_HASH_LIMIT: u64 = 64 * 1024;

/// Turn any `AsyncRead` into a stream of chunks of up to 1 MiB.
pub fn reader_stream<R: AsyncRead + Send + Unpin + 'static>(reader: R) -> ByteStream {
    futures::stream::unfold(Some(reader), |state| async move {
        let mut reader = state?;
        let mut buf = BytesMut::with_capacity(CHUNK_SIZE);
        while buf.len() < CHUNK_SIZE {
            match reader.read_buf(&mut buf).await {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) => return Some((Err(Error::io("reading input failed", e)), None)),
            }
        }
        if buf.is_empty() {
            None
        } else {
            let full = buf.len() == CHUNK_SIZE;
            Some((Ok(buf.freeze()), full.then_some(reader)))
        }
    })
    .boxed()
}

/// Read the start of `body`, up to `limit` bytes. Returns what was read and,
/// if the body goes on past `limit`, the rest of it (`None` once it has ended).
pub(crate) async fn split_head(mut body: ByteStream, limit: usize) -> Result<(Vec<Bytes>, Option<ByteStream>)> {
    let mut head = Vec::new();
    let mut held = 0;
    while held <= limit {
        match body.next().await {
            Some(chunk) => {
                let chunk = chunk?;
                held += chunk.len();
                head.push(chunk);
            }
            None => return Ok((head, None)),
        }
    }
    Ok((head, Some(body)))
}

/// The hashes of bytes in memory; large ones are hashed off the async threads.
pub(crate) async fn digest(bytes: Bytes) -> Result<Digests> {
    let inline = bytes.len() as u64 <= INLINE_HASH_LIMIT;
    let hash = move || Digests {
        sha256: hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &bytes)),
        md5: Some(hex::encode(Md5::digest(&bytes))),
        size: bytes.len() as u64,
    };
    if inline {
        return Ok(hash());
    }
    tokio::task::spawn_blocking(hash)
        .await
        .map_err(|e| Error::new(ErrorKind::Io, format!("hashing failed: {e}")))
}

/// Hands a large local file's pages to the disk while it is still being
/// written, so the disk works while the rest arrives instead of all at the
/// closing fsync. Best effort: that closing fsync is what decides durability.
#[derive(Debug)]
pub struct WriteBehind {
    file: PathBuf,
    unflushed: u64,
    flushing: Option<tokio::task::JoinHandle<()>>,
}

impl WriteBehind {
    /// Flush after every this many bytes written.
    pub const INTERVAL: u64 = 64 << 20;

    /// Follow the writing of `file`.
    pub fn new(file: PathBuf) -> Self {
        WriteBehind {
            file,
            unflushed: 0,
            flushing: None,
        }
    }

    /// `bytes` more were written; start a flush if enough are waiting and none is running.
    pub fn wrote(&mut self, bytes: usize) {
        self.unflushed += bytes as u64;
        if self.unflushed >= Self::INTERVAL && self.flushing.as_ref().is_none_or(|f| f.is_finished()) {
            self.unflushed = 0;
            let file = self.file.clone();
            self.flushing = Some(tokio::task::spawn_blocking(move || {
                let _ = std::fs::File::open(file).and_then(|f| f.sync_data());
            }));
        }
    }

    /// Wait for a running flush, before the closing fsync.
    pub async fn finish(self) {
        if let Some(flush) = self.flushing {
            let _ = flush.await;
        }
    }
}

/// Write `body` to `path`, the one place that decides how a read lands in a
/// file, for every command that writes one. Returns the number of bytes written.
///
/// - `-` is standard output.
/// - A symbolic link is followed: its target is written, not the link.
/// - A regular file (or a path that does not exist yet) is written atomically:
///   to a hidden file beside it, fsynced, then renamed over it, so a failed or
///   interrupted read never leaves a partial file under `path`.
/// - Anything else that exists (a device such as `/dev/null`, a FIFO) is
///   written in place, streamed, and never replaced.
pub async fn save_to_file(path: &std::path::Path, body: ByteStream) -> Result<u64> {
    if path.as_os_str() == "-" {
        return stream_into(tokio::io::stdout(), body, "standard output").await;
    }
    // Opened through `path` itself, so that links only the kernel resolves
    // (`/dev/stdout` -> `/proc/self/fd/1` -> `pipe:[...]`) reach their file.
    if let Ok(metadata) = tokio::fs::metadata(path).await
        && !metadata.is_file()
        && !metadata.is_dir()
    {
        let file = tokio::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .await
            .map_err(|e| Error::io(&format!("cannot open {}", path.display()), e))?;
        return stream_into(file, body, &path.display().to_string()).await;
    }
    replace_file(&follow_links(path).await?, body).await
}

/// `path` with every symbolic link along its last component followed (the
/// target may not exist yet: a dangling link names the file to create).
async fn follow_links(path: &std::path::Path) -> Result<PathBuf> {
    let mut current = path.to_path_buf();
    for _ in 0..40 {
        match tokio::fs::symlink_metadata(&current).await {
            Ok(metadata) if metadata.file_type().is_symlink() => {
                let target = tokio::fs::read_link(&current)
                    .await
                    .map_err(|e| Error::io(&format!("cannot read the link {}", current.display()), e))?;
                current = match current.parent() {
                    Some(parent) if target.is_relative() => parent.join(target),
                    _ => target,
                };
            }
            _ => return Ok(current),
        }
    }
    Err(Error::invalid_input(format!(
        "{} is a chain of too many symbolic links",
        path.display()
    )))
}

/// Stream `body` into an open writer, in place (standard output, a device, a FIFO).
async fn stream_into<W: tokio::io::AsyncWrite + Unpin>(mut writer: W, mut body: ByteStream, name: &str) -> Result<u64> {
    use tokio::io::AsyncWriteExt;
    let failed = |e| Error::io(&format!("writing to {name}"), e);
    let mut length = 0;
    while let Some(chunk) = body.next().await {
        let chunk = chunk?;
        writer.write_all(&chunk).await.map_err(failed)?;
        length += chunk.len() as u64;
    }
    writer.flush().await.map_err(failed)?;
    Ok(length)
}

/// Write `body` to a hidden file beside `path`, fsync it, and only then move
/// it to `path`.
async fn replace_file(path: &std::path::Path, mut body: ByteStream) -> Result<u64> {
    use tokio::io::AsyncWriteExt;
    let name = path
        .file_name()
        .ok_or_else(|| Error::invalid_input(format!("{} names no file", path.display())))?;
    let partial = path.with_file_name(format!(".{}.coffer-partial", name.to_string_lossy()));
    let written: Result<u64> = async {
        let failed = |what: &str, e| Error::io(&format!("{what} {}", partial.display()), e);
        let mut file = tokio::fs::File::create(&partial)
            .await
            .map_err(|e| failed("cannot create", e))?;
        let mut write_behind = WriteBehind::new(partial.clone());
        let mut length = 0;
        while let Some(chunk) = body.next().await {
            let chunk = chunk?;
            file.write_all(&chunk).await.map_err(|e| failed("writing", e))?;
            write_behind.wrote(chunk.len());
            length += chunk.len() as u64;
        }
        write_behind.finish().await;
        file.sync_all().await.map_err(|e| failed("writing", e))?;
        tokio::fs::rename(&partial, path)
            .await
            .map_err(|e| Error::io(&format!("cannot move the download to {}", path.display()), e))?;
        Ok(length)
    }
    .await;
    if written.is_err() {
        let _ = tokio::fs::remove_file(&partial).await;
    }
    written
}

/// Bytes already in memory as a body.
pub(crate) fn once(bytes: Bytes) -> ByteStream {
    futures::stream::once(async move { Ok(bytes) }).boxed()
}

/// The hashes and length of a body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Digests {
    pub sha256: String,
    /// Present when asked for: the S3-style ETag (see [`crate::etag`]).
    pub md5: Option<String>,
    pub size: u64,
}

/// Hashes chunks on blocking threads, so hashing overlaps the I/O of the
/// chunks that follow instead of adding to it. SHA-256 and the ETag run on
/// threads of their own (a large object's ETag on several): on a large
/// upload MD5 is the slower, and together on one thread they would be
/// slower than the disk.
pub(crate) struct BackgroundHasher {
    senders: Vec<mpsc::Sender<Bytes>>,
    sha256: tokio::task::JoinHandle<(String, u64)>,
    etag: Option<EtagSource>,
}

/// An ETag told by whoever knows it (the parts of a multipart upload) by
/// the time the body has ended; dropped untold if they could not tell it.
pub(crate) type EtagLater = tokio::sync::oneshot::Receiver<String>;

enum EtagSource {
    Computed(tokio::task::JoinHandle<(String, u64)>),
    Told(EtagLater),
}

/// SHA-256 of every chunk from `receiver`, on a blocking thread, with aws-lc
/// (already linked for TLS): its assembly uses AVX2 where the CPU has no SHA
/// extensions, about twice as fast as the portable code of the `sha2` crate there.
fn spawn_sha256(mut receiver: mpsc::Receiver<Bytes>) -> tokio::task::JoinHandle<(String, u64)> {
    tokio::task::spawn_blocking(move || {
        let mut hash = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
        let mut size = 0u64;
        while let Some(chunk) = receiver.blocking_recv() {
            hash.update(&chunk);
            size += chunk.len() as u64;
        }
        (hex::encode(hash.finish()), size)
    })
}

impl BackgroundHasher {
    pub fn spawn(with_md5: bool) -> Self {
        let (sha_sender, sha_receiver) = mpsc::channel::<Bytes>(HASH_QUEUE);
        let mut senders = vec![sha_sender];
        let etag = with_md5.then(|| {
            let (md5_sender, md5_receiver) = mpsc::channel::<Bytes>(HASH_QUEUE);
            senders.push(md5_sender);
            EtagSource::Computed(crate::etag::spawn(md5_receiver))
        });
        BackgroundHasher {
            senders,
            sha256: spawn_sha256(sha_receiver),
            etag,
        }
    }

    /// SHA-256 only: the ETag is `told`, not computed.
    pub fn spawn_told(told: EtagLater) -> Self {
        let mut hasher = Self::spawn(false);
        hasher.etag = Some(EtagSource::Told(told));
        hasher
    }

    /// Pass `body` through, feeding every chunk to the hasher on the way.
    pub fn tap(&self, body: ByteStream) -> ByteStream {
        let senders = self.senders.clone();
        body.then(move |chunk| {
            let senders = senders.clone();
            async move {
                if let Ok(bytes) = &chunk {
                    for sender in &senders {
                        // A hasher only stops early if its thread died; `finish` reports that.
                        let _ = sender.send(bytes.clone()).await;
                    }
                }
                chunk
            }
        })
        .boxed()
    }

    /// The hashes of the whole of `body`, read to its end (MD5 too with `with_md5`).
    pub async fn digest_all(body: ByteStream, with_md5: bool) -> Result<Digests> {
        let hasher = BackgroundHasher::spawn(with_md5);
        let mut body = hasher.tap(body);
        while body.next().await.transpose()?.is_some() {}
        drop(body);
        hasher.finish().await
    }

    /// Wait for the hashes of everything tapped so far.
    pub async fn finish(self) -> Result<Digests> {
        drop(self.senders);
        let failed = |e: tokio::task::JoinError| Error::new(ErrorKind::Io, format!("hashing failed: {e}"));
        let (sha256, size) = self.sha256.await.map_err(failed)?;
        let md5 = match self.etag {
            Some(EtagSource::Computed(handle)) => Some(handle.await.map_err(failed)?.0),
            Some(EtagSource::Told(told)) => Some(
                told.await
                    .map_err(|_| Error::new(ErrorKind::Io, "the ETag of the upload was not told"))?,
            ),
            None => None,
        };
        Ok(Digests { sha256, md5, size })
    }
}

/// The same bytes in chunks of at least `target` bytes (the last may be
/// shorter). HTTP bodies arrive in frames of a few KiB; each chunk costs a
/// hand-off to the hashing threads, so remote reads are gathered first.
pub(crate) fn coalesce(body: ByteStream, target: usize) -> ByteStream {
    futures::stream::unfold(Some((body, BytesMut::new())), move |state| async move {
        let (mut body, mut held) = state?;
        loop {
            match body.next().await {
                Some(Ok(chunk)) if held.is_empty() && chunk.len() >= target => {
                    return Some((Ok(chunk), Some((body, held))));
                }
                Some(Ok(chunk)) => {
                    held.extend_from_slice(&chunk);
                    if held.len() >= target {
                        let full = std::mem::replace(&mut held, BytesMut::with_capacity(target)).freeze();
                        return Some((Ok(full), Some((body, held))));
                    }
                }
                Some(Err(e)) => return Some((Err(e), None)),
                None if held.is_empty() => return None,
                None => return Some((Ok(held.freeze()), None)),
            }
        }
    })
    .boxed()
}

/// The hashes of a body, once it has been read to its end.
type DigestsLater = futures::future::BoxFuture<'static, Result<Digests>>;

/// Pass `body` through, hashing it (SHA-256) on the way, on the task that
/// moves it; the future answers once the body has ended.
fn sha256_inline(body: ByteStream) -> (ByteStream, DigestsLater) {
    let state = Arc::new(std::sync::Mutex::new(Some((
        aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256),
        0u64,
    ))));
    let tapped = {
        let state = state.clone();
        body.inspect(move |chunk| {
            if let (Ok(bytes), Ok(mut state)) = (chunk, state.lock())
                && let Some((hash, size)) = state.as_mut()
            {
                hash.update(bytes);
                *size += bytes.len() as u64;
            }
        })
        .boxed()
    };
    let digests = Box::pin(async move {
        let taken = state.lock().ok().and_then(|mut state| state.take());
        let (hash, size) = taken.ok_or_else(|| Error::new(ErrorKind::Io, "hashing failed"))?;
        Ok(Digests {
            sha256: hex::encode(hash.finish()),
            md5: None,
            size,
        })
    });
    (tapped, digests)
}

/// Pass a stored blob's bytes through, and end with an `IntegrityMismatch`
/// error instead of a clean end if their SHA-256 or length is not the recorded one.
pub(crate) fn verify_stream(body: ByteStream, expected_sha256: String, expected_size: u64, what: String) -> ByteStream {
    let (tapped, digests) = if expected_size <= INLINE_HASH_LIMIT {
        sha256_inline(body)
    } else {
        let hasher = BackgroundHasher::spawn(false);
        let tapped = hasher.tap(body);
        let digests: DigestsLater = Box::pin(hasher.finish());
        (tapped, digests)
    };
    end_with_check(tapped, move || async move {
        let digests = digests.await?;
        if digests.size != expected_size {
            return Err(Error::new(
                ErrorKind::IntegrityMismatch,
                format!(
                    "{what}: stored blob has {} bytes, expected {expected_size}",
                    digests.size
                ),
            ));
        }
        if digests.sha256 != expected_sha256 {
            return Err(Error::new(
                ErrorKind::IntegrityMismatch,
                format!(
                    "{what}: stored blob's SHA-256 is {}, expected {expected_sha256}",
                    digests.sha256
                ),
            ));
        }
        Ok(())
    })
}

/// Pass bytes through and fail if fewer or more than `expected` arrive (for ranged reads).
pub(crate) fn check_length(body: ByteStream, expected: u64, what: String) -> ByteStream {
    let seen = Arc::new(AtomicU64::new(0));
    let counter = seen.clone();
    let counted = body
        .inspect(move |chunk| {
            if let Ok(bytes) = chunk {
                counter.fetch_add(bytes.len() as u64, Ordering::Relaxed);
            }
        })
        .boxed();
    end_with_check(counted, move || async move {
        let total = seen.load(Ordering::Relaxed);
        if total == expected {
            Ok(())
        } else {
            Err(Error::new(
                ErrorKind::IntegrityMismatch,
                format!("{what}: read {total} bytes, expected {expected}"),
            ))
        }
    })
}

/// Pass `body` through; once it ends cleanly, run `check` and end with its error, if any.
fn end_with_check<F, Fut>(body: ByteStream, check: F) -> ByteStream
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = Result<()>> + Send + 'static,
{
    enum State<F> {
        Streaming(ByteStream, F),
        Done,
    }
    futures::stream::unfold(State::Streaming(body, check), |state| async move {
        let State::Streaming(mut body, check) = state else {
            return None;
        };
        match body.next().await {
            Some(Ok(bytes)) => Some((Ok(bytes), State::Streaming(body, check))),
            Some(Err(e)) => Some((Err(e), State::Done)),
            None => {
                // The body may hold the hasher's sender: drop it so the hasher can finish.
                drop(body);
                check().await.err().map(|e| (Err(e), State::Done))
            }
        }
    })
    .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sha256_hex(data: &[u8]) -> String {
        hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data))
    }

    /// Read a verified body of `stored` bytes that should be `recorded`.
    async fn read_verified(stored: Vec<u8>, recorded: &[u8]) -> Result<Vec<u8>> {
        let chunks: Vec<Result<Bytes>> = stored.chunks(1000).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
        let body = futures::stream::iter(chunks).boxed();
        let mut verified = verify_stream(body, sha256_hex(recorded), recorded.len() as u64, "k".into());
        let mut read = Vec::new();
        while let Some(chunk) = verified.next().await {
            read.extend_from_slice(&chunk?);
        }
        Ok(read)
    }

    #[tokio::test]
    async fn small_and_large_reads_are_verified_alike() {
        // 4 KiB is hashed inline, 1 MiB on the hashing threads.
        for size in [4096, 1 << 20] {
            let sound: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
            assert_eq!(read_verified(sound.clone(), &sound).await.unwrap(), sound);

            let mut flipped = sound.clone();
            flipped[size / 2] ^= 1;
            let err = read_verified(flipped, &sound).await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::IntegrityMismatch, "{size}: {err}");
            assert!(err.to_string().contains("SHA-256"), "{err}");

            let err = read_verified(sound[..size - 1].to_vec(), &sound).await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::IntegrityMismatch, "{size}: {err}");
            assert!(err.to_string().contains("bytes"), "{err}");
        }
    }
}
