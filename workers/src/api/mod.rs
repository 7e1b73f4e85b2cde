//! The operator HTTP API: dead letters, consumer state, health and API docs.

mod consumers;
mod dead_letters;
mod retries;

pub use consumers::ConsumerState;

use crate::dead_letters::{DeadLetter, DeadLetterStatus, DeadLetterSummary};
use crate::ledger::Ledger;
use crate::registry::Effects;
use async_nats::jetstream;
use auth::{Authority, TokenVerifier};
use axum::Router;
use axum::extract::FromRef;
use axum::routing::{get, post};
use eventstore::StreamSettings;
use sqlx::PgPool;
use std::sync::Arc;
use utoipa::OpenApi;
use web::{BearerAuth, ErrorResponses};
use web::{HttpSettings, Readiness};

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    /// Postgres.
    pub pool: PgPool,
    /// Access-token verifier.
    pub verifier: Arc<TokenVerifier>,
    /// JetStream, for consumer state.
    pub jetstream: jetstream::Context,
    /// The events stream.
    pub stream: StreamSettings,
    /// The side effects, for retries.
    pub effects: Effects,
    /// The never-twice ledger.
    pub ledger: Ledger,
    /// Webhook deliveries, for their gauges.
    pub webhooks: webhooks::Webhooks,
}

impl AppState {
    /// Bulk retries of dead letters.
    pub fn retrier(&self) -> crate::bulk_retry::Retrier {
        crate::bulk_retry::Retrier::new(self.pool.clone(), self.ledger.clone(), self.effects.clone())
    }
}

impl FromRef<AppState> for Arc<TokenVerifier> {
    fn from_ref(state: &AppState) -> Self {
        state.verifier.clone()
    }
}

impl FromRef<AppState> for Authority {
    fn from_ref(state: &AppState) -> Self {
        Authority::new(state.pool.clone())
    }
}

/// The OpenAPI document of the workers service.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "workers",
        description = "Side effects of events (welcome email, order confirmation), their dead letters \
                       and consumer state. \
                       Every /api endpoint needs an administrator's bearer token."
    ),
    paths(
        dead_letters::list,
        dead_letters::show,
        dead_letters::retry,
        dead_letters::discard,
        dead_letters::actions,
        retries::start,
        retries::list,
        retries::show,
        consumers::list
    ),
    components(schemas(DeadLetter, DeadLetterSummary, DeadLetterStatus, ConsumerState, runtime::audit::OperatorAction, web::PagePage,
                       crate::bulk_retry::RetryRun, crate::dead_letters::Filter, retries::StartRetries)),
    modifiers(&BearerAuth, &ErrorResponses),
    tags(
        (name = "dead-letters", description = "Side effects that failed on every attempt"),
        (name = "consumers", description = "JetStream consumers owned by the workers")
    )
)]
pub struct ApiDoc;

/// The whole service router, hardened: API, health and docs.
pub fn router(state: AppState, readiness: Arc<Readiness>, http: &HttpSettings) -> Router {
    let metrics = vec![
        consumers::collector(&state),
        dead_letters::collector(&state),
        crate::webhook::collector(state.webhooks.clone()),
    ];
    let api = Router::new()
        .route("/api/v1/dead-letters", get(dead_letters::list))
        .route(
            "/api/v1/dead-letters/{id}",
            get(dead_letters::show).delete(dead_letters::discard),
        )
        .route("/api/v1/dead-letters/{id}/retry", post(dead_letters::retry))
        .route(
            "/api/v1/dead-letters/retries",
            post(retries::start).get(retries::list),
        )
        .route("/api/v1/dead-letters/retries/{id}", get(retries::show))
        .route("/api/v1/consumers", get(consumers::list))
        .route("/api/v1/operator-actions", get(dead_letters::actions))
        .with_state(state);
    let router = api
        .merge(web::health_routes(readiness))
        .merge(web::metrics_routes(metrics))
        .merge(web::docs_routes(ApiDoc::openapi()));
    web::harden(router, http)
}
