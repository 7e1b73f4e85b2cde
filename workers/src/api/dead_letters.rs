//! `/api/v1/dead-letters`: list, show, retry and discard dead letters.

use super::AppState;
use crate::dead_letters::{
    self as store, DeadLetter, DeadLetterStatus, DeadLetterSummary, Discarded, Filter,
};
use crate::operator::{self, RetryError};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use runtime::audit::{self, OperatorAction};
use serde::Deserialize;
use utoipa::IntoParams;
use uuid::Uuid;
use web::Admin;
use web::{ApiError, ApiPath, ApiQuery, ApiResponse, Envelope, ErrorEnvelope, PagePage, PagedEnvelope};

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
    /// Only dead letters whose last error contains this text (any case), at most 200
    /// characters.
    error: Option<String>,
    /// Only dead letters at least this old (since they became dead letters): a duration
    /// such as `90s`, `15m`, `2h` or `7d`.
    older_than: Option<String>,
    /// Only dead letters at most this old, e.g. `1h`.
    newer_than: Option<String>,
}

/// The longest `error` filter.
const MAX_ERROR_FILTER: usize = 200;
/// The longest age a filter takes: ten years.
const MAX_AGE: std::time::Duration = std::time::Duration::from_secs(10 * 366 * 24 * 3600);

/// An age of a filter (`90s`, `15m`, `2h`, `7d`, `1h 30m`) in seconds, or 400 naming
/// `field`.
pub(super) fn age(field: &str, raw: Option<&str>) -> Result<Option<u64>, ApiError> {
    let Some(raw) = raw else {
        return Ok(None);
    };
    match humantime::parse_duration(raw.trim()) {
        Ok(age) if age <= MAX_AGE => Ok(Some(age.as_secs())),
        Ok(_) => Err(ApiError::invalid_field(field, "must be at most ten years")),
        Err(_) => Err(ApiError::invalid_field(
            field,
            "must be a duration such as 90s, 15m, 2h or 7d",
        )),
    }
}

/// The filter of a list or a bulk retry, checked.
pub(super) fn filter(
    status: Option<DeadLetterStatus>,
    effect: Option<String>,
    error: Option<String>,
    older_than: Option<&str>,
    newer_than: Option<&str>,
) -> Result<Filter, ApiError> {
    let error = error.map(|e| e.trim().to_owned()).filter(|e| !e.is_empty());
    if error
        .as_ref()
        .is_some_and(|e| e.chars().count() > MAX_ERROR_FILTER)
    {
        return Err(ApiError::invalid_field("error", "must be at most 200 characters"));
    }
    if error.as_ref().is_some_and(|e| e.contains('\0')) {
        return Err(ApiError::invalid_field("error", "must not contain NUL"));
    }
    if effect.as_ref().is_some_and(|e| e.contains('\0')) {
        return Err(ApiError::invalid_field("effect", "must not contain NUL"));
    }
    Ok(Filter {
        status,
        effect,
        error,
        older_than_seconds: age("olderThan", older_than)?,
        newer_than_seconds: age("newerThan", newer_than)?,
        created_until: None,
        created_since: None,
    })
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
    let (page, per_page) = PagePage::requested(query.page, query.per_page)?;
    let filter = filter(
        query.status,
        query.effect,
        query.error,
        query.older_than.as_deref(),
        query.newer_than.as_deref(),
    )?;
    let (items, total) = store::list(&state.pool, &filter, page, per_page)
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
    if reason.is_some_and(|r| r.chars().count() > web::MAX_REASON) {
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
    let (page, per_page) = PagePage::requested(query.page, query.per_page)?;
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
