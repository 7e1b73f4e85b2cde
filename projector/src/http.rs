//! The projector's HTTP endpoints: health, API docs, and projection progress for operators.
//!
//! `GET /api/v1/projections` needs an administrator's access token (401 without a valid one,
//! 403 for other roles) and carries counts only (no user data): per registered projection
//! (see [`crate::registry`]) its consumer's backlog from JetStream and the rows of its main table.
//! Health probes and the OpenAPI document stay public.

use crate::generations::{Generation, GenerationError, Generations, Kind, RebuildRun};
use crate::registry::{self, PROJECTIONS};
use async_nats::jetstream;
use auth::{Authority, TokenVerifier};
use axum::Router;
use axum::extract::{FromRef, State};
use axum::http::{StatusCode, header};
use axum::routing::{delete, get, post};
use runtime::RedisHandle;
use serde::Deserialize;
use serde::Serialize;
use sqlx::PgPool;
use std::sync::Arc;
use utoipa::OpenApi;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;
use web::{
    Admin, ApiError, ApiPath, ApiQuery, ApiResponse, BearerAuth, Envelope, ErrorEnvelope, ErrorResponses,
    HttpSettings, OptionalJson, PagePage, PagedEnvelope, Readiness,
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
    /// Rebuilds without downtime.
    pub generations: Generations,
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
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
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
    /// `running` (caught up), `catching up` (events wait), `held at a gap` (see
    /// `heldAt`), `rebuilding` (a new
    /// generation is being built beside it; see `rebuild`), or `unknown` (JetStream does
    /// not answer).
    pub state: String,
    /// The rebuild going on (the same for every projection: they are rebuilt together),
    /// with its phase, progress and ETA.
    pub rebuild: Option<RebuildRun>,
    /// The gap it is held at, as the replica answering saw it: a delivery ahead of its
    /// stream's row whose earlier events are not in the event store yet.
    pub held_at: Option<crate::progress::Gap>,
}

/// The OpenAPI document of the projector (served at `/openapi.json`, Swagger UI at `/docs`).
#[derive(OpenApi)]
#[openapi(
    info(
        title = "projector",
        description = "Progress of the read-model projections. \
                       Every /api endpoint needs an administrator's bearer token."
    ),
    paths(
        projections,
        start_rebuild,
        list_rebuilds,
        show_rebuild,
        list_generations,
        activate_generation,
        drop_generation
    ),
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
        .route(
            "/api/v1/projections/rebuilds",
            get(list_rebuilds).post(start_rebuild),
        )
        .route("/api/v1/projections/rebuilds/{id}", get(show_rebuild))
        .route("/api/v1/projections/generations", get(list_generations))
        .route(
            "/api/v1/projections/generations/{generation}",
            delete(drop_generation),
        )
        .route(
            "/api/v1/projections/generations/{generation}/activate",
            post(activate_generation),
        )
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
    let rebuild = state.generations.running().await.map_err(ApiError::internal)?;
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
            rebuild: rebuild.clone(),
            held_at: crate::progress::gap(projection.name()),
            state: match &info {
                _ if rebuild.is_some() => "rebuilding",
                _ if crate::progress::gap(projection.name()).is_some() => "held at a gap",
                None => "unknown",
                Some(i) if i.num_pending + i.num_ack_pending as u64 > 0 => "catching up",
                Some(_) => "running",
            }
            .to_owned(),
        })
        .collect();
    Ok(ApiResponse::ok(statuses))
}

/// Why a rebuild, an activation or a drop is done, for the record of operator actions.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Because {
    /// Why, at most 500 characters.
    pub reason: Option<String>,
}

impl Because {
    fn checked(&self) -> Result<Option<&str>, ApiError> {
        web::optional_reason(self.reason.as_deref())
    }
}

/// Paging of the rebuilds.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct RunsQuery {
    /// Page number, from 1 (default 1).
    page: Option<u32>,
    /// Items per page, 1 to 100 (default 20).
    per_page: Option<u32>,
}

/// A generation's number in a path.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct GenerationPath {
    /// The generation.
    generation: i64,
}

fn generation_error(error: GenerationError) -> ApiError {
    match error {
        GenerationError::Running(id) => ApiError::conflict(format!(
            "rebuild {id} is running; one runs at a time (follow it at /api/v1/projections/rebuilds/{id})"
        )),
        GenerationError::NotFound(_) => ApiError::not_found("generation"),
        error @ (GenerationError::NotRetired { .. } | GenerationError::Outdated(_)) => {
            ApiError::conflict(error.to_string())
        }
        GenerationError::Database(error) => ApiError::internal(error),
    }
}

fn started(run: RebuildRun) -> ApiResponse {
    let location = format!("/api/v1/projections/rebuilds/{}", run.id);
    ApiResponse::with_status(StatusCode::ACCEPTED, run).header(header::LOCATION, &location)
}

/// Rebuilds every projection without downtime: a new generation of the read models is
/// built from the event store beside the live one (which keeps answering), caught up,
/// checked and swapped in; the one it replaces is kept for a rollback. Follow it at its
/// `Location`.
#[utoipa::path(
    post, path = "/api/v1/projections/rebuilds", tag = "projections", request_body = Because,
    security(("bearer" = [])),
    responses(
        (status = 202, description = "Started; phase, progress and ETA at `Location`", body = Envelope<RebuildRun>),
        (status = 400, description = "Invalid reason", body = ErrorEnvelope),
        (status = 401, description = "No valid token", body = ErrorEnvelope),
        (status = 403, description = "Not an administrator", body = ErrorEnvelope),
        (status = 409, description = "A rebuild is running", body = ErrorEnvelope),
        (status = 415, description = "A body that is not JSON", body = ErrorEnvelope),
        (status = 503, description = "Postgres or the signing keys are not answering, or the request timed out", body = ErrorEnvelope)
    )
)]
async fn start_rebuild(
    Admin(actor): Admin,
    State(state): State<HttpState>,
    OptionalJson(body): OptionalJson<Because>,
) -> Result<ApiResponse, ApiError> {
    let run = state
        .generations
        .start(Kind::Rebuild, actor.id, body.checked()?)
        .await
        .map_err(generation_error)?;
    Ok(started(run))
}

/// The rebuilds and activations, newest first.
#[utoipa::path(
    get, path = "/api/v1/projections/rebuilds", tag = "projections", params(RunsQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Runs with their progress", body = PagedEnvelope<RebuildRun>),
        (status = 400, description = "Invalid paging", body = ErrorEnvelope),
        (status = 401, description = "No valid token", body = ErrorEnvelope),
        (status = 403, description = "Not an administrator", body = ErrorEnvelope),
        (status = 503, description = "Postgres or the signing keys are not answering, or the request timed out", body = ErrorEnvelope)
    )
)]
async fn list_rebuilds(
    _: Admin,
    State(state): State<HttpState>,
    ApiQuery(query): ApiQuery<RunsQuery>,
) -> Result<ApiResponse, ApiError> {
    let (page, per_page) = PagePage::requested(query.page, query.per_page)?;
    let (items, total) = state
        .generations
        .list(page, per_page)
        .await
        .map_err(ApiError::internal)?;
    Ok(ApiResponse::ok(items).pagination(PagePage::new(page, per_page, total)))
}

/// One rebuild: phase, events replayed of total, rate, ETA, and the checks made before
/// the swap.
#[utoipa::path(
    get, path = "/api/v1/projections/rebuilds/{id}", tag = "projections",
    params(("id" = Uuid, Path, description = "Run id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The run", body = Envelope<RebuildRun>),
        (status = 400, description = "Malformed id", body = ErrorEnvelope),
        (status = 401, description = "No valid token", body = ErrorEnvelope),
        (status = 403, description = "Not an administrator", body = ErrorEnvelope),
        (status = 404, description = "No such run", body = ErrorEnvelope),
        (status = 503, description = "Postgres or the signing keys are not answering, or the request timed out", body = ErrorEnvelope)
    )
)]
async fn show_rebuild(
    _: Admin,
    State(state): State<HttpState>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<ApiResponse, ApiError> {
    state
        .generations
        .find(id)
        .await
        .map_err(ApiError::internal)?
        .map(ApiResponse::ok)
        .ok_or_else(|| ApiError::not_found("rebuild"))
}

/// Every generation of the read models, newest first: the live one, those kept for a
/// rollback (`retired`), and those dropped or failed.
#[utoipa::path(
    get, path = "/api/v1/projections/generations", tag = "projections",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The generations", body = Envelope<Vec<Generation>>),
        (status = 401, description = "No valid token", body = ErrorEnvelope),
        (status = 403, description = "Not an administrator", body = ErrorEnvelope),
        (status = 503, description = "Postgres or the signing keys are not answering, or the request timed out", body = ErrorEnvelope)
    )
)]
async fn list_generations(_: Admin, State(state): State<HttpState>) -> Result<ApiResponse, ApiError> {
    let generations = state
        .generations
        .generations()
        .await
        .map_err(ApiError::internal)?;
    Ok(ApiResponse::ok(generations))
}

/// Rolls back: makes a retired generation live again, caught up from the event store
/// first, the same way a rebuild is swapped in. Follow it at its `Location`.
#[utoipa::path(
    post, path = "/api/v1/projections/generations/{generation}/activate", tag = "projections",
    params(GenerationPath), request_body = Because,
    security(("bearer" = [])),
    responses(
        (status = 202, description = "Started; progress at `Location`", body = Envelope<RebuildRun>),
        (status = 400, description = "Malformed generation or reason", body = ErrorEnvelope),
        (status = 401, description = "No valid token", body = ErrorEnvelope),
        (status = 403, description = "Not an administrator", body = ErrorEnvelope),
        (status = 404, description = "No such generation", body = ErrorEnvelope),
        (status = 409, description = "Not retired, changed by a migration since, or a rebuild is running", body = ErrorEnvelope),
        (status = 415, description = "A body that is not JSON", body = ErrorEnvelope),
        (status = 503, description = "Postgres or the signing keys are not answering, or the request timed out", body = ErrorEnvelope)
    )
)]
async fn activate_generation(
    Admin(actor): Admin,
    State(state): State<HttpState>,
    ApiPath(path): ApiPath<GenerationPath>,
    OptionalJson(body): OptionalJson<Because>,
) -> Result<ApiResponse, ApiError> {
    let run = state
        .generations
        .start(Kind::Activate(path.generation), actor.id, body.checked()?)
        .await
        .map_err(generation_error)?;
    Ok(started(run))
}

/// Drops a retired generation: its tables and Redis documents are removed, and it can
/// no longer be activated.
#[utoipa::path(
    delete, path = "/api/v1/projections/generations/{generation}", tag = "projections",
    params(GenerationPath, ("reason" = Option<String>, Query, description = "Why, at most 500 characters")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Dropped", body = Envelope<Generation>),
        (status = 400, description = "Malformed generation or reason", body = ErrorEnvelope),
        (status = 401, description = "No valid token", body = ErrorEnvelope),
        (status = 403, description = "Not an administrator", body = ErrorEnvelope),
        (status = 404, description = "No such generation", body = ErrorEnvelope),
        (status = 409, description = "Not retired, or being activated", body = ErrorEnvelope),
        (status = 503, description = "Postgres or the signing keys are not answering, or the request timed out", body = ErrorEnvelope)
    )
)]
async fn drop_generation(
    Admin(actor): Admin,
    State(state): State<HttpState>,
    ApiPath(path): ApiPath<GenerationPath>,
    ApiQuery(because): ApiQuery<Because>,
) -> Result<ApiResponse, ApiError> {
    let dropped = state
        .generations
        .drop_generation(path.generation, actor.id, because.checked()?)
        .await
        .map_err(generation_error)?;
    Ok(ApiResponse::ok(dropped))
}
