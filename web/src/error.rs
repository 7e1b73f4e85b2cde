//! The error envelope and the one error type every handler returns.
//!
//! Policy: each error carries its HTTP status, a stable machine code and a message that
//! is safe for the client. Internal errors are logged once, here, with the request id,
//! and the client sees only `INTERNAL_ERROR`.

use crate::context::current_request_id;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::json;
use std::fmt;

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
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "RATE_LIMITED",
            "too many requests; retry later",
        )
        .with_header(header::RETRY_AFTER, &retry_after_secs.to_string())
    }

    /// 503 `SERVICE_UNAVAILABLE`.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "SERVICE_UNAVAILABLE", message)
    }

    /// 500 `INTERNAL_ERROR`; the cause is logged, never sent.
    pub fn internal(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        let mut api = Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL_ERROR",
            "an internal error occurred",
        );
        api.0.internal = Some(error.into());
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

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let this = *self.0;
        if let Some(internal) = &this.internal {
            tracing::error!(error = %internal, error.debug = ?internal, "request failed");
        }
        let error = json!({ "code": this.code, "message": this.message, "details": this.details });
        let body = json!({ "error": error, "meta": { "requestId": current_request_id() } });
        let mut response = (this.status, axum::Json(body)).into_response();
        response.headers_mut().extend(this.headers);
        response
    }
}
