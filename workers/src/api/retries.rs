//! `/api/v1/dead-letters/retries`: retry every dead letter that matches a filter, in the
//! background, and follow it (see [`crate::bulk_retry`]).

use super::AppState;
use super::dead_letters::filter;
use crate::bulk_retry::RetryRun;
use axum::extract::State;
use axum::http::{StatusCode, header};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;
use web::{
    Admin, ApiError, ApiJson, ApiPath, ApiQuery, ApiResponse, Envelope, ErrorEnvelope, PagePage,
    PagedEnvelope,
};

/// Which dead letters to retry: every one with status `dead` that all the given
/// conditions take (none given: every dead letter).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct StartRetries {
    /// Only this side effect, e.g. `welcome_email`.
    pub effect: Option<String>,
    /// Only those whose last error contains this text (any case), at most 200 characters.
    pub error: Option<String>,
    /// Only those at least this old, e.g. `15m`, `2h`, `7d`.
    pub older_than: Option<String>,
    /// Only those at most this old, e.g. `1h`.
    pub newer_than: Option<String>,
    /// Why (in the record of operator actions), at most 500 characters.
    pub reason: Option<String>,
}

/// Paging of the runs.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct RunsQuery {
    /// Page number, from 1 (default 1).
    page: Option<u32>,
    /// Items per page, 1 to 100 (default 20).
    per_page: Option<u32>,
}

/// Retries every dead letter that matches, in the background, a few at a time; follow
/// it at its `Location`.
#[utoipa::path(
    post, path = "/api/v1/dead-letters/retries", tag = "dead-letters", request_body = StartRetries,
    security(("bearer" = [])),
    responses(
        (status = 202, description = "Started: `data.total` dead letters to retry; progress, rate and ETA at `Location`", body = Envelope<RetryRun>),
        (status = 400, description = "Invalid filter", body = ErrorEnvelope),
        (status = 401, description = "No valid token", body = ErrorEnvelope),
        (status = 403, description = "Not an administrator", body = ErrorEnvelope),
        (status = 503, description = "Postgres or the signing keys are not answering, or the request timed out", body = ErrorEnvelope)
    )
)]
pub(super) async fn start(
    Admin(actor): Admin,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<StartRetries>,
) -> Result<ApiResponse, ApiError> {
    let filter = filter(
        None,
        body.effect,
        body.error,
        body.older_than.as_deref(),
        body.newer_than.as_deref(),
    )?;
    let reason = web::optional_reason(body.reason.as_deref())?;
    let run = state
        .retrier()
        .start(actor.id, filter, reason)
        .await
        .map_err(ApiError::internal)?;
    let location = format!("/api/v1/dead-letters/retries/{}", run.id);
    Ok(ApiResponse::with_status(StatusCode::ACCEPTED, run).header(header::LOCATION, &location))
}

/// The bulk retries, newest first.
#[utoipa::path(
    get, path = "/api/v1/dead-letters/retries", tag = "dead-letters", params(RunsQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Runs with their progress", body = PagedEnvelope<RetryRun>),
        (status = 400, description = "Invalid paging", body = ErrorEnvelope),
        (status = 401, description = "No valid token", body = ErrorEnvelope),
        (status = 403, description = "Not an administrator", body = ErrorEnvelope),
        (status = 503, description = "Postgres or the signing keys are not answering, or the request timed out", body = ErrorEnvelope)
    )
)]
pub(super) async fn list(
    _: Admin,
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<RunsQuery>,
) -> Result<ApiResponse, ApiError> {
    let (page, per_page) = PagePage::requested(query.page, query.per_page)?;
    let (items, total) = state
        .retrier()
        .list(page, per_page)
        .await
        .map_err(ApiError::internal)?;
    Ok(ApiResponse::ok(items).pagination(PagePage::new(page, per_page, total)))
}

/// One bulk retry: processed of total, resolved, failed, rate and ETA.
#[utoipa::path(
    get, path = "/api/v1/dead-letters/retries/{id}", tag = "dead-letters",
    params(("id" = Uuid, Path, description = "Run id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The run", body = Envelope<RetryRun>),
        (status = 400, description = "Malformed id", body = ErrorEnvelope),
        (status = 401, description = "No valid token", body = ErrorEnvelope),
        (status = 403, description = "Not an administrator", body = ErrorEnvelope),
        (status = 404, description = "No such run", body = ErrorEnvelope),
        (status = 503, description = "Postgres or the signing keys are not answering, or the request timed out", body = ErrorEnvelope)
    )
)]
pub(super) async fn show(
    _: Admin,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<ApiResponse, ApiError> {
    state
        .retrier()
        .find(id)
        .await
        .map_err(ApiError::internal)?
        .map(ApiResponse::ok)
        .ok_or_else(|| ApiError::not_found("bulk retry"))
}
