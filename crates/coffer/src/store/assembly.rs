//! Multipart uploads assembled while their parts arrive.
//!
//! Completing an upload streams its parts, in order, through one put:
//! every byte is read back, hashed and written once more. Clients send
//! parts about in order (the AWS CLI, rclone and boto3 start them in order,
//! several at once), so the process that takes them starts that put at the
//! first part and feeds it each part as soon as every part before it is
//! there. Completing then feeds only what is left, and the second write
//! has mostly happened while the client was still sending.
//!
//! It is only a head start. The put's body ends only when a completion
//! begins with exactly the parts fed, in order; anything else (a fed part
//! replaced, another order, an abort, a completion by another caller or in
//! another process, half an hour gone by) abandons it, the put fails and
//! removes what it staged, and completion streams the parts from the start
//! as before.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use tokio::sync::{mpsc, oneshot};

use super::Store;
use super::multipart::{told_etag, version_options};
use crate::body::ByteStream;
use crate::catalog::{MultipartUpload, ObjectVersion, UploadedPart};
use crate::error::{Error, ErrorKind, Result};
use crate::etag;

/// An assembly is abandoned this long after it started: well before
/// `verify` takes its staged bytes for an orphan (an hour).
const MAX_AGE: Duration = Duration::from_secs(30 * 60);
/// Chunks that may wait for the put before feeding waits for it.
const FEED_QUEUE: usize = 4;

/// The uploads this process is assembling, by upload id.
#[derive(Default)]
pub(super) struct Assemblies {
    running: Mutex<HashMap<String, Assembly>>,
}

impl std::fmt::Debug for Assemblies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let count = self.running.lock().map(|running| running.len()).unwrap_or_default();
        f.debug_struct("Assemblies").field("uploads", &count).finish()
    }
}

enum Assembly {
    Running(mpsc::UnboundedSender<Command>),
    /// Given up: completion streams the parts from the start.
    Abandoned,
}

enum Command {
    Part(UploadedPart),
    Complete {
        chosen: Vec<UploadedPart>,
        actor: String,
        reply: oneshot::Sender<Option<Result<ObjectVersion>>>,
    },
    Abandon(oneshot::Sender<()>),
}

/// What feeds the put's body: bytes, then the end once a completion matched.
enum Feed {
    Bytes(Bytes),
    End,
}

impl Assemblies {
    /// A part of `upload` was recorded: feed it (starting the assembly with the upload's first part seen here).
    pub(super) fn part_uploaded(&self, store: &Store, upload: &MultipartUpload, part: UploadedPart) {
        let Ok(mut running) = self.running.lock() else {
            return;
        };
        let assembly = running.entry(upload.upload_id.clone()).or_insert_with(|| {
            let (sender, commands) = mpsc::unbounded_channel();
            // Parts of an ETag's part size (the AWS CLI's): their MD5s will tell the ETag.
            let told = part.size == etag::PART;
            tokio::spawn(assemble(store.clone(), upload.clone(), told, commands));
            Assembly::Running(sender)
        });
        if let Assembly::Running(sender) = assembly
            && sender.send(Command::Part(part)).is_err()
        {
            *assembly = Assembly::Abandoned;
        }
    }

    /// Complete `upload_id` with `chosen` by `actor`: the version, if the
    /// assembly could finish it; `None` when completion must stream the parts itself.
    pub(super) async fn complete(
        &self,
        upload_id: &str,
        chosen: &[UploadedPart],
        actor: &str,
    ) -> Option<Result<ObjectVersion>> {
        let assembly = self.running.lock().ok()?.remove(upload_id)?;
        let Assembly::Running(sender) = assembly else {
            return None;
        };
        let (reply, answer) = oneshot::channel();
        sender
            .send(Command::Complete {
                chosen: chosen.to_vec(),
                actor: actor.to_owned(),
                reply,
            })
            .ok()?;
        answer.await.ok().flatten()
    }

    /// The upload ends without being completed: once this returns, what the
    /// assembly staged is gone.
    pub(super) async fn abandon(&self, upload_id: &str) {
        let assembly = self
            .running
            .lock()
            .ok()
            .and_then(|mut running| running.remove(upload_id));
        if let Some(Assembly::Running(sender)) = assembly {
            let (done, stopped) = oneshot::channel();
            if sender.send(Command::Abandon(done)).is_ok() {
                let _ = stopped.await;
            }
        }
    }

    fn give_up(&self, upload_id: &str) {
        if let Ok(mut running) = self.running.lock()
            && let Some(assembly) = running.get_mut(upload_id)
        {
            *assembly = Assembly::Abandoned;
        }
    }
}

/// The assembly of one upload: its put, fed part after part; with `told`,
/// the put's ETag is told by the parts at completion instead of computed.
async fn assemble(store: Store, upload: MultipartUpload, told: bool, mut commands: mpsc::UnboundedReceiver<Command>) {
    let (feed, fed_body) = mpsc::channel(FEED_QUEUE);
    let (mut tell_etag, etag_later) = match told {
        true => {
            let (tell, etag) = oneshot::channel::<String>();
            (Some(tell), Some(etag))
        }
        false => (None, None),
    };
    let put = {
        let store = store.clone();
        let key = upload.key.clone();
        let body = body_of(fed_body);
        let options = version_options(&upload);
        tokio::spawn(async move { store.put_stream_with_etag(&key, body, options, etag_later).await })
    };
    let deadline = tokio::time::Instant::now() + MAX_AGE;
    let mut fed: Vec<UploadedPart> = Vec::new();
    let mut waiting: BTreeMap<u32, UploadedPart> = BTreeMap::new();
    loop {
        let command = match tokio::time::timeout_at(deadline, commands.recv()).await {
            Ok(Some(command)) => command,
            Ok(None) | Err(_) => break,
        };
        match command {
            Command::Part(part) => {
                if fed.iter().any(|done| done.part_number == part.part_number) {
                    // A part already fed was replaced.
                    break;
                }
                waiting.insert(part.part_number, part);
                let next = fed.len() as u32 + 1;
                let mut ready = Vec::new();
                let mut number = next;
                while let Some(part) = waiting.remove(&number) {
                    ready.push(part);
                    number += 1;
                }
                if feed_parts(&store, &feed, &ready).await.is_err() {
                    break;
                }
                fed.extend(ready);
            }
            Command::Complete { chosen, actor, reply } => {
                let matches = actor == store.actor && begins_with(&chosen, &fed);
                let etag_told = match tell_etag.take() {
                    None => true,
                    Some(tell) => told_etag(&chosen).is_some_and(|etag| tell.send(etag).is_ok()),
                };
                let finished = match matches && etag_told {
                    true => finish(&store, feed, put, &chosen[fed.len()..]).await,
                    false => stop(feed, put).await,
                };
                let _ = reply.send(finished);
                return;
            }
            Command::Abandon(done) => {
                stop(feed, put).await;
                let _ = done.send(());
                return;
            }
        }
    }
    stop(feed, put).await;
    store.assemblies.give_up(&upload.upload_id);
}

/// End the put without its end: its body fails it, and it removes what it staged.
async fn stop(
    feed: mpsc::Sender<Feed>,
    put: tokio::task::JoinHandle<Result<ObjectVersion>>,
) -> Option<Result<ObjectVersion>> {
    drop(feed);
    let _ = put.await;
    None
}

/// Whether `chosen` begins with the very uploads of the parts `fed`.
fn begins_with(chosen: &[UploadedPart], fed: &[UploadedPart]) -> bool {
    chosen.len() >= fed.len()
        && chosen
            .iter()
            .zip(fed)
            .all(|(chosen, fed)| chosen.part_number == fed.part_number && chosen.path == fed.path)
}

/// Feed the rest of the parts and end the body: the put's version.
async fn finish(
    store: &Store,
    feed: mpsc::Sender<Feed>,
    put: tokio::task::JoinHandle<Result<ObjectVersion>>,
    rest: &[UploadedPart],
) -> Option<Result<ObjectVersion>> {
    if feed_parts(store, &feed, rest).await.is_err() || feed.send(Feed::End).await.is_err() {
        return stop(feed, put).await;
    }
    Some(
        put.await
            .unwrap_or_else(|e| Err(Error::new(ErrorKind::Io, format!("the upload's put failed: {e}")))),
    )
}

/// Read `parts` back from the backend, in order, into the put's body.
async fn feed_parts(store: &Store, feed: &mpsc::Sender<Feed>, parts: &[UploadedPart]) -> Result<()> {
    for part in parts {
        let mut stream = store.read_part(part).await?;
        while let Some(chunk) = stream.next().await {
            if feed.send(Feed::Bytes(chunk?)).await.is_err() {
                return Err(Error::new(ErrorKind::Io, "the upload's put stopped"));
            }
        }
    }
    Ok(())
}

/// The put's body: what is fed, ending cleanly only at [`Feed::End`].
fn body_of(fed: mpsc::Receiver<Feed>) -> ByteStream {
    futures::stream::unfold(Some(fed), |state| async move {
        let mut fed = state?;
        match fed.recv().await {
            Some(Feed::Bytes(bytes)) => Some((Ok(bytes), Some(fed))),
            Some(Feed::End) => None,
            None => Some((
                Err(Error::new(
                    ErrorKind::Conflict,
                    "the multipart upload was not completed as assembled",
                )),
                None,
            )),
        }
    })
    .boxed()
}
