//! Reading a bundle back: one resource (from its object, or from its place
//! in the bundle's zip), and exports in the users' file layout and as WARC.

use std::io::Write;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use flate2::{Decompress, FlushDecompress, Status};
use futures::StreamExt;
use tokio::io::AsyncWriteExt;

use super::{ByteRange, GetOptions, Store};
use crate::body::{self, ByteStream};
use crate::bundle::warc::{WarcResponse, WarcWriter};
use crate::bundle::{BundleResource, manifest_json, zip_key};
use crate::error::{Error, ErrorKind, Result};
use crate::version::VersionId;

/// Bytes one step of inflating hands on at most.
const INFLATE_PIECE: usize = 256 << 10;

/// What an export wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct BundleExport {
    /// Where: the bundle's directory, or the WARC file.
    pub path: PathBuf,
    /// Resources written.
    pub resources: u64,
    /// Their bytes.
    pub bytes: u64,
}

impl Store {
    /// The resource of bundle `bundle_id` whose URL or name is `which`
    /// (the first, by position, when several share a URL).
    pub async fn bundle_resource(&self, bundle_id: &str, which: &str) -> Result<BundleResource> {
        self.bundle_resources(bundle_id)
            .await?
            .into_iter()
            .find(|r| r.url == which || r.name == which)
            .ok_or_else(|| Error::not_found(format!("bundle {bundle_id} has no resource {which}")))
    }

    /// The bytes of `resource`, verified against its SHA-256 as they stream.
    pub async fn read_bundle_resource(&self, resource: &BundleResource) -> Result<ByteStream> {
        let what = format!("resource {} of bundle {}", resource.url, resource.bundle_id);
        if let (Some(key), Some(version)) = (&resource.key, &resource.version_id) {
            let options = GetOptions {
                version_id: Some(version.parse()?),
                ..GetOptions::default()
            };
            return Ok(self.get(key, options).await?.body);
        }
        let bundle = self.bundle_info(&resource.bundle_id).await?;
        let (Some(placement), Some(version)) = (resource.placement, bundle.version_id) else {
            return Err(Error::conflict(format!(
                "{what} is in the bundle's zip, which is written when the bundle is completed"
            )));
        };
        if placement.stored_size == 0 {
            return Ok(body::verify_stream(
                futures::stream::empty().boxed(),
                resource.sha256.clone(),
                resource.size,
                what,
            ));
        }
        let options = GetOptions {
            version_id: Some(version.parse::<VersionId>()?),
            range: Some(ByteRange::Inclusive {
                first: placement.data_offset,
                last: placement.data_offset + placement.stored_size - 1,
            }),
            ..GetOptions::default()
        };
        let stored = self
            .get(&zip_key(&self.bundles.prefix, &resource.bundle_id), options)
            .await?
            .body;
        let raw = match placement.deflated {
            true => inflate(stored),
            false => stored,
        };
        Ok(body::verify_stream(raw, resource.sha256.clone(), resource.size, what))
    }

    /// Write bundle `bundle_id` into `dir` the way the users' file storage
    /// lays it out: `bundle_<id>/` holding each resource as a file (an
    /// archive's entries in a folder of its name) with a `.meta` JSON file
    /// beside it, and `bundle.json`. The bundle's directory must not exist yet.
    pub async fn export_bundle(&self, bundle_id: &str, dir: &Path) -> Result<BundleExport> {
        let bundle = self.bundle_info(bundle_id).await?;
        let resources = self.catalog.bundle_resources(bundle_id).await?;
        let root = dir.join(format!("bundle_{bundle_id}"));
        if root.exists() {
            return Err(Error::conflict(format!("{} exists already", root.display())));
        }
        tokio::fs::create_dir_all(&root)
            .await
            .map_err(|e| Error::io(&format!("creating {}", root.display()), e))?;
        let mut export = BundleExport {
            path: root.clone(),
            ..BundleExport::default()
        };
        for resource in &resources {
            let path = root.join(&resource.name);
            if let Some(parent) = path.parent() {
                tokio::fs::create_dir_all(parent)
                    .await
                    .map_err(|e| Error::io(&format!("creating {}", parent.display()), e))?;
            }
            let mut file = tokio::fs::File::create(&path)
                .await
                .map_err(|e| Error::io(&format!("creating {}", path.display()), e))?;
            let mut data = self.read_bundle_resource(resource).await?;
            while let Some(chunk) = data.next().await {
                file.write_all(&chunk?)
                    .await
                    .map_err(|e| Error::io(&format!("writing {}", path.display()), e))?;
            }
            file.flush()
                .await
                .map_err(|e| Error::io(&format!("writing {}", path.display()), e))?;
            let meta = serde_json::json!({
                "bundle_id": bundle_id, "position": resource.position, "url": resource.url,
                "content_type": resource.content_type, "status_code": resource.status_code,
                "size": resource.size, "sha256": resource.sha256, "added_at": resource.added_at,
            });
            let meta_path = root.join(format!("{}.meta", resource.name));
            write_file(&meta_path, &serde_json::to_vec_pretty(&meta).unwrap_or_default()).await?;
            export.resources += 1;
            export.bytes += resource.size;
        }
        let manifest = manifest_json(&bundle, &resources, bundle.metadata.as_ref(), bundle.completed_at);
        write_file(&root.join("bundle.json"), &manifest).await?;
        Ok(export)
    }

    /// Write bundle `bundle_id` to `path` as a WARC 1.1 file (`.warc.gz`):
    /// a `warcinfo` record, then each resource as a `response` record with
    /// its URL, status, type and payload digest. Resources must have http(s)
    /// URLs. `path` must not exist yet.
    pub async fn export_bundle_warc(&self, bundle_id: &str, path: &Path) -> Result<BundleExport> {
        let bundle = self.bundle_info(bundle_id).await?;
        let resources = self.catalog.bundle_resources(bundle_id).await?;
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(|e| Error::io(&format!("creating {}", path.display()), e))?;
        let mut warc = WarcWriter::new(std::io::BufWriter::new(file));
        let primary = bundle.primary_url.clone().unwrap_or_default();
        let recipe = bundle.recipe_id.clone().unwrap_or_default();
        let mut fields = vec![("bundle-id", bundle_id), ("storage-key", bundle.storage_key.as_str())];
        if !primary.is_empty() {
            fields.push(("primary-url", &primary));
        }
        if !recipe.is_empty() {
            fields.push(("recipe-id", &recipe));
        }
        warc.warcinfo(bundle.created_at.as_micros(), &fields)?;
        let mut export = BundleExport {
            path: path.to_owned(),
            ..BundleExport::default()
        };
        for resource in &resources {
            let mut digest = [0u8; 32];
            hex::decode_to_slice(&resource.sha256, &mut digest)
                .map_err(|_| Error::new(ErrorKind::Catalog, format!("resource {}: corrupt hash", resource.url)))?;
            warc.begin_response(&WarcResponse {
                target_uri: &resource.url,
                date_micros: resource.added_at.as_micros(),
                status: resource.status_code,
                content_type: resource.content_type.as_deref(),
                payload_length: resource.size,
                payload_sha256: digest,
            })
            .map_err(|e| Error::new(e.kind(), format!("resource {}: {}", resource.url, e.message())))?;
            let mut data = self.read_bundle_resource(resource).await?;
            while let Some(chunk) = data.next().await {
                warc.write_payload(&chunk?)?;
            }
            warc.end_record()?;
            export.resources += 1;
            export.bytes += resource.size;
        }
        let mut out = warc.finish()?;
        out.flush()
            .map_err(|e| Error::io(&format!("writing {}", path.display()), e))?;
        Ok(export)
    }
}

async fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    tokio::fs::write(path, bytes)
        .await
        .map_err(|e| Error::io(&format!("writing {}", path.display()), e))
}

/// Inflate raw-deflated `stored`, a piece of at most [`INFLATE_PIECE`]
/// bytes at a time, so memory stays bounded whatever the ratio.
fn inflate(stored: ByteStream) -> ByteStream {
    struct State {
        input: ByteStream,
        pending: Bytes,
        inflater: Decompress,
        ended: bool,
    }
    let state = State {
        input: stored,
        pending: Bytes::new(),
        inflater: Decompress::new(false),
        ended: false,
    };
    futures::stream::try_unfold(state, |mut state| async move {
        loop {
            if state.ended {
                return Ok(None);
            }
            if state.pending.is_empty() {
                match state.input.next().await {
                    Some(chunk) => state.pending = chunk?,
                    None => {
                        return Err(Error::new(
                            ErrorKind::IntegrityMismatch,
                            "a bundle's zip entry ends before its deflated data does",
                        ));
                    }
                }
            }
            let mut out = Vec::with_capacity(INFLATE_PIECE);
            let before = state.inflater.total_in();
            let status = state
                .inflater
                .decompress_vec(&state.pending, &mut out, FlushDecompress::None)
                .map_err(|e| Error::new(ErrorKind::IntegrityMismatch, format!("a bundle's zip entry: {e}")))?;
            let used = (state.inflater.total_in() - before) as usize;
            state.pending = state.pending.slice(used..);
            if status == Status::StreamEnd {
                state.ended = true;
            }
            if !out.is_empty() {
                return Ok(Some((Bytes::from(out), state)));
            }
        }
    })
    .boxed()
}
