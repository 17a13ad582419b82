//! A web server on 127.0.0.1 that serves fixed resources, for the bundle
//! tests and benchmarks: HTTP/1.1 with keep-alive, each path answering
//! with its status, type and body; a body can be generated (any size,
//! without holding it), dribbled slowly, or cut off before its promised
//! length. Any other path answers 404.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

use super::receiver::read_request;
use crate::error::{Error, Result};

/// What a path answers with.
#[derive(Debug, Clone)]
pub struct Resource {
    /// The status code.
    pub status: u16,
    /// The `Content-Type` header, if any.
    pub content_type: Option<String>,
    /// The body.
    pub body: ResourceBody,
}

/// A resource's body.
#[derive(Debug, Clone)]
pub enum ResourceBody {
    /// These bytes.
    Bytes(Bytes),
    /// `len` bytes of [`pattern`], made as they are sent.
    Pattern(u64),
    /// These bytes in chunks of `chunk` bytes, `pause` apart.
    Slow {
        /// The whole body.
        bytes: Bytes,
        /// Bytes per write.
        chunk: usize,
        /// The wait between writes.
        pause: Duration,
    },
    /// The first `sent` bytes of a body whose `Content-Length` promises
    /// `promised`; then the connection closes.
    Truncated {
        /// What is sent.
        sent: Bytes,
        /// The length announced.
        promised: u64,
    },
}

impl Resource {
    /// A 200 answer with `content_type` and `bytes`.
    pub fn ok(content_type: &str, bytes: impl Into<Bytes>) -> Resource {
        Resource {
            status: 200,
            content_type: Some(content_type.to_owned()),
            body: ResourceBody::Bytes(bytes.into()),
        }
    }
}

/// Bytes `start..start + len` of the generated body: a sequence that does
/// not repeat within a resource and that deflate cannot shrink, made eight
/// bytes at a time (each word a mix of its index).
pub fn pattern(start: u64, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 16);
    let mut word = start / 8;
    while out.len() < len + (start % 8) as usize {
        let mut x = word.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        x ^= x >> 29;
        x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
        x ^= x >> 32;
        out.extend_from_slice(&x.to_le_bytes());
        word += 1;
    }
    out.drain(..(start % 8) as usize);
    out.truncate(len);
    out
}

/// The server; it stops when dropped.
#[derive(Debug)]
pub struct ResourceServer {
    address: SocketAddr,
    requests: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl ResourceServer {
    /// Serve `resources` (by path, `/a.html`) on a free port of 127.0.0.1.
    pub async fn start(resources: BTreeMap<String, Resource>) -> Result<ResourceServer> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| Error::io("cannot listen on 127.0.0.1", e))?;
        let address = listener
            .local_addr()
            .map_err(|e| Error::io("cannot read the listening address", e))?;
        let resources = Arc::new(resources);
        let requests = Arc::new(AtomicU64::new(0));
        let counter = requests.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, resources.clone(), counter.clone()));
            }
        });
        Ok(ResourceServer {
            address,
            requests,
            task,
        })
    }

    /// The URL of `path` (`/a.html`).
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// Requests answered so far.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::SeqCst)
    }
}

impl Drop for ResourceServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(stream: TcpStream, resources: Arc<BTreeMap<String, Resource>>, requests: Arc<AtomicU64>) {
    let _ = stream.set_nodelay(true);
    let mut reader = BufReader::new(stream);
    while let Ok(Some(request)) = read_request(&mut reader).await {
        requests.fetch_add(1, Ordering::SeqCst);
        let not_found = Resource {
            status: 404,
            content_type: Some("text/plain".to_owned()),
            body: ResourceBody::Bytes(Bytes::from_static(b"not found\n")),
        };
        let resource = resources.get(&request.path).unwrap_or(&not_found);
        if answer(reader.get_mut(), resource, request.method == "HEAD")
            .await
            .is_err()
        {
            return;
        }
    }
}

/// Write `resource` as the answer; an error (or a truncated body) ends the connection.
async fn answer(stream: &mut TcpStream, resource: &Resource, head_only: bool) -> std::io::Result<()> {
    let length = match &resource.body {
        ResourceBody::Bytes(bytes) | ResourceBody::Slow { bytes, .. } => bytes.len() as u64,
        ResourceBody::Pattern(len) => *len,
        ResourceBody::Truncated { promised, .. } => *promised,
    };
    let mut head = format!("HTTP/1.1 {} Answer\r\ncontent-length: {length}\r\n", resource.status);
    if let Some(content_type) = &resource.content_type {
        head.push_str(&format!("content-type: {content_type}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await?;
    if head_only {
        return Ok(());
    }
    match &resource.body {
        ResourceBody::Bytes(bytes) => stream.write_all(bytes).await,
        ResourceBody::Pattern(len) => {
            const CHUNK: u64 = 256 * 1024;
            let mut sent = 0;
            while sent < *len {
                let n = CHUNK.min(len - sent);
                stream.write_all(&pattern(sent, n as usize)).await?;
                sent += n;
            }
            Ok(())
        }
        ResourceBody::Slow { bytes, chunk, pause } => {
            for piece in bytes.chunks((*chunk).max(1)) {
                stream.write_all(piece).await?;
                stream.flush().await?;
                tokio::time::sleep(*pause).await;
            }
            Ok(())
        }
        ResourceBody::Truncated { sent, .. } => {
            stream.write_all(sent).await?;
            stream.flush().await?;
            Err(std::io::Error::other("the body is cut off here"))
        }
    }
}
