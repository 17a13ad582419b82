//! `/metrics` in Prometheus' text format: requests by route, method and
//! status, their latency (to the response's headers) as histograms, body
//! bytes in and out, and the store's backlogs (events waiting in the
//! outbox, files in the spool, hot content not yet on the backend).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use crate::AppState;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// One route's latencies.
#[derive(Default)]
struct Histogram {
    /// How many fell at or under each bucket's bound (not cumulative here).
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// What the server has counted since it started.
#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    latency: Mutex<BTreeMap<String, Histogram>>,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
}

impl Metrics {
    /// Count one answered request.
    pub fn record(&self, route: &str, method: &str, status: u16, took: Duration) {
        if let Ok(mut requests) = self.requests.lock() {
            *requests
                .entry((route.to_owned(), method.to_owned(), status))
                .or_default() += 1;
        }
        if let Ok(mut latency) = self.latency.lock() {
            let histogram = latency.entry(route.to_owned()).or_default();
            let seconds = took.as_secs_f64();
            if let Some(bucket) = BUCKETS.iter().position(|bound| seconds <= *bound) {
                histogram.counts[bucket] += 1;
            }
            histogram.count += 1;
            histogram.sum += seconds;
        }
    }

    /// Count body bytes received.
    pub fn bytes_in(&self, n: usize) {
        self.bytes_in.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// Count body bytes sent.
    pub fn bytes_out(&self, n: usize) {
        self.bytes_out.fetch_add(n as u64, Ordering::Relaxed);
    }

    fn render_http(&self, out: &mut String) {
        out.push_str("# HELP coffer_http_requests_total Requests answered, by route, method and status.\n");
        out.push_str("# TYPE coffer_http_requests_total counter\n");
        if let Ok(requests) = self.requests.lock() {
            for ((route, method, status), count) in requests.iter() {
                let _ = writeln!(
                    out,
                    "coffer_http_requests_total{{route=\"{}\",method=\"{method}\",status=\"{status}\"}} {count}",
                    label(route)
                );
            }
        }
        out.push_str("# HELP coffer_http_request_duration_seconds Time to the response's headers, by route.\n");
        out.push_str("# TYPE coffer_http_request_duration_seconds histogram\n");
        if let Ok(latency) = self.latency.lock() {
            for (route, histogram) in latency.iter() {
                let route = label(route);
                let mut cumulative = 0;
                for (bound, count) in BUCKETS.iter().zip(histogram.counts) {
                    cumulative += count;
                    let _ = writeln!(
                        out,
                        "coffer_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{bound}\"}} {cumulative}"
                    );
                }
                let _ = writeln!(
                    out,
                    "coffer_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}\n\
                     coffer_http_request_duration_seconds_sum{{route=\"{route}\"}} {}\n\
                     coffer_http_request_duration_seconds_count{{route=\"{route}\"}} {}",
                    histogram.count, histogram.sum, histogram.count
                );
            }
        }
        for (name, help, value) in [
            (
                "coffer_http_received_bytes_total",
                "Request body bytes received.",
                &self.bytes_in,
            ),
            (
                "coffer_http_sent_bytes_total",
                "Response body bytes sent.",
                &self.bytes_out,
            ),
        ] {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                value.load(Ordering::Relaxed)
            );
        }
    }
}

/// A label value with `\`, `"` and line breaks escaped.
fn label(text: &str) -> String {
    text.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn gauge(out: &mut String, name: &str, help: &str, value: u64) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}");
}

/// `GET /metrics`. A backlog that cannot be read just now is left out.
pub async fn render(State(state): State<AppState>) -> Response {
    let mut out = String::new();
    state.metrics.render_http(&mut out);
    let store = &state.store;
    if let Ok(hooks) = store.hook_stats().await {
        gauge(
            &mut out,
            "coffer_outbox_events_waiting",
            "Events not yet delivered to every hook.",
            hooks.events_waiting,
        );
    }
    if let Ok(Some(spool)) = store.spool_status().await {
        gauge(
            &mut out,
            "coffer_spool_files",
            "Files the spool holds for the backend.",
            spool.files,
        );
        gauge(
            &mut out,
            "coffer_spool_bytes",
            "Bytes the spool holds for the backend.",
            spool.bytes,
        );
    }
    if let Ok(hot) = store.hot_status().await {
        let s = &hot.stats;
        gauge(&mut out, "coffer_hot_objects", "Contents held hot.", s.objects);
        gauge(
            &mut out,
            "coffer_hot_unflushed_objects",
            "Hot contents not yet on the backend.",
            s.unflushed_objects,
        );
        gauge(
            &mut out,
            "coffer_hot_unflushed_bytes",
            "Bytes of hot contents not yet on the backend.",
            s.unflushed_bytes,
        );
        gauge(
            &mut out,
            "coffer_hot_pending_versions",
            "Versions whose manifest is not yet on the backend.",
            s.pending_versions,
        );
    }
    let mut response = out.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}
