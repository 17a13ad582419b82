//! Progress reporting: the library reports, the caller decides how to show it.

/// Receives progress of one transfer. All methods have empty defaults.
pub trait Progress: Send + Sync {
    /// A transfer starts; `total` bytes if known.
    fn start(&self, _total: Option<u64>) {}
    /// `bytes` more were moved.
    fn advance(&self, _bytes: u64) {}
    /// The transfer ended (successfully or not).
    fn finish(&self) {}
}

/// Reports nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProgress;

impl Progress for NoProgress {}
