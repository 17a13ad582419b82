//! `coffer serve`: one HTTP server over a [`Store`]: the REST API under
//! `/api/v1`, the web archive browser under `/ui`, links for backends that
//! cannot presign, health checks, and the background work a long-running
//! coffer process runs; and, on a port of its own, the S3 endpoint.
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
mod s3;
mod web;

use std::future::{Future, IntoFuture};
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
    /// Tokens recently found valid.
    tokens: Arc<auth::TokenCache>,
    /// The URL clients reach the server at.
    public_url: String,
}

/// A server bound to its addresses, not yet serving.
pub struct Server {
    listener: tokio::net::TcpListener,
    s3_listener: Option<tokio::net::TcpListener>,
    store: Store,
    config: ServerConfig,
}

impl Server {
    /// Bind `config.listen`, and `config.s3_listen` if set (port 0 picks
    /// a free one).
    pub async fn bind(store: Store, config: &ServerConfig) -> coffer::Result<Server> {
        let listener = listen(&config.listen).await?;
        let s3_listener = match &config.s3_listen {
            Some(address) => Some(listen(address).await?),
            None => None,
        };
        Ok(Server {
            listener,
            s3_listener,
            store,
            config: config.clone(),
        })
    }

    /// The address the REST API listens on.
    pub fn local_addr(&self) -> coffer::Result<SocketAddr> {
        address_of(&self.listener)
    }

    /// The address the S3 endpoint listens on, if it does.
    pub fn s3_addr(&self) -> coffer::Result<Option<SocketAddr>> {
        self.s3_listener.as_ref().map(address_of).transpose()
    }

    /// Serve until `shutdown` completes, running the background work; then
    /// take no new requests, finish those in flight, and stop the
    /// background work (the dispatcher settles its claims).
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) -> coffer::Result<()> {
        let background = background::Background::start(&self.store, self.config.background);
        let state = AppState {
            store: self.store,
            metrics: Arc::default(),
            tokens: Arc::default(),
            public_url: self.config.public_url(),
        };
        let shutdown = futures::FutureExt::shared(shutdown);
        let s3 = self
            .s3_listener
            .map(|listener| axum::serve(listener, s3::router(state.clone())).with_graceful_shutdown(shutdown.clone()));
        let api = axum::serve(self.listener, router(state)).with_graceful_shutdown(shutdown);
        let (served, s3_served) = match s3 {
            Some(s3) => {
                let (api, s3) = tokio::join!(api.into_future(), s3.into_future());
                (api, s3)
            }
            None => (api.await, Ok(())),
        };
        let served = served
            .and(s3_served)
            .map_err(|e| Error::new(ErrorKind::Io, format!("the server stopped: {e}")));
        let stopped = background.stop().await;
        served.and(stopped)
    }
}

async fn listen(address: &str) -> coffer::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(address)
        .await
        .map_err(|e| Error::new(ErrorKind::InvalidInput, format!("cannot listen on {address}: {e}")))
}

fn address_of(listener: &tokio::net::TcpListener) -> coffer::Result<SocketAddr> {
    listener
        .local_addr()
        .map_err(|e| Error::new(ErrorKind::Io, format!("the server's address: {e}")))
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
        .route("/", get(web::index))
        .route("/ui", get(web::index))
        .route("/ui/", get(web::index))
        .route("/ui/login", get(web::login_page).post(web::login))
        .route("/ui/logout", post(web::logout))
        .route("/ui/api/session", get(web::session))
        .route("/ui/assets/{hash}/{file}", get(web::asset))
        .fallback(|| async { Problem::new(StatusCode::NOT_FOUND, "not_found", "no such route") })
        .method_not_allowed_fallback(|| async {
            Problem::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this route does not take that method (see /api/v1/openapi.json)",
            )
        })
        // Bodies stream into the store, whatever their size.
        .layer(DefaultBodyLimit::disable())
        .layer(middleware::from_fn_with_state(state.clone(), observe::observe))
        .with_state(state)
}
