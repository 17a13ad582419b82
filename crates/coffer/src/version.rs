//! Version ids: time-ordered, unique across processes, sortable as strings.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The id of one immutable version of a key.
///
/// A UUIDv7 written as 32 lowercase hex digits: the first 48 bits are the
/// creation time in milliseconds, the rest a per-process monotonic counter and
/// random bits. So ids created later sort later as plain strings, ids made in one
/// process are strictly increasing, and two processes never make the same id.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct VersionId(String);

impl VersionId {
    /// A fresh id for a version created now.
    pub fn generate() -> Self {
        VersionId(uuid::Uuid::now_v7().simple().to_string())
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// When the id was made, from the millisecond timestamp it starts with.
    pub fn timestamp(&self) -> crate::time::Timestamp {
        let millis = i64::from_str_radix(&self.0[..12], 16).unwrap_or(0);
        crate::time::Timestamp::from_micros(millis.saturating_mul(1000))
    }
}

impl FromStr for VersionId {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let well_formed = s.len() == 32 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if !well_formed {
            return Err(Error::invalid_input(format!(
                "invalid version id {:?}: expected 32 lowercase hex digits",
                crate::key::printable(s)
            )));
        }
        Ok(VersionId(s.to_owned()))
    }
}

impl TryFrom<String> for VersionId {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        s.parse()
    }
}

impl From<VersionId> for String {
    fn from(v: VersionId) -> String {
        v.0
    }
}

impl fmt::Display for VersionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_sort_in_creation_order_and_are_unique() {
        let ids: Vec<VersionId> = (0..10_000).map(|_| VersionId::generate()).collect();
        let mut sorted = ids.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(ids, sorted);
    }

    #[test]
    fn parse_rejects_malformed_ids() {
        assert!("xyz".parse::<VersionId>().is_err());
        assert!("0195F0C2A3B47C3D8E9FA0B1C2D3E4F5".parse::<VersionId>().is_err());
        let id = VersionId::generate();
        assert_eq!(id.as_str().parse::<VersionId>().ok(), Some(id));
    }
}
