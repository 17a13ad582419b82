//! `/healthz` (the process answers) and `/readyz` (the catalog and the
//! backend answer too).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::AppState;

/// Always 200 while the process serves.
pub async fn live() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// 200 when the catalog and the backend answer, else 503 naming what did not.
pub async fn ready(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let catalog = state.store.catalog().setting("schema_probe").await;
    let backend = state.store.health().await;
    let ok = catalog.is_ok() && backend.ok;
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({
        "status": if ok { "ok" } else { "unavailable" },
        "catalog": { "engine": state.store.catalog().engine(), "ok": catalog.is_ok(),
                     "error": catalog.err().map(|e| e.message().to_owned()) },
        "backend": { "name": backend.backend, "ok": backend.ok, "error": backend.error,
                     "latency_ms": backend.latency_ms },
    });
    (status, Json(body))
}
