//! What every request leaves behind: one log line (method, route, status,
//! milliseconds; never the query string, which may hold a link's
//! signature, nor a token), and its counts in the metrics, its body bytes
//! counted as they stream.

use std::sync::Arc;
use std::time::Instant;

use axum::body::{Body, HttpBody};
use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::Response;
use futures::TryStreamExt;

use crate::AppState;
use crate::metrics::Metrics;

/// Log and count one request.
pub async fn observe(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
        .to_owned();
    let metrics = state.metrics.clone();
    let request = request.map(|body| counted(body, metrics.clone(), Metrics::bytes_in));
    let response = next.run(request).await;
    let took = started.elapsed();
    let status = response.status().as_u16();
    metrics.record(&route, method.as_str(), status, took);
    tracing::info!(
        method = %method,
        route = %route,
        status,
        ms = format_args!("{:.1}", took.as_secs_f64() * 1000.0),
        "request"
    );
    let mut response = response;
    // A counted body's length is unknown to hyper: keep a known one as a header.
    if let Some(length) = response.body().size_hint().exact().filter(|n| *n > 0) {
        response
            .headers_mut()
            .entry(header::CONTENT_LENGTH)
            .or_insert(length.into());
    }
    response.map(|body| counted(body, metrics, Metrics::bytes_out))
}

/// `body`, counting its bytes with `count` as they pass.
fn counted(body: Body, metrics: Arc<Metrics>, count: fn(&Metrics, usize)) -> Body {
    Body::from_stream(
        body.into_data_stream()
            .inspect_ok(move |chunk| count(&metrics, chunk.len())),
    )
}
