//! Delivery statistics: counters per hook and a latency histogram.

use std::time::Duration;

use serde::Serialize;

use crate::catalog::{HookCounters, OutboxCounters};

/// Buckets of the latency histogram: four per doubling, from 1 µs up to
/// 2^24 µs (about 17 s); slower attempts count in the last bucket.
pub const HISTOGRAM_BUCKETS: usize = 96;

/// Attempt latencies, counted per logarithmic bucket: bucket `i` holds
/// latencies below 2^((i+1)/4) µs, so a percentile read from it is at most
/// 19% above the true value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LatencyHistogram {
    counts: Vec<u64>,
}

impl LatencyHistogram {
    /// From stored counts (shorter or empty vectors are fine).
    pub fn from_counts(counts: Vec<u64>) -> Self {
        LatencyHistogram { counts }
    }

    /// The counts, for storing.
    pub fn counts(&self) -> &[u64] {
        &self.counts
    }

    /// Count one attempt.
    pub fn record(&mut self, elapsed: Duration) {
        let micros = elapsed.as_micros().max(1) as f64;
        let bucket = ((micros.log2() * 4.0).floor() as usize).min(HISTOGRAM_BUCKETS - 1);
        if self.counts.len() <= bucket {
            self.counts.resize(bucket + 1, 0);
        }
        self.counts[bucket] += 1;
    }

    /// Add another histogram's counts.
    pub fn merge(&mut self, other: &LatencyHistogram) {
        if self.counts.len() < other.counts.len() {
            self.counts.resize(other.counts.len(), 0);
        }
        for (mine, theirs) in self.counts.iter_mut().zip(&other.counts) {
            *mine += theirs;
        }
    }

    /// The latency below which `fraction` of the attempts fall (the upper
    /// bound of its bucket), or `None` without attempts.
    pub fn percentile(&self, fraction: f64) -> Option<Duration> {
        let total: u64 = self.counts.iter().sum();
        if total == 0 {
            return None;
        }
        let wanted = ((total as f64) * fraction).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (bucket, count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= wanted {
                let upper = 2f64.powf((bucket + 1) as f64 / 4.0);
                return Some(Duration::from_micros(upper.round() as u64));
            }
        }
        None
    }
}

/// What `coffer hooks stats` shows of one hook, or of all together.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct HookStats {
    /// The hook (`*` for the total).
    pub hook: String,
    /// Its kind (empty for the total).
    pub kind: String,
    /// Attempts made.
    pub executed: u64,
    /// Attempts that failed.
    pub failed: u64,
    /// Deliveries done.
    pub delivered: u64,
    /// Successful attempts over all attempts; `None` (JSON null) for a hook
    /// that has made no attempt yet.
    pub success_rate: Option<f64>,
    /// Mean attempt time, milliseconds.
    pub avg_ms: f64,
    /// 95th percentile of attempt time, milliseconds.
    pub p95_ms: f64,
    /// Deliveries waiting to be made or retried.
    pub queue_depth: u64,
    /// Deliveries dead-lettered.
    pub dead_letters: u64,
}

/// Statistics of every hook and of all of them together.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct HooksReport {
    /// Events written to the outbox.
    pub events_fired: u64,
    /// Events not yet handed to hooks.
    pub events_waiting: u64,
    /// Every hook together.
    pub total: HookStats,
    /// Each hook.
    pub hooks: Vec<HookStats>,
}

impl HookStats {
    fn from_counters(hook: &str, kind: &str, counters: &HookCounters, histogram: &LatencyHistogram) -> Self {
        let ms = |d: Option<Duration>| d.map_or(0.0, |d| d.as_secs_f64() * 1000.0);
        HookStats {
            hook: hook.to_owned(),
            kind: kind.to_owned(),
            executed: counters.executed,
            failed: counters.failed,
            delivered: counters.delivered,
            success_rate: (counters.executed > 0).then(|| {
                (counters.executed - counters.failed.min(counters.executed)) as f64 / counters.executed as f64
            }),
            avg_ms: if counters.executed == 0 {
                0.0
            } else {
                counters.total_micros as f64 / counters.executed as f64 / 1000.0
            },
            p95_ms: ms(histogram.percentile(0.95)),
            queue_depth: counters.pending,
            dead_letters: counters.dead,
        }
    }
}

impl HooksReport {
    /// The report from the catalog's counters; `kinds` names each hook's kind.
    pub fn new(counters: &OutboxCounters, kind_of: impl Fn(&str) -> String) -> Self {
        let mut total = HookCounters::default();
        let mut total_histogram = LatencyHistogram::default();
        let mut hooks = Vec::new();
        for hook in &counters.hooks {
            let histogram = LatencyHistogram::from_counts(hook.histogram.clone());
            hooks.push(HookStats::from_counters(
                &hook.hook,
                &kind_of(&hook.hook),
                hook,
                &histogram,
            ));
            total.executed += hook.executed;
            total.failed += hook.failed;
            total.total_micros += hook.total_micros;
            total.pending += hook.pending;
            total.delivered += hook.delivered;
            total.dead += hook.dead;
            total_histogram.merge(&histogram);
        }
        HooksReport {
            events_fired: counters.events_fired,
            events_waiting: counters.events_waiting,
            total: HookStats::from_counters("*", "", &total, &total_histogram),
            hooks,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_come_from_the_right_bucket() {
        let mut histogram = LatencyHistogram::default();
        for _ in 0..94 {
            histogram.record(Duration::from_micros(1_000));
        }
        for _ in 0..6 {
            histogram.record(Duration::from_millis(100));
        }
        let p50 = histogram.percentile(0.5).unwrap().as_micros() as f64;
        assert!((1_000.0..=1_190.0).contains(&p50), "{p50}");
        let p95 = histogram.percentile(0.95).unwrap().as_micros() as f64;
        assert!((100_000.0..=119_000.0).contains(&p95), "{p95}");
        assert_eq!(LatencyHistogram::default().percentile(0.95), None);
    }
}
