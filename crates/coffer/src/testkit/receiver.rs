//! A webhook receiver on 127.0.0.1 for tests and benchmarks: a small
//! HTTP/1.1 server (keep-alive, `Content-Length` bodies) that records what
//! it accepts, drops duplicates by `webhook-id` as a careful receiver would,
//! and can be told to fail.

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

use crate::error::{Error, ErrorKind, Result};

/// One request the receiver accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedRequest {
    /// `POST` or `PUT`.
    pub method: String,
    /// The request path.
    pub path: String,
    /// Headers, names in lower case.
    pub headers: BTreeMap<String, String>,
    /// The body.
    pub body: String,
}

#[derive(Debug, Default)]
struct State {
    /// Answer 500 to this many more requests.
    failures_left: u64,
    /// Answer 500 to every request.
    always_fail: bool,
    /// Wait this long before answering.
    delay: std::time::Duration,
    requests: u64,
    accepted: Vec<ReceivedRequest>,
    seen_ids: HashSet<String>,
    duplicates: u64,
}

/// The receiver; it stops when dropped.
#[derive(Debug)]
pub struct WebhookReceiver {
    address: SocketAddr,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl WebhookReceiver {
    /// Listen on a free port of 127.0.0.1.
    pub async fn start() -> Result<Self> {
        let (listener, address) = listen_on_loopback().await?;
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, shared.clone()));
            }
        });
        Ok(WebhookReceiver { address, state, task })
    }

    /// The URL to send to.
    pub fn url(&self) -> String {
        format!("http://{}/hook", self.address)
    }

    /// Answer 500 to the next `count` requests.
    pub fn fail_next(&self, count: u64) {
        self.with(|state| state.failures_left = count);
    }

    /// Answer 500 to every request from now on (or stop doing so).
    pub fn fail_always(&self, fail: bool) {
        self.with(|state| state.always_fail = fail);
    }

    /// Wait this long before answering each request (a slow receiver).
    pub fn delay(&self, delay: std::time::Duration) {
        self.with(|state| state.delay = delay);
    }

    /// Requests received, failed ones included.
    pub fn requests(&self) -> u64 {
        self.with(|state| state.requests)
    }

    /// Accepted requests, the first of each `webhook-id` only, in arrival order.
    pub fn accepted(&self) -> Vec<ReceivedRequest> {
        self.with(|state| state.accepted.clone())
    }

    /// How many distinct `webhook-id`s were accepted.
    pub fn accepted_count(&self) -> usize {
        self.with(|state| state.accepted.len())
    }

    /// Accepted requests whose `webhook-id` had been accepted before (dropped).
    pub fn duplicates(&self) -> u64 {
        self.with(|state| state.duplicates)
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        let mut state = self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&mut state)
    }
}

impl Drop for WebhookReceiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(stream: TcpStream, state: Arc<Mutex<State>>) {
    let _ = stream.set_nodelay(true);
    let mut reader = BufReader::new(stream);
    while let Ok(Some(request)) = read_request(&mut reader).await {
        let delay = state.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).delay;
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        let status = {
            let mut state = state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            state.requests += 1;
            if state.always_fail || state.failures_left > 0 {
                state.failures_left = state.failures_left.saturating_sub(1);
                "500 Internal Server Error"
            } else {
                let id = request.headers.get("webhook-id").cloned().unwrap_or_default();
                if state.seen_ids.insert(id) {
                    state.accepted.push(request);
                } else {
                    state.duplicates += 1;
                }
                "200 OK"
            }
        };
        let answer = format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\n\r\n");
        if reader.get_mut().write_all(answer.as_bytes()).await.is_err() {
            return;
        }
    }
}

/// A listener on a free port of 127.0.0.1, and its address.
pub(super) async fn listen_on_loopback() -> Result<(TcpListener, SocketAddr)> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| Error::io("cannot listen on 127.0.0.1", e))?;
    let address = listener
        .local_addr()
        .map_err(|e| Error::io("cannot read the listening address", e))?;
    Ok((listener, address))
}

pub(super) async fn read_request(reader: &mut BufReader<TcpStream>) -> Result<Option<ReceivedRequest>> {
    let bad = |what: &str| Error::new(ErrorKind::InvalidInput, format!("bad request: {what}"));
    let mut line = String::new();
    if reader
        .read_line(&mut line)
        .await
        .map_err(|e| Error::io("reading a request", e))?
        == 0
    {
        return Ok(None);
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().ok_or_else(|| bad("no method"))?.to_owned();
    let path = parts.next().ok_or_else(|| bad("no path"))?.to_owned();
    let mut headers = BTreeMap::new();
    loop {
        line.clear();
        reader
            .read_line(&mut line)
            .await
            .map_err(|e| Error::io("reading a header", e))?;
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        let (name, value) = header.split_once(':').ok_or_else(|| bad("header without ':'"))?;
        headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_owned());
    }
    let length: usize = headers
        .get("content-length")
        .map(|n| n.parse().map_err(|_| bad("content-length")))
        .transpose()?
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader
        .read_exact(&mut body)
        .await
        .map_err(|e| Error::io("reading a body", e))?;
    Ok(Some(ReceivedRequest {
        method,
        path,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_slow_receiver_answers_after_its_delay_and_drops_duplicates() {
        let receiver = WebhookReceiver::start().await.unwrap();
        receiver.delay(std::time::Duration::from_millis(50));
        let client = reqwest::Client::new();
        let started = std::time::Instant::now();
        for id in ["a", "b", "a"] {
            let answer = client
                .post(receiver.url())
                .header("webhook-id", id)
                .body("{}")
                .send()
                .await
                .unwrap();
            assert!(answer.status().is_success());
        }
        assert!(
            started.elapsed() >= std::time::Duration::from_millis(150),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(
            (receiver.requests(), receiver.accepted_count(), receiver.duplicates()),
            (3, 2, 1)
        );
    }
}
