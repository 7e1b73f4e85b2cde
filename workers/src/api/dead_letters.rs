//! `/api/v1/dead-letters`: list, show, retry and discard dead letters.

use super::AppState;
use crate::audit::{self, OperatorAction};
use crate::dead_letters::{self as store, DeadLetter, DeadLetterStatus, DeadLetterSummary, Discarded};
use crate::operator::{self, RetryError};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::IntoParams;
use uuid::Uuid;
use web::Admin;
use web::{ApiError, ApiPath, ApiQuery, ApiResponse, Envelope, ErrorEnvelope, PagePage, PagedEnvelope};

/// Largest page.
const MAX_PER_PAGE: u32 = 100;
/// Page size when none is asked for.
const DEFAULT_PER_PAGE: u32 = 20;

/// `page` (from 1, default 1) and `perPage` (1 to 100, default 20) of a list, or 400
/// naming the one out of range.
fn paging(page: Option<u32>, per_page: Option<u32>) -> Result<(u32, u32), ApiError> {
    let page = page.unwrap_or(1);
    if page == 0 {
        return Err(ApiError::invalid_field("page", "must be at least 1"));
    }
    let per_page = per_page.unwrap_or(DEFAULT_PER_PAGE);
    if !(1..=MAX_PER_PAGE).contains(&per_page) {
        return Err(ApiError::invalid_field("perPage", "must be between 1 and 100"));
    }
    Ok((page, per_page))
}

/// The longest discard reason.
const MAX_REASON: usize = 500;

/// Why a dead letter is discarded.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct DiscardQuery {
    /// Why (recorded in `operator_actions` with who discarded it), at most 500 characters.
    reason: Option<String>,
}

/// Paging of the operator actions.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ActionsQuery {
    /// Page number, from 1 (default 1).
    page: Option<u32>,
    /// Items per page, 1 to 100 (default 20).
    per_page: Option<u32>,
}

/// Paging and filtering of the list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Page number, from 1 (default 1).
    page: Option<u32>,
    /// Items per page, 1 to 100 (default 20).
    per_page: Option<u32>,
    /// Only dead letters with this status.
    status: Option<DeadLetterStatus>,
    /// Only dead letters of this side effect (e.g. `welcome_email`).
    effect: Option<String>,
}

/// Lists dead letters, newest first.
#[utoipa::path(
    get, path = "/api/v1/dead-letters", tag = "dead-letters", params(ListQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "`data`: dead letters without their events; `meta.pagination` in page mode",
         body = PagedEnvelope<DeadLetterSummary>),
        (status = 400, description = "Invalid paging or filter", body = ErrorEnvelope),
        (status = 401, description = "No valid token", body = ErrorEnvelope),
        (status = 403, description = "Not an administrator", body = ErrorEnvelope),
        (status = 503, description = "Postgres or the signing keys are not answering, or the request timed out", body = ErrorEnvelope)
    )
)]
pub(super) async fn list(
    _: Admin,
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<ApiResponse, ApiError> {
    let (page, per_page) = paging(query.page, query.per_page)?;
    let (items, total) = store::list(&state.pool, query.status, query.effect.as_deref(), page, per_page)
        .await
        .map_err(ApiError::internal)?;
    Ok(ApiResponse::ok(items).pagination(PagePage::new(page, per_page, total)))
}

/// Shows one dead letter with its event.
#[utoipa::path(
    get, path = "/api/v1/dead-letters/{id}", tag = "dead-letters",
    params(("id" = Uuid, Path, description = "Dead letter id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The dead letter", body = Envelope<DeadLetter>),
        (status = 400, description = "Malformed id", body = ErrorEnvelope),
        (status = 401, description = "No valid token", body = ErrorEnvelope),
        (status = 403, description = "Not an administrator", body = ErrorEnvelope),
        (status = 404, description = "No such dead letter", body = ErrorEnvelope),
        (status = 503, description = "Postgres or the signing keys are not answering, or the request timed out", body = ErrorEnvelope)
    )
)]
pub(super) async fn show(
    _: Admin,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<ApiResponse, ApiError> {
    store::find(&state.pool, id)
        .await
        .map_err(ApiError::internal)?
        .map(ApiResponse::ok)
        .ok_or_else(|| ApiError::not_found("dead letter"))
}

/// Runs the side effect again now (never twice: if it happened meanwhile, nothing is sent).
#[utoipa::path(
    post, path = "/api/v1/dead-letters/{id}/retry", tag = "dead-letters",
    params(("id" = Uuid, Path, description = "Dead letter id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Carried out; the dead letter is `resolved`", body = Envelope<DeadLetter>),
        (status = 400, description = "Malformed id", body = ErrorEnvelope),
        (status = 401, description = "No valid token", body = ErrorEnvelope),
        (status = 403, description = "Not an administrator", body = ErrorEnvelope),
        (status = 404, description = "No such dead letter", body = ErrorEnvelope),
        (status = 409, description = "`CONFLICT`: the dead letter is resolved or discarded", body = ErrorEnvelope),
        (status = 422, description = "`RETRY_FAILED`: it failed again; attempts and error were updated", body = ErrorEnvelope),
        (status = 503, description = "Postgres or the signing keys are not answering, or the request timed out", body = ErrorEnvelope)
    )
)]
pub(super) async fn retry(
    Admin(actor): Admin,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<ApiResponse, ApiError> {
    // Detached from the request: a client that gives up (or the request timeout) must
    // not cut the effect off between sending and recording it, nor its audit record.
    let task = tokio::spawn(async move {
        let retried = operator::retry(&state.pool, &state.ledger, &state.effects, id).await;
        let outcome = match &retried {
            Ok(_) => "resolved".to_owned(),
            Err(error) => format!("not resolved: {error}"),
        };
        if !matches!(retried, Err(RetryError::NotFound))
            && let Err(error) =
                audit::record(&state.pool, actor.id, "dead_letter.retry", id, None, &outcome).await
        {
            tracing::error!(error = %error, dead_letter.id = %id, "the retry was not recorded in operator_actions");
        }
        retried
    });
    match task.await.map_err(ApiError::internal)? {
        Ok(dead_letter) => Ok(ApiResponse::ok(dead_letter)),
        Err(RetryError::NotFound) => Err(ApiError::not_found("dead letter")),
        Err(RetryError::NotDead(status)) => Err(ApiError::conflict(format!(
            "dead letter {id} is {}; only dead letters with status dead can be retried",
            status.as_str()
        ))),
        Err(RetryError::Failed { message }) => Err(ApiError::unprocessable(
            "RETRY_FAILED",
            format!("retrying dead letter {id} failed: {message}"),
        )),
        Err(RetryError::Database(error)) => Err(ApiError::internal(error)),
    }
}

/// Gives a dead letter up: its side effect will not be carried out.
#[utoipa::path(
    delete, path = "/api/v1/dead-letters/{id}", tag = "dead-letters",
    params(("id" = Uuid, Path, description = "Dead letter id"), DiscardQuery),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Discarded (also when it already was); recorded in the operator actions"),
        (status = 400, description = "Malformed id", body = ErrorEnvelope),
        (status = 401, description = "No valid token", body = ErrorEnvelope),
        (status = 403, description = "Not an administrator", body = ErrorEnvelope),
        (status = 404, description = "No such dead letter", body = ErrorEnvelope),
        (status = 409, description = "`CONFLICT`: it is resolved already", body = ErrorEnvelope),
        (status = 503, description = "Postgres or the signing keys are not answering, or the request timed out", body = ErrorEnvelope)
    )
)]
pub(super) async fn discard(
    Admin(actor): Admin,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(query): ApiQuery<DiscardQuery>,
) -> Result<Response, ApiError> {
    let reason = query.reason.as_deref().map(str::trim).filter(|r| !r.is_empty());
    if reason.is_some_and(|r| r.chars().count() > MAX_REASON) {
        return Err(ApiError::invalid_field(
            "reason",
            "must be at most 500 characters",
        ));
    }
    // One transaction: a discard is never without its record, nor a record without it.
    let mut tx = state.pool.begin().await.map_err(ApiError::internal)?;
    let discarded = store::discard(&mut tx, id).await.map_err(ApiError::internal)?;
    if discarded == Discarded::Done {
        audit::record(&mut *tx, actor.id, "dead_letter.discard", id, reason, "discarded")
            .await
            .map_err(ApiError::internal)?;
    }
    tx.commit().await.map_err(ApiError::internal)?;
    match discarded {
        Discarded::Done | Discarded::AlreadyDiscarded => Ok(StatusCode::NO_CONTENT.into_response()),
        Discarded::NotFound => Err(ApiError::not_found("dead letter")),
        Discarded::AlreadyResolved => Err(ApiError::conflict(format!(
            "dead letter {id} is resolved; there is nothing to discard"
        ))),
    }
}

/// Lists what operators did (retries and discards), newest first.
#[utoipa::path(
    get, path = "/api/v1/operator-actions", tag = "dead-letters", params(ActionsQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Who did what, when, why, and how it ended", body = PagedEnvelope<OperatorAction>),
        (status = 400, description = "Invalid paging", body = ErrorEnvelope),
        (status = 401, description = "No valid token", body = ErrorEnvelope),
        (status = 403, description = "Not an administrator", body = ErrorEnvelope),
        (status = 503, description = "Postgres or the signing keys are not answering, or the request timed out", body = ErrorEnvelope)
    )
)]
pub(super) async fn actions(
    _: Admin,
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<ActionsQuery>,
) -> Result<ApiResponse, ApiError> {
    let (page, per_page) = paging(query.page, query.per_page)?;
    let (items, total) = audit::list(&state.pool, page, per_page)
        .await
        .map_err(ApiError::internal)?;
    Ok(ApiResponse::ok(items).pagination(PagePage::new(page, per_page, total)))
}

/// Reads the open dead letters per effect into the `dead_letters` gauge at scrape (0 for
/// an effect without any).
pub(super) fn collector(state: &AppState) -> web::metrics::Collector {
    let pool = state.pool.clone();
    let effects: Vec<&'static str> = state.effects.iter().map(|effect| effect.name()).collect();
    web::metrics::collector(move || {
        let (pool, effects) = (pool.clone(), effects.clone());
        async move {
            let counts: Vec<(String, i64)> = match sqlx::query_as(
                "SELECT effect, count(*) FROM dead_letters WHERE status = 'dead' GROUP BY effect",
            )
            .fetch_all(&pool)
            .await
            {
                Ok(counts) => counts,
                Err(error) => {
                    tracing::warn!(error = %error, "dead letters not counted for /metrics");
                    return;
                }
            };
            for effect in &effects {
                let open = counts
                    .iter()
                    .find(|(name, _)| name == effect)
                    .map_or(0, |(_, count)| *count);
                metrics::gauge!("dead_letters", "effect" => *effect).set(open as f64);
            }
        }
    })
}
