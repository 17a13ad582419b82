//! The zip object of a bundle in the zip layout, streamed to the backend
//! while resources arrive: one put whose body is fed entry by entry, so
//! memory holds a few chunks whatever the bundle's size (on S3 the put is a
//! multipart upload), and nothing is committed until the zip is finished.

use bytes::Bytes;
use futures::StreamExt;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::spool::Spooled;
use super::zip_writer::{ZipEntry, ZipMethod, ZipWriter};
use crate::Store;
use crate::catalog::{ObjectVersion, ZipPlacement};
use crate::error::{Error, ErrorKind, Result};
use crate::key::Metadata;
use crate::store::PutOptions;
use crate::time::Timestamp;

/// Chunks in flight between the bundle and the put.
const IN_FLIGHT: usize = 8;

/// A zip object being written.
pub(crate) struct ZipStream {
    writer: ZipWriter,
    sender: mpsc::Sender<Result<Bytes>>,
    upload: JoinHandle<Result<ObjectVersion>>,
}

impl ZipStream {
    /// Start the put of `key`, with `metadata`, fed by this stream.
    pub(crate) fn open(store: &Store, key: String, metadata: Metadata) -> ZipStream {
        let (sender, receiver) = mpsc::channel::<Result<Bytes>>(IN_FLIGHT);
        let body = futures::stream::unfold(receiver, |mut receiver| async move {
            receiver.recv().await.map(|chunk| (chunk, receiver))
        })
        .boxed();
        let store = store.clone();
        let options = PutOptions {
            content_type: Some("application/zip".to_owned()),
            metadata,
            ..PutOptions::default()
        };
        let upload = tokio::spawn(async move { store.put_stream(&key, body, options).await });
        ZipStream {
            writer: ZipWriter::new(),
            sender,
            upload,
        }
    }

    /// Append `spooled` as the entry `name`; returns where its data lies.
    pub(crate) async fn add(&mut self, name: &str, spooled: Spooled, modified: Timestamp) -> Result<ZipPlacement> {
        let start = self.writer.offset();
        let placement = ZipPlacement {
            data_offset: 0,
            stored_size: spooled.stored_size,
            deflated: spooled.deflated,
        };
        let header = self.writer.entry_header(ZipEntry {
            name: name.to_owned(),
            method: match spooled.deflated {
                true => ZipMethod::Deflated,
                false => ZipMethod::Stored,
            },
            crc32: spooled.crc32,
            compressed_size: spooled.stored_size,
            uncompressed_size: spooled.size,
            modified_unix_secs: modified.as_micros().div_euclid(1_000_000),
        });
        let data_offset = start + header.len() as u64;
        self.send(Bytes::from(header)).await?;
        let mut data = spooled.into_stream()?;
        while let Some(chunk) = data.next().await {
            self.send(chunk?).await?;
        }
        Ok(ZipPlacement {
            data_offset,
            ..placement
        })
    }

    /// Write the central directory and commit the zip object.
    pub(crate) async fn finish(mut self) -> Result<ObjectVersion> {
        let tail = Bytes::from(self.writer.finish());
        self.send(tail).await?;
        drop(self.sender);
        self.upload.await.map_err(task_failed)?
    }

    /// Give the zip up: its put fails and commits nothing.
    pub(crate) async fn abort(self) {
        let _ = self
            .sender
            .send(Err(Error::new(ErrorKind::Conflict, "the bundle was aborted")))
            .await;
        drop(self.sender);
        let _ = self.upload.await;
    }

    /// Hand `bytes` to the put; when the put has failed, its error.
    async fn send(&mut self, bytes: Bytes) -> Result<()> {
        if bytes.is_empty() {
            return Ok(());
        }
        if self.sender.send(Ok(bytes)).await.is_ok() {
            return Ok(());
        }
        // The put ended early: it failed, and says why.
        let (sender, _) = mpsc::channel(1);
        self.sender = sender;
        let upload = std::mem::replace(&mut self.upload, tokio::spawn(async { Err(gone()) }));
        match upload.await.map_err(task_failed)? {
            Err(e) => Err(e),
            Ok(_) => Err(gone()),
        }
    }
}

fn gone() -> Error {
    Error::new(ErrorKind::Io, "the bundle's zip upload has stopped")
}

fn task_failed(e: tokio::task::JoinError) -> Error {
    Error::new(ErrorKind::Io, format!("the bundle's zip upload failed: {e}"))
}
