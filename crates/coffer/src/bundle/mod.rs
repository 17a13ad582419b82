//! Bundles: the resources one fetch run brings together (a primary URL
//! and what it leads to), stored as one unit and completed once.
//!
//! The pipeline is the one the users' design draws: data source → unzip
//! decorator ([`unzip`]) → bundle layout → base store. A bundle is started
//! with [`Store::start_bundle`](crate::Store::start_bundle), which returns a
//! [`Bundle`] context; resources are added to it as async byte streams
//! (several at once), and [`Bundle::complete`] seals it: in one catalog
//! transaction the bundle is marked complete, its audit row is written and
//! its `bundle.completed` event goes into the outbox, and then the
//! completion callbacks registered in this process run
//! ([`Store::on_bundle_complete`](crate::Store::on_bundle_complete)).
//!
//! Two layouts:
//! - **directory** (the default on local disk and in memory): each resource
//!   is a coffer object under `<prefix>bundles/<id>/`, with its URL, status
//!   and bundle in its metadata;
//! - **zip** (the default on S3 and Azure): one object per bundle,
//!   `<prefix>bundles/<id>/resources.zip`, streamed to the backend while
//!   resources arrive, its manifest entry `bundle.json` last.
//!
//! Both layouts end with a `bundle.json` listing every resource.

use std::sync::atomic::{AtomicI64, Ordering};

use crate::time::Timestamp;

mod config;
mod context;
mod fetch;
mod naming;
mod spool;
pub(crate) mod unzip;
pub(crate) mod warc;
mod zip_stream;
mod zip_writer;

pub use self::config::{BundleConfig, Layout};
pub use self::context::Bundle;
pub use self::fetch::FetchOptions;
pub use self::unzip::UnzipLimits;
pub use crate::catalog::{BundleQuery, BundleRecord, BundleResource};

pub(crate) use self::context::{BundleCallbacks, manifest_json};
pub(crate) use self::naming::{bundle_prefix, zip_key};

/// What a bundle is started with.
#[derive(Debug, Clone, Default)]
pub struct BundleRef {
    /// The URL the bundle is fetched for.
    pub primary_url: Option<String>,
    /// The recipe fetching it: completion callbacks registered for it run.
    pub recipe_id: Option<String>,
    /// What the caller wants kept with the bundle (a JSON object of its own).
    pub meta: serde_json::Map<String, serde_json::Value>,
    /// The layout (`None`: the store's, see [`BundleConfig`]).
    pub layout: Option<Layout>,
    /// Expand gzip and zip resources (`None`: the store's setting).
    pub unzip: Option<bool>,
}

/// A fresh bundle id and its creation time. The id is a UUIDv7 (in its
/// usual hyphenated form) whose timestamp is the creation time to the
/// microsecond: milliseconds, then the sub-millisecond fraction in its 12
/// `rand_a` bits (as RFC 9562 allows), so ids sort as strings exactly as
/// their creation times do; its other 62 bits are random, so ids from
/// several processes never repeat. Within a process times strictly increase.
pub(crate) fn new_bundle_id() -> (String, Timestamp) {
    static LAST: AtomicI64 = AtomicI64::new(0);
    let now = Timestamp::now().as_micros();
    let micros = match LAST.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |last| Some(now.max(last + 1))) {
        Ok(last) | Err(last) => now.max(last + 1),
    };
    // 0..4096, strictly increasing with the microsecond.
    let fraction = u16::try_from(micros.rem_euclid(1000) * 4096 / 1000).unwrap_or(0);
    let mut bytes = [0u8; 10];
    if aws_lc_rs::rand::fill(&mut bytes).is_err() {
        fastrand::fill(&mut bytes);
    }
    bytes[..2].copy_from_slice(&fraction.to_be_bytes());
    let millis = u64::try_from(micros.div_euclid(1000)).unwrap_or(0);
    let id = uuid::Builder::from_unix_timestamp_millis(millis, &bytes).into_uuid();
    (id.hyphenated().to_string(), Timestamp::from_micros(micros))
}

/// Check a bundle id given by a caller: a UUID in hyphenated lowercase form.
pub(crate) fn check_bundle_id(id: &str) -> crate::Result<()> {
    let well_formed = id.len() == 36
        && id.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => matches!(b, b'0'..=b'9' | b'a'..=b'f'),
        });
    match well_formed {
        true => Ok(()),
        false => Err(crate::Error::invalid_input(format!(
            "invalid bundle id {:?}: expected a UUID like 0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",
            crate::key::printable(id)
        ))),
    }
}

/// What [`Store::recover_bundles`](crate::Store::recover_bundles) found and did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct RecoveryReport {
    /// Completed bundles whose callbacks ran now.
    pub callbacks_run: Vec<String>,
    /// Completed bundles whose callbacks failed again: (id, error).
    pub callbacks_failed: Vec<(String, String)>,
    /// Bundles left open (by a run that died, or one still going).
    pub open: Vec<BundleRecord>,
    /// Open bundles aborted because they were older than asked.
    pub aborted: Vec<String>,
    /// Events delivered to hooks by this recovery (announcements included).
    pub delivered: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_uuids_that_sort_by_creation() {
        let made: Vec<(String, Timestamp)> = (0..1000).map(|_| new_bundle_id()).collect();
        assert!(made.windows(2).all(|w| w[0].1 < w[1].1), "times strictly increase");
        let ids: Vec<String> = made.into_iter().map(|(id, _)| id).collect();
        let mut sorted = ids.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted, ids, "ids made later sort later and never repeat");
        for id in &ids {
            check_bundle_id(id).unwrap();
        }
        assert!(check_bundle_id("../etc").is_err());
        assert!(check_bundle_id(&ids[0].to_uppercase()).is_err());
    }
}
