//! Opening the backend a store's configuration describes.

use std::sync::Arc;

use crate::backend::{Backend, OpendalBackend};
use crate::config::Config;
use crate::error::Result;
use crate::settings::BackendConfig;

/// The backend `backend` describes (an fs root defaults to `<data_dir>/store`).
pub async fn open_backend(backend: &BackendConfig, config: &Config) -> Result<Arc<dyn Backend>> {
    Ok(match backend {
        #[cfg(feature = "backend-fs")]
        BackendConfig::Fs { root } => {
            let root = root.clone().unwrap_or_else(|| config.data_dir.join("store"));
            Arc::new(OpendalBackend::fs(&root)?)
        }
        #[cfg(feature = "backend-memory")]
        BackendConfig::Memory => Arc::new(OpendalBackend::memory()?),
        #[cfg(feature = "backend-s3")]
        BackendConfig::S3(s3) => Arc::new(OpendalBackend::s3_waiting(s3, config.backend_wait()).await?),
        #[cfg(feature = "backend-azblob")]
        BackendConfig::Azure(azure) => Arc::new(OpendalBackend::azure_waiting(azure, config.backend_wait()).await?),
        // Only a local kind this build leaves out gets here (the others have
        // no variant then), when no one named it: the default fs backend.
        #[allow(unreachable_patterns)]
        other => return Err(other.kind().not_built("this store's backend")),
    })
}
