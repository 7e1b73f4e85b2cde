//! The error envelope and the one error type every handler returns.
//!
//! Policy: each error carries its HTTP status, a stable machine code and a message that
//! is safe for the client. Internal errors are logged once, here, with the request id,
//! and the client sees only `INTERNAL_ERROR`. An error whose cause is a dependency that
//! is away (Postgres unreachable or restarting, the pool exhausted, a connection lost, a
//! statement cancelled) is not a bug: [`ApiError::internal`] recognises it anywhere in
//! the error's source chain and answers `503 SERVICE_UNAVAILABLE` with `Retry-After`,
//! so no handler has to tell the two apart.

use crate::context::{answer_timestamp, current_request_id};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::json;
use std::error::Error as StdError;
use std::fmt;

/// `Retry-After` of every 503: long enough for a restarting dependency, short enough
/// that clients come back as soon as a replica or the database is back.
pub const RETRY_AFTER_SECONDS: u64 = 2;

/// One field at fault.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FieldError {
    /// The field (`email`, `items[0].quantity`, or a query or path parameter).
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

impl FieldError {
    /// A field error.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// An error answer (boxed: errors are rare, results are not, so `Result` stays small).
pub struct ApiError(Box<Inner>);

struct Inner {
    status: StatusCode,
    code: &'static str,
    message: String,
    details: Vec<FieldError>,
    headers: HeaderMap,
    internal: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl fmt::Debug for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiError")
            .field("status", &self.0.status)
            .field("code", &self.0.code)
            .field("message", &self.0.message)
            .field("internal", &self.0.internal)
            .finish()
    }
}

impl ApiError {
    /// Any status, code and message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self(Box::new(Inner {
            status,
            code,
            message: message.into(),
            details: Vec::new(),
            headers: HeaderMap::new(),
            internal: None,
        }))
    }

    /// 400 `VALIDATION_ERROR` with field details.
    pub fn validation(details: Vec<FieldError>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "VALIDATION_ERROR",
            "the request is not valid",
        )
        .with_details(details)
    }

    /// 400 `VALIDATION_ERROR` for one field.
    pub fn invalid_field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::validation(vec![FieldError::new(field, message)])
    }

    /// 400 `VALIDATION_ERROR` for the request as a whole (e.g. malformed JSON).
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "VALIDATION_ERROR", message)
    }

    /// 401 `UNAUTHORIZED`, with `WWW-Authenticate: Bearer`.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", message)
            .with_header(header::WWW_AUTHENTICATE, "Bearer")
    }

    /// 403 `FORBIDDEN`.
    pub fn forbidden() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "FORBIDDEN",
            "you are not allowed to do this",
        )
    }

    /// 404 `NOT_FOUND`.
    pub fn not_found(what: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, "NOT_FOUND", format!("{what} not found"))
    }

    /// 409 `CONFLICT`: a duplicate.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "CONFLICT", message)
    }

    /// 409 `VERSION_CONFLICT`: concurrent writers kept colliding.
    pub fn version_conflict() -> Self {
        Self::new(
            StatusCode::CONFLICT,
            "VERSION_CONFLICT",
            "the resource was changed concurrently; retry",
        )
    }

    /// 412 `PRECONDITION_FAILED`: a stale `If-Match`.
    pub fn precondition_failed(current_version: i64) -> Self {
        Self::new(
            StatusCode::PRECONDITION_FAILED,
            "PRECONDITION_FAILED",
            format!("If-Match does not match the current version ({current_version})"),
        )
        .with_header(header::ETAG, &format!("\"{current_version}\""))
    }

    /// 422 with a business-rule code.
    pub fn unprocessable(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
    }

    /// 429 `RATE_LIMITED` with `Retry-After`.
    pub fn rate_limited(retry_after_secs: u64) -> Self {
        Self::rate_limited_because(retry_after_secs, "too many requests; retry later")
    }

    /// 429 `RATE_LIMITED` with `Retry-After` and this message.
    pub fn rate_limited_because(retry_after_secs: u64, message: impl Into<String>) -> Self {
        Self::new(StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED", message)
            .with_header(header::RETRY_AFTER, &retry_after_secs.to_string())
    }

    /// 503 `SERVICE_UNAVAILABLE` with `Retry-After`.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "SERVICE_UNAVAILABLE", message)
            .with_header(header::RETRY_AFTER, &RETRY_AFTER_SECONDS.to_string())
    }

    /// 500 `INTERNAL_ERROR`; the cause is logged, never sent. When the cause is a
    /// dependency being away ([`is_unavailability`]) the answer is
    /// [`ApiError::unavailable`] instead, logged as a warning.
    pub fn internal(error: impl Into<Box<dyn StdError + Send + Sync>>) -> Self {
        let error = error.into();
        if is_unavailability(&*error) {
            tracing::warn!(error = %chain(&*error), "a dependency is unavailable");
            return Self::unavailable("a dependency is temporarily unavailable; retry shortly");
        }
        let mut api = Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL_ERROR",
            "an internal error occurred",
        );
        api.0.internal = Some(error);
        api
    }

    /// Adds details.
    pub fn with_details(mut self, details: Vec<FieldError>) -> Self {
        self.0.details = details;
        self
    }

    /// Adds a header.
    pub fn with_header(mut self, name: HeaderName, value: &str) -> Self {
        if let Ok(value) = HeaderValue::from_str(value) {
            self.0.headers.insert(name, value);
        }
        self
    }

    /// The status.
    pub fn status(&self) -> StatusCode {
        self.0.status
    }

    /// The machine code.
    pub fn code(&self) -> &'static str {
        self.0.code
    }

    /// The field details.
    pub fn details(&self) -> &[FieldError] {
        &self.0.details
    }
}

/// Whether `error`, or anything in its source chain, says a dependency is away rather
/// than that the code is wrong: a Postgres connection that cannot be made or was lost,
/// a pool with no connection free in time, the server shutting down or refusing
/// connections, a cancelled statement, a serialization failure, or any I/O error.
pub fn is_unavailability(error: &(dyn StdError + 'static)) -> bool {
    std::iter::successors(Some(error), |&e| e.source()).any(|e| {
        e.downcast_ref::<std::io::Error>().is_some()
            || e.downcast_ref::<sqlx::Error>().is_some_and(sqlx_unavailable)
            // Shared results (one fetch answering many waiters) hold the error in an Arc.
            || e.downcast_ref::<std::sync::Arc<sqlx::Error>>()
                .is_some_and(|e| sqlx_unavailable(e))
    })
}

fn sqlx_unavailable(error: &sqlx::Error) -> bool {
    use sqlx::Error;
    match error {
        Error::PoolTimedOut | Error::PoolClosed | Error::Io(_) | Error::Tls(_) | Error::WorkerCrashed => true,
        Error::Protocol(_) => true,
        Error::Database(db) => db.code().is_some_and(|code| {
            // 08: connection exception; 53: insufficient resources (e.g. too many
            // connections); 57P0x: shutting down / starting up; 57014: statement
            // cancelled (statement_timeout); 40001/40P01: serialization failure, deadlock.
            code.starts_with("08")
                || code.starts_with("53")
                || code.starts_with("57P")
                || matches!(&*code, "57014" | "40001" | "40P01")
        }),
        _ => false,
    }
}

/// `error` and its causes, for one log field.
fn chain(error: &(dyn StdError + 'static)) -> String {
    std::iter::successors(Some(error), |&e| e.source())
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(": ")
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let this = *self.0;
        if let Some(internal) = &this.internal {
            tracing::error!(error = %internal, error.debug = ?internal, "request failed");
        }
        let error = json!({ "code": this.code, "message": this.message, "details": this.details });
        let meta = json!({ "requestId": current_request_id(), "timestamp": answer_timestamp() });
        let body = json!({ "error": error, "meta": meta });
        let mut response = (this.status, axum::Json(body)).into_response();
        response.headers_mut().extend(this.headers);
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A library error wrapping a database error, as the event store's does.
    #[derive(Debug, thiserror::Error)]
    enum StoreLike {
        #[error("database error: {0}")]
        Database(#[from] sqlx::Error),
    }

    /// A command error that is transparent over the store's.
    #[derive(Debug, thiserror::Error)]
    enum CommandLike {
        #[error(transparent)]
        Store(#[from] StoreLike),
    }

    /// A result shared by many waiters, as single-flight reads hand out.
    #[derive(Debug, thiserror::Error)]
    #[error("shared fetch failed")]
    struct Shared(#[source] std::sync::Arc<sqlx::Error>);

    fn retry_after(error: &ApiError) -> Option<&str> {
        error
            .0
            .headers
            .get(header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
    }

    #[test]
    fn a_database_that_is_away_is_a_503_with_retry_after_however_deeply_wrapped() {
        let refused = || sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        for error in [
            ApiError::internal(sqlx::Error::PoolTimedOut),
            ApiError::internal(StoreLike::from(sqlx::Error::PoolTimedOut)),
            ApiError::internal(CommandLike::from(StoreLike::from(sqlx::Error::PoolClosed))),
            ApiError::internal(CommandLike::from(StoreLike::from(refused()))),
            ApiError::internal(Shared(std::sync::Arc::new(sqlx::Error::PoolTimedOut))),
        ] {
            assert_eq!(error.status(), StatusCode::SERVICE_UNAVAILABLE, "{error:?}");
            assert_eq!(error.code(), "SERVICE_UNAVAILABLE");
            assert_eq!(retry_after(&error), Some("2"));
        }
    }

    #[test]
    fn a_bug_stays_a_500_without_its_cause_in_the_answer() {
        let error = ApiError::internal(StoreLike::from(sqlx::Error::RowNotFound));
        assert_eq!(error.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(error.0.message, "an internal error occurred");
        assert_eq!(ApiError::internal("invariant broken").code(), "INTERNAL_ERROR");
    }

    #[test]
    fn every_503_carries_retry_after() {
        assert_eq!(retry_after(&ApiError::unavailable("x")), Some("2"));
    }
}
