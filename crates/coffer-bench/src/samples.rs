//! Repeated timings of one operation, and their median, p95 and max.

use std::time::Duration;

/// Timings of repeated runs of one operation.
#[derive(Debug, Clone, Default)]
pub struct Samples(Vec<Duration>);

impl Samples {
    /// Record one timing.
    pub fn push(&mut self, time: Duration) {
        self.0.push(time);
    }

    /// How many timings there are.
    pub fn count(&self) -> usize {
        self.0.len()
    }

    /// Every timing, fastest first.
    pub fn sorted(&self) -> Vec<Duration> {
        let mut sorted = self.0.clone();
        sorted.sort();
        sorted
    }

    /// The median (the mean of the two middle timings when their number is even).
    pub fn median(&self) -> Duration {
        let sorted = self.sorted();
        match sorted.len() {
            0 => Duration::ZERO,
            n if n % 2 == 1 => sorted[n / 2],
            n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2,
        }
    }

    /// The 95th percentile, nearest rank.
    pub fn p95(&self) -> Duration {
        let sorted = self.sorted();
        let rank = (sorted.len() * 95).div_ceil(100).max(1);
        sorted.get(rank - 1).copied().unwrap_or_default()
    }

    /// The slowest.
    pub fn max(&self) -> Duration {
        self.0.iter().copied().max().unwrap_or_default()
    }
}
