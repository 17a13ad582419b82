//! The test kit (cargo feature `testkit`): the conformance suites of the
//! ports, written once and run against every implementation, and the
//! helpers the tests share (test databases, services, a webhook receiver, a server of
//! fixed resources).
//!
//! The in-tree implementations call the suites from their tests, and a new
//! [`Backend`](crate::backend::Backend) or [`Catalog`](crate::catalog::Catalog)
//! should pass them unchanged: [`backend`] for a backend, [`catalog`] (which
//! runs [`search`], [`outbox`], [`plans`] and [`retention`] too) for a catalog, and
//! [`store`] for a whole store on a remote backend. Each check returns
//! `Err(description)` on the first broken promise.
//!
//! The default build leaves all of this out; a crate's tests turn it on with
//! `coffer = { ..., features = ["testkit"] }` among their dev-dependencies.

use crate::catalog::{BlobRef, NewVersion, Precondition, VersionContent};
use crate::error::Result;
use crate::key::{Metadata, ObjectKey};
use crate::time::Timestamp;
use crate::version::VersionId;

/// The result of one check: `Err` says what broke.
pub type Outcome = std::result::Result<(), String>;

macro_rules! check {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(format!($($msg)+));
        }
    };
}

pub mod backend;
pub mod catalog;
pub mod outbox;
pub mod plans;
pub mod retention;
pub mod search;
pub mod services;
pub mod store;

#[cfg(feature = "catalog-postgres")]
mod postgres;
#[cfg(feature = "catalog-postgres")]
pub use self::postgres::TestDatabase;
mod receiver;
pub use self::receiver::{ReceivedRequest, WebhookReceiver};
mod resources;
pub use self::resources::{Resource, ResourceBody, ResourceServer, pattern};

trait Context<T> {
    fn ctx(self, what: &str) -> std::result::Result<T, String>;
}

impl<T> Context<T> for Result<T> {
    fn ctx(self, what: &str) -> std::result::Result<T, String> {
        self.map_err(|e| format!("{what}: {e} ({:?})", e.kind()))
    }
}

fn unique(prefix: &str) -> String {
    format!("{prefix}/{}", VersionId::generate())
}

fn key(name: &str) -> std::result::Result<ObjectKey, String> {
    ObjectKey::new(name).map_err(|e| e.to_string())
}

fn blob_version(key: &ObjectKey, content: &str, path: Option<&str>) -> NewVersion {
    use sha2::Digest;
    let sha256 = hex::encode(sha2::Sha256::digest(content.as_bytes()));
    NewVersion {
        key: key.clone(),
        version_id: VersionId::generate(),
        content: VersionContent::Blob(BlobRef {
            md5: format!("md5-of-{content}"),
            size: content.len() as u64,
            new_path: path.map(str::to_owned),
            data_key: None,
            hot: None,
            sha256,
        }),
        content_type: Some("text/plain".into()),
        metadata: Metadata::from([("origin".to_string(), "conformance".to_string())]),
        created_at: Timestamp::now(),
        created_by: "conformance".into(),
        precondition: Precondition::None,
        action: "put",
        audit_detail: serde_json::Value::Null,
        tags: crate::Tags::new(),
        comments: Vec::new(),
        retention: None,
        legal_hold: false,
    }
}

fn marker(key: &ObjectKey) -> NewVersion {
    NewVersion {
        content: VersionContent::DeleteMarker,
        precondition: Precondition::MustExist,
        action: "delete",
        ..blob_version(key, "", None)
    }
}
