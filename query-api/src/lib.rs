//! The query API: the read side of the CQRS backend. Serves users from the Redis copy of
//! the read models, falling back to Postgres, to callers holding an access token it can
//! verify but never mint; the product catalogue and best sellers to anyone; and orders
//! to their owners and administrators.
//!
//! `main` and the tests build the service the same way: [`Settings`] →
//! [`Application::build`] → [`Application::run_until`], with [`router`] shared by both.

pub mod consistency;
pub mod cursor;
pub mod listing;
pub mod lookup;
pub mod openapi;
pub mod orders;
pub mod pagination;
pub mod products;
pub mod reviews;
pub mod routes;
pub mod settings;
pub mod single_flight;
pub mod state;

pub use settings::Settings;
pub use state::AppState;

use anyhow::Context;
use axum::Router;
use runtime::RedisHandle;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use web::{Readiness, docs_routes, harden, health_routes};

/// The complete HTTP service (API, health, docs) wrapped in the shared hardening.
pub fn router(state: AppState) -> Router {
    let redis = state.redis.clone();
    let readiness = Readiness::new()
        .postgres(state.pool.clone())
        .check("redis", false, runtime::redis_check(redis.clone()))
        .check("changes", false, runtime::changes_check(state.changes.clone()));
    let http = state.http.clone();
    let rate_limit = state.rate_limit.clone();
    let consistency_state = state.clone();
    // Each handler is registered once: its `#[utoipa::path]` puts it in the document.
    let (api, document) = utoipa_axum::router::OpenApiRouter::with_openapi(openapi::openapi())
        .merge(routes::users::routes())
        .merge(routes::users_v2::routes())
        .merge(routes::products::routes())
        .merge(routes::orders::routes())
        .merge(reviews::routes())
        .with_state(state)
        .split_for_parts();
    let api = api
        .route_layer(axum::middleware::from_fn_with_state(
            consistency_state,
            consistency::wait,
        ))
        .route_layer(axum::middleware::from_fn_with_state(
            rate_limit,
            web::rate_limit::limit,
        ));
    let mut document = document;
    // The document's modifiers ran before the router added the paths: run them again.
    // First: the header it adds is a parameter that may be refused with 400.
    utoipa::Modify::modify(&web::ConsistencyAccepted, &mut document);
    utoipa::Modify::modify(&web::BearerAuth, &mut document);
    utoipa::Modify::modify(&web::ErrorResponses, &mut document);
    utoipa::Modify::modify(&web::RateLimited, &mut document);
    routes::users_v2::mark_deprecated(&mut document);
    let app = Router::new()
        .merge(api)
        .merge(health_routes(Arc::new(readiness)))
        .merge(web::metrics_routes(vec![web::metrics::redis_breaker(redis)]))
        .merge(docs_routes(document));
    harden(app, &http)
}

/// A query API bound to its port, not serving yet.
pub struct Application {
    listener: TcpListener,
    router: Router,
    port: u16,
    limits: web::ConnectionLimits,
}

impl Application {
    /// Connects to Postgres (creating and migrating the database when needed), starts
    /// connecting to Redis in the background, and binds the listener (port 0 picks one).
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        // The metrics recorder first, so nothing recorded while starting is lost.
        web::metrics::handle();
        let pool =
            runtime::connect_postgres(&settings.database_url, settings.database_max_connections).await?;
        let redis = RedisHandle::connect(&settings.redis_url)?;
        let limits = settings.http.connections;
        let state = AppState::new(&settings, pool, redis);
        let listener = TcpListener::bind((settings.bind_address, settings.port))
            .await
            .with_context(|| format!("could not listen on {}:{}", settings.bind_address, settings.port))?;
        let port = listener
            .local_addr()
            .context("the listener has no address")?
            .port();
        Ok(Self {
            listener,
            router: router(state),
            port,
            limits,
        })
    }

    /// The port actually bound.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until `shutdown` is cancelled, letting in-flight requests finish.
    pub async fn run_until(self, shutdown: CancellationToken) -> std::io::Result<()> {
        web::serve(self.listener, self.router, self.limits, shutdown).await
    }
}
