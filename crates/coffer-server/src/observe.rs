//! What every request leaves behind: one log line (method, route, status,
//! milliseconds; never the query string, which may hold a link's
//! signature, nor a token), and its counts in the metrics, its body bytes
//! counted as they stream.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::body::{Body, HttpBody};
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use http_body::{Frame, SizeHint};

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
    response.map(|body| counted(body, metrics, Metrics::bytes_out))
}

/// `body`, counting its bytes with `count` as they pass; its size hint
/// stays (S3 clients' requests are read by their length).
fn counted(body: Body, metrics: Arc<Metrics>, count: fn(&Metrics, usize)) -> Body {
    Body::new(Counted { body, metrics, count })
}

struct Counted {
    body: Body,
    metrics: Arc<Metrics>,
    count: fn(&Metrics, usize),
}

impl HttpBody for Counted {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let polled = Pin::new(&mut self.body).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(data) = frame.data_ref()
        {
            (self.count)(&self.metrics, data.len());
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
