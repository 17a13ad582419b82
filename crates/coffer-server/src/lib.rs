//! `coffer serve`: one HTTP server over a [`Store`]: the REST API under
//! `/api/v1`, links for backends that cannot presign, health checks, and
//! the background work a long-running coffer process runs.
//!
//! The server holds no storage logic: each route checks the caller's token,
//! calls `Store`, and formats the answer. Any number of servers can share
//! one catalog and one backend.

mod api;
mod auth;
mod background;
mod health;
mod links;
mod metrics;
mod observe;
mod openapi;
mod problem;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::middleware;
use axum::routing::{any, delete, get, patch, post, put};
use coffer::config::ServerConfig;
use coffer::{Error, ErrorKind, Store};

use self::problem::Problem;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    store: Store,
    metrics: Arc<metrics::Metrics>,
}

/// A server bound to its address, not yet serving.
pub struct Server {
    listener: tokio::net::TcpListener,
    store: Store,
    config: ServerConfig,
}

impl Server {
    /// Bind `config.listen` (port 0 picks a free one).
    pub async fn bind(store: Store, config: &ServerConfig) -> coffer::Result<Server> {
        let listener = tokio::net::TcpListener::bind(&config.listen).await.map_err(|e| {
            Error::new(
                ErrorKind::InvalidInput,
                format!("cannot listen on {}: {e}", config.listen),
            )
        })?;
        Ok(Server {
            listener,
            store,
            config: config.clone(),
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> coffer::Result<SocketAddr> {
        self.listener
            .local_addr()
            .map_err(|e| Error::new(ErrorKind::Io, format!("the server's address: {e}")))
    }

    /// Serve until `shutdown` completes, running the background work; then
    /// take no new requests, finish those in flight, and stop the
    /// background work (the dispatcher settles its claims).
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) -> coffer::Result<()> {
        let background = background::Background::start(&self.store, self.config.background);
        let app = router(AppState {
            store: self.store,
            metrics: Arc::default(),
        });
        let served = axum::serve(self.listener, app)
            .with_graceful_shutdown(shutdown)
            .await
            .map_err(|e| Error::new(ErrorKind::Io, format!("the server stopped: {e}")));
        let stopped = background.stop().await;
        served.and(stopped)
    }
}

/// Every route.
fn router(state: AppState) -> Router {
    use api::{bundles, hooks, objects, search, versions};
    Router::new()
        .route("/healthz", get(health::live))
        .route("/readyz", get(health::ready))
        .route("/metrics", get(metrics::render))
        .route("/api/v1/openapi.json", get(openapi::serve))
        .route("/api/v1/objects", get(objects::list))
        .route(
            "/api/v1/objects/{*key}",
            get(objects::get).put(objects::put).delete(objects::delete),
        )
        .route("/api/v1/versions/{*key}", get(versions::versions))
        .route("/api/v1/history/{*key}", get(versions::history))
        .route("/api/v1/compare/{*key}", get(versions::compare))
        .route("/api/v1/rollback/{*key}", post(versions::rollback))
        .route("/api/v1/undelete/{*key}", post(versions::undelete))
        .route("/api/v1/copy/{*key}", post(versions::copy))
        .route("/api/v1/tags/{*key}", put(versions::tags))
        .route("/api/v1/comments/{*key}", post(versions::comment))
        .route("/api/v1/metadata/{*key}", patch(versions::metadata))
        .route("/api/v1/retention/{*key}", put(versions::retention))
        .route("/api/v1/legal-hold/{*key}", put(versions::legal_hold))
        .route("/api/v1/search", get(search::search))
        .route("/api/v1/audit", get(search::audit))
        .route("/api/v1/hooks", get(hooks::list).post(hooks::add))
        .route("/api/v1/hooks/stats", get(hooks::stats))
        .route("/api/v1/hooks/dead", get(hooks::dead))
        .route("/api/v1/hooks/replay", post(hooks::replay))
        .route("/api/v1/hooks/{name}", delete(hooks::remove))
        .route("/api/v1/events", post(hooks::fire))
        .route("/api/v1/bundles", get(bundles::list).post(bundles::start))
        .route("/api/v1/bundles/{id}", get(bundles::show).delete(bundles::abort))
        .route(
            "/api/v1/bundles/{id}/resources",
            get(bundles::resources).put(bundles::add),
        )
        .route("/api/v1/bundles/{id}/resource", get(bundles::resource))
        .route("/api/v1/bundles/{id}/complete", post(bundles::complete))
        .route("/links/{*key}", any(links::follow))
        .fallback(|| async { Problem::new(StatusCode::NOT_FOUND, "not_found", "no such route") })
        // Bodies stream into the store, whatever their size.
        .layer(DefaultBodyLimit::disable())
        .layer(middleware::from_fn_with_state(state.clone(), observe::observe))
        .with_state(state)
}
