//! The projector's HTTP endpoints: health, API docs, and projection progress for operators.
//!
//! `GET /api/v1/projections` needs an administrator's access token (401 without a valid one,
//! 403 for other roles) and carries counts only (no user data): per registered projection
//! (see [`crate::registry`]) its consumer's backlog from JetStream and the rows of its main table.
//! Health probes and the OpenAPI document stay public.

use crate::registry::{self, PROJECTIONS};
use async_nats::jetstream;
use auth::{Authority, TokenVerifier};
use axum::Router;
use axum::extract::{FromRef, State};
use axum::routing::get;
use runtime::RedisHandle;
use serde::Serialize;
use sqlx::PgPool;
use std::sync::Arc;
use utoipa::OpenApi;
use web::{
    Admin, ApiError, ApiResponse, BearerAuth, Envelope, ErrorEnvelope, ErrorResponses, HttpSettings,
    Readiness,
};

/// What the endpoints read.
#[derive(Clone)]
pub struct HttpState {
    /// Postgres pool.
    pub pool: PgPool,
    /// JetStream context.
    pub jetstream: jetstream::Context,
    /// Name of the events stream.
    pub stream_name: String,
    /// Access-token verifier (public keys from Postgres; the projector cannot mint tokens).
    pub verifier: Arc<TokenVerifier>,
}

impl FromRef<HttpState> for Arc<TokenVerifier> {
    fn from_ref(state: &HttpState) -> Self {
        state.verifier.clone()
    }
}

impl FromRef<HttpState> for Authority {
    fn from_ref(state: &HttpState) -> Self {
        Authority::new(state.pool.clone())
    }
}

/// Progress of one projection.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProjectionStatus {
    /// Projection name, e.g. `users`.
    pub name: String,
    /// Its durable JetStream consumer.
    pub consumer: String,
    /// Messages not delivered yet (`null` while JetStream does not answer).
    pub num_pending: Option<u64>,
    /// Messages delivered and not yet acknowledged.
    pub num_ack_pending: Option<u64>,
    /// Messages delivered more than once.
    pub num_redelivered: Option<u64>,
    /// Rows of its read model table (tombstones included).
    pub rows: i64,
    /// Its checkpoint: the stream sequence up to which every event is applied and
    /// acknowledged (`null` while JetStream does not answer).
    pub checkpoint: Option<u64>,
    /// How old its view of the world is: the age of the newest event applied while
    /// events wait, 0 when caught up (`null` while JetStream does not answer).
    pub lag_seconds: Option<f64>,
    /// `running` (caught up), `catching up` (events wait), or `unknown` (JetStream does
    /// not answer).
    pub state: String,
}

/// The OpenAPI document of the projector (served at `/openapi.json`, Swagger UI at `/docs`).
#[derive(OpenApi)]
#[openapi(
    info(
        title = "projector",
        description = "Progress of the read-model projections. \
                       Every /api endpoint needs an administrator's bearer token."
    ),
    paths(projections),
    modifiers(&BearerAuth, &ErrorResponses),
    tags((name = "projections", description = "The projector's durable consumers and read models"))
)]
pub struct ApiDoc;

/// The whole router, hardened: health routes, API docs and `GET /api/v1/projections`.
pub fn router(
    state: HttpState,
    nats: async_nats::Client,
    redis: RedisHandle,
    settings: &HttpSettings,
) -> Router {
    let readiness = Readiness::new()
        .postgres(state.pool.clone())
        .check("nats", true, runtime::nats_check(nats))
        .check("redis", false, runtime::redis_check(redis.clone()));
    let metrics = crate::progress::collector(state.jetstream.clone(), state.stream_name.clone());
    let api = Router::new()
        .route("/api/v1/projections", get(projections))
        .with_state(state);
    let router = web::health_routes(Arc::new(readiness))
        .merge(web::metrics_routes(vec![
            metrics,
            web::metrics::redis_breaker(redis),
        ]))
        .merge(web::docs_routes(ApiDoc::openapi()))
        .merge(api);
    web::harden(router, settings)
}

/// Lists each projection with its consumer's backlog and the rows of its read model.
#[utoipa::path(
    get, path = "/api/v1/projections", tag = "projections",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Every projection (users, products, orders), in this order", body = Envelope<Vec<ProjectionStatus>>),
        (status = 401, description = "No valid token", body = ErrorEnvelope),
        (status = 403, description = "Not an administrator", body = ErrorEnvelope),
        (status = 503, description = "Postgres or the signing keys are not answering, or the request timed out",
         body = ErrorEnvelope)
    )
)]
async fn projections(_: Admin, State(state): State<HttpState>) -> Result<ApiResponse, ApiError> {
    let rows = registry::count_rows(&state.pool)
        .await
        .map_err(ApiError::internal)?;
    let stream = state
        .jetstream
        .get_stream_no_info(&state.stream_name)
        .await
        .map_err(|error| error.to_string());
    let infos = futures::future::join_all(PROJECTIONS.iter().map(|projection| {
        let stream = &stream;
        let consumer = projection.consumer();
        async move {
            let info = match stream {
                Ok(stream) => stream.consumer_info(consumer).await.map_err(|e| e.to_string()),
                Err(error) => Err(error.clone()),
            };
            info.inspect_err(|error| tracing::warn!(error = %error, consumer, "consumer info unavailable"))
                .ok()
        }
    }))
    .await;
    let statuses: Vec<ProjectionStatus> = PROJECTIONS
        .iter()
        .zip(rows)
        .zip(infos)
        .map(|((projection, rows), info)| ProjectionStatus {
            name: projection.name().to_owned(),
            consumer: projection.consumer().to_owned(),
            num_pending: info.as_ref().map(|i| i.num_pending),
            num_ack_pending: info.as_ref().map(|i| i.num_ack_pending as u64),
            num_redelivered: info.as_ref().map(|i| i.num_redelivered as u64),
            rows,
            checkpoint: info.as_ref().map(|i| i.ack_floor.stream_sequence),
            lag_seconds: info
                .as_ref()
                .map(|i| crate::progress::lag_seconds(projection.name(), i)),
            state: match &info {
                None => "unknown",
                Some(i) if i.num_pending + i.num_ack_pending as u64 > 0 => "catching up",
                Some(_) => "running",
            }
            .to_owned(),
        })
        .collect();
    Ok(ApiResponse::ok(statuses))
}
