//! The operator console: one web page at `/console` (its files in `command-api/console/`,
//! built into the binary). The page signs an administrator in on this API, then reads
//! and acts on the projector and the workers through `/console/api/{service}/{path}`, a
//! relay to their `/api/v1/{path}` that passes the caller's token on; so the page has one
//! origin (no CORS to configure) and every action is the administrator's own, checked and
//! audited by the service that does it.
//!
//! The relay is hand-written (a few lines over reqwest) rather than a proxy crate: it
//! forwards three headers to two fixed bases, and nothing else.

use crate::settings::ConsoleSettings;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use std::sync::Arc;
use std::time::Duration;
use web::ApiError;

const INDEX: &str = include_str!("../console/index.html");
const SCRIPT: &str = include_str!("../console/app.js");
const STYLE: &str = include_str!("../console/app.css");

/// Only the page's own files run, and it talks to its own origin only.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
     img-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Longest a relayed call may take (below the request timeout, so the page gets the
/// relay's 503 rather than the timeout's).
const RELAY_TIMEOUT: Duration = Duration::from_secs(8);

#[derive(Clone)]
struct Relay {
    http: reqwest::Client,
    settings: Arc<ConsoleSettings>,
}

/// The page, its files and the relay.
pub fn routes(settings: &ConsoleSettings) -> Router {
    let http = reqwest::Client::builder()
        .timeout(RELAY_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("the relay's HTTP client builds from static settings");
    let relay = Relay {
        http,
        settings: Arc::new(settings.clone()),
    };
    Router::new()
        .route("/console", get(index))
        .route("/console/", get(index))
        .route(
            "/console/app.js",
            get(|| async { file("text/javascript; charset=utf-8", SCRIPT) }),
        )
        .route(
            "/console/app.css",
            get(|| async { file("text/css; charset=utf-8", STYLE) }),
        )
        .route("/console/api/{service}/{*path}", any(relay_call))
        .with_state(relay)
}

async fn index() -> Response {
    let mut response = file("text/html; charset=utf-8", INDEX);
    response
        .headers_mut()
        .insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    response
}

fn file(content_type: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}

/// Passes one call of the page on to `/api/v1/{path}` of the workers or the projector.
async fn relay_call(
    State(relay): State<Relay>,
    Path((service, path)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let base = match service.as_str() {
        "workers" => &relay.settings.workers_url,
        "projector" => &relay.settings.projector_url,
        _ => return Err(ApiError::not_found("console service")),
    };
    if !matches!(method, Method::GET | Method::POST | Method::DELETE) {
        return Err(ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "METHOD_NOT_ALLOWED",
            "the console relays GET, POST and DELETE",
        ));
    }
    // Only paths under /api/v1/ of the service: no way out of it.
    let safe = path
        .split('/')
        .all(|segment| !segment.is_empty() && segment != "." && segment != ".." && !segment.contains('\\'));
    if !safe || path.contains('%') && path.to_ascii_lowercase().contains("%2e") {
        return Err(ApiError::not_found("console path"));
    }
    let mut url = format!("{base}/api/v1/{path}");
    if let Some(query) = query.filter(|q| !q.is_empty()) {
        url.push('?');
        url.push_str(&query);
    }
    let mut request = relay
        .http
        .request(method, &url)
        .body(body)
        .header("x-forwarded-by", "command-api console");
    for name in [header::AUTHORIZATION, header::CONTENT_TYPE] {
        if let Some(value) = headers.get(&name) {
            request = request.header(name, value);
        }
    }
    let request_id = web::current_request_id();
    if !request_id.is_empty() {
        request = request.header("x-request-id", request_id.as_str());
    }
    let answer = request.send().await.map_err(|error| {
        tracing::warn!(error = %error, service, "console relay: the service did not answer");
        ApiError::unavailable(format!("the {service} service is not answering; retry shortly"))
    })?;
    let status = answer.status();
    let content_type = answer.headers().get(header::CONTENT_TYPE).cloned();
    let retry_after = answer.headers().get(header::RETRY_AFTER).cloned();
    let bytes = answer.bytes().await.map_err(|error| {
        tracing::warn!(error = %error, service, "console relay: the answer broke off");
        ApiError::unavailable(format!("the {service} service's answer broke off; retry shortly"))
    })?;
    let mut response = (status, bytes).into_response();
    if let Some(value) = content_type {
        response.headers_mut().insert(header::CONTENT_TYPE, value);
    }
    if let Some(value) = retry_after {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    Ok(response)
}
