//! Hardening shared by both APIs: request ids and one access-log line per request,
//! security headers, CORS, a request timeout answered 503, a body-size limit, panics
//! turned into 500 envelopes, and enveloped 404/405 fallbacks.

use crate::context::{CONTEXT, RequestContext};
use crate::{ApiError, HttpSettings};
use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tracing::Instrument;
use uuid::Uuid;

/// The request-id header, read from the request when valid and set on every response.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Wraps a finished router in the shared middleware.
pub fn harden(router: Router, settings: &HttpSettings) -> Router {
    let timeout = settings.request_timeout;
    let hsts = settings.hsts;
    let mut router = router
        .fallback(|| async { ApiError::not_found("route") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "METHOD_NOT_ALLOWED",
                "method not allowed on this route",
            )
        })
        .layer(DefaultBodyLimit::max(settings.body_limit))
        .layer(middleware::from_fn(move |req, next| {
            with_timeout(timeout, req, next)
        }));
    if let Some(cors) = cors_layer(&settings.cors_origins) {
        router = router.layer(cors);
    }
    router
        .layer(middleware::from_fn(move |req, next| {
            security_headers(hsts, req, next)
        }))
        .layer(CatchPanicLayer::custom(|_| {
            ApiError::internal("handler panicked").into_response()
        }))
        .layer(middleware::from_fn(request_context))
}

fn cors_layer(origins: &[String]) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()))
    };
    Some(
        CorsLayer::new()
            .allow_origin(allow)
            .allow_methods([
                Method::GET,
                Method::POST,
                Method::PUT,
                Method::PATCH,
                Method::DELETE,
            ])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                header::IF_MATCH,
                HeaderName::from_static("idempotency-key"),
                HeaderName::from_static("x-consistency-token"),
                REQUEST_ID,
            ])
            .expose_headers([
                HeaderName::from_static("x-consistency-token"),
                header::ETAG,
                header::LOCATION,
                header::RETRY_AFTER,
                REQUEST_ID,
                HeaderName::from_static("ratelimit-limit"),
                HeaderName::from_static("ratelimit-remaining"),
                HeaderName::from_static("ratelimit-reset"),
            ])
            .max_age(Duration::from_secs(600)),
    )
}

/// A client's request id is kept when it is short, printable ASCII; else one is made.
fn request_id_from(req: &Request) -> String {
    req.headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_owned)
        .unwrap_or_else(|| Uuid::now_v7().to_string())
}

async fn request_context(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let request_id = request_id_from(&req);
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    // Every line logged while the request is handled carries these fields (the JSON
    // format flattens them into the line); `userId` once the caller is authenticated.
    // At `ERROR` level so that it is kept whenever any line is.
    let method = req.method().clone();
    let span = tracing::error_span!(
        "request",
        requestId = %request_id,
        method = %method,
        path = req.uri().path(),
        route = %route,
        userId = tracing::field::Empty,
    );
    let context = Arc::new(RequestContext {
        request_id: request_id.clone(),
        user_id: OnceLock::new(),
        span: span.clone(),
    });
    let mut response = CONTEXT
        .scope(context.clone(), next.run(req).instrument(span.clone()))
        .await;
    if let Some(matched) = response.extensions().get::<MatchedPath>() {
        span.record("route", matched.as_str());
    }
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    let status = response.status().as_u16();
    let seconds = started.elapsed().as_secs_f64();
    let route = response
        .extensions()
        .get::<MatchedPath>()
        .map_or(route.as_str(), |matched| matched.as_str());
    crate::metrics::record_request(method.as_str(), route, status, seconds);
    let duration_ms = seconds * 1000.0;
    span.in_scope(|| tracing::info!(status, duration_ms, "request finished"));
    response
}

async fn with_timeout(timeout: Duration, req: Request, next: Next) -> Response {
    match tokio::time::timeout(timeout, next.run(req)).await {
        Ok(response) => response,
        Err(_) => ApiError::unavailable("the request took too long").into_response(),
    }
}

async fn security_headers(hsts: bool, req: Request, next: Next) -> Response {
    let mut response = next.run(req).await;
    let headers = response.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    if hsts {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=63072000; includeSubDomains"),
        );
    }
    response
}
