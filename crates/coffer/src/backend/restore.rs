//! Archive restore: bringing an object in an archive class (S3 GLACIER or
//! DEEP_ARCHIVE, Azure's Archive tier) back to where it can be read, and
//! following how far that has got.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::time::Timestamp;

/// How fast (and at what price) an archived object comes back: S3's
/// retrieval tiers; Azure's rehydrate priorities (`expedited` is `High`,
/// the others `Standard`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RestoreTier {
    /// Minutes (S3), or Azure's high priority.
    Expedited,
    /// Hours: the default.
    #[default]
    Standard,
    /// The cheapest, within about a day (S3).
    Bulk,
}

impl RestoreTier {
    /// The tier's name, as the flag takes it.
    pub fn as_str(self) -> &'static str {
        match self {
            RestoreTier::Expedited => "expedited",
            RestoreTier::Standard => "standard",
            RestoreTier::Bulk => "bulk",
        }
    }
}

impl FromStr for RestoreTier {
    type Err = Error;
    fn from_str(text: &str) -> Result<Self> {
        match text.trim().to_ascii_lowercase().as_str() {
            "expedited" => Ok(RestoreTier::Expedited),
            "standard" => Ok(RestoreTier::Standard),
            "bulk" => Ok(RestoreTier::Bulk),
            _ => Err(Error::invalid_input(format!(
                "restore tier {text:?}: expected expedited, standard or bulk"
            ))),
        }
    }
}

impl fmt::Display for RestoreTier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where an object stands between its archive class and being readable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum RestoreState {
    /// Not in an archive class: it reads as it is.
    NotArchived,
    /// In the archive class `class`, and no restore asked for.
    Archived {
        /// The storage class or access tier.
        class: String,
    },
    /// A restore runs; the object cannot be read yet.
    InProgress {
        /// The storage class or access tier it comes from.
        class: String,
    },
    /// Readable: a temporary copy until `until` (S3), or for good (Azure's
    /// rehydration moves the blob to a readable tier: no `until`).
    Restored {
        /// When the restored copy goes again, if it does.
        #[serde(skip_serializing_if = "Option::is_none")]
        until: Option<Timestamp>,
    },
}

impl RestoreState {
    /// True once the object can be read.
    pub fn readable(&self) -> bool {
        matches!(self, RestoreState::NotArchived | RestoreState::Restored { .. })
    }
}

impl fmt::Display for RestoreState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RestoreState::NotArchived => f.write_str("not archived: it can be read now"),
            RestoreState::Archived { class } => write!(f, "archived ({class}): no restore asked for"),
            RestoreState::InProgress { class } => write!(f, "restore in progress (from {class})"),
            RestoreState::Restored { until: Some(until) } => write!(f, "restored: readable until {until}"),
            RestoreState::Restored { until: None } => f.write_str("restored: readable"),
        }
    }
}
