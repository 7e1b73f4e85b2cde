//! The console's relay: `/console/api/{service}/{path}` to `{base}/api/v1/{path}` of the
//! workers or the projector, with the caller's token, its body and its query.
//!
//! What may go out is decided here, before any URL is built: the service is one of two,
//! the first segment one the service serves under `/api/v1/`, and no segment is `.` or
//! `..`, empty, or holds a control character, `%` or `\` (the URL parser drops tab, CR
//! and LF, so `.%09.` would otherwise leave as `..`). The URL is then built segment by
//! segment, never by formatting a string. What comes back is passed on only when it is
//! JSON (or empty, as a 204 is): anything else is a 502, so the page never receives a
//! body it did not ask for.

use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use url::Url;
use web::ApiError;

/// First segments the workers serve under `/api/v1/` (see `workers/src/api/mod.rs`).
const WORKERS: &[&str] = &["dead-letters", "consumers", "operator-actions"];

/// First segments the projector serves under `/api/v1/` (see `projector/src/http.rs`).
const PROJECTOR: &[&str] = &["projections"];

/// The relay's state: one client and the two bases it may reach.
#[derive(Clone)]
pub(super) struct Relay {
    /// Times out below the request timeout and follows no redirect.
    pub(super) http: reqwest::Client,
    /// The workers' base URL (`CONSOLE_WORKERS_URL`).
    pub(super) workers: Arc<Url>,
    /// The projector's base URL (`CONSOLE_PROJECTOR_URL`).
    pub(super) projector: Arc<Url>,
}

/// Passes one call of the page on to `/api/v1/{path}` of the workers or the projector.
pub(super) async fn relay_call(
    State(relay): State<Relay>,
    path: Result<Path<(String, String)>, PathRejection>,
    RawQuery(query): RawQuery,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    // A path that does not decode (not UTF-8) is no path of the console.
    let Path((service, path)) = path.map_err(|_| ApiError::not_found("console path"))?;
    let (base, known) = match service.as_str() {
        "workers" => (&relay.workers, WORKERS),
        "projector" => (&relay.projector, PROJECTOR),
        _ => return Err(ApiError::not_found("console service")),
    };
    if !matches!(method, Method::GET | Method::POST | Method::DELETE) {
        return Err(ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "METHOD_NOT_ALLOWED",
            "the console relays GET, POST and DELETE",
        ));
    }
    let url = upstream_url(base, known, &path, query.as_deref())
        .ok_or_else(|| ApiError::not_found("console path"))?;
    let mut request = relay
        .http
        .request(method, url)
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
    let mut response = if bytes.is_empty() {
        // A 204, or an error without a body: nothing to pass on but the status.
        status.into_response()
    } else if content_type.as_ref().is_some_and(is_json) {
        let mut response = (status, bytes).into_response();
        if let Some(value) = content_type {
            response.headers_mut().insert(header::CONTENT_TYPE, value);
        }
        response
    } else {
        tracing::warn!(
            service,
            http.status_code = status.as_u16(),
            content_type = ?content_type,
            "console relay: the service answered something other than JSON"
        );
        return Err(ApiError::new(
            StatusCode::BAD_GATEWAY,
            "BAD_GATEWAY",
            format!("the {service} service answered something other than JSON"),
        ));
    };
    if let Some(value) = retry_after {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    Ok(response)
}

/// `{base}/api/v1/{path}?{query}`, or `None` when `path` is not one the relay passes on:
/// its first segment not in `known`, or any segment unsafe ([`safe_segment`]).
fn upstream_url(base: &Url, known: &[&str], path: &str, query: Option<&str>) -> Option<Url> {
    let segments: Vec<&str> = path.split('/').collect();
    let first = segments.first()?;
    if !known.contains(first) || !segments.iter().all(|s| safe_segment(s)) {
        return None;
    }
    let mut url = base.clone();
    url.path_segments_mut()
        .ok()?
        .pop_if_empty()
        .extend(["api", "v1"])
        .extend(&segments);
    url.set_query(query.filter(|q| !q.is_empty()));
    Some(url)
}

/// Whether one decoded segment is passed on as it is: not empty, not `.` or `..` even
/// once tab, CR and LF are dropped (as the URL parser drops them), and without a control
/// character, `%` (a second round of decoding) or `\` (a separator to some servers).
fn safe_segment(segment: &str) -> bool {
    let parsed: String = segment
        .chars()
        .filter(|c| !matches!(c, '\t' | '\n' | '\r'))
        .collect();
    !matches!(parsed.as_str(), "" | "." | "..")
        && !segment.chars().any(|c| c.is_control() || c == '%' || c == '\\')
}

/// Whether a `Content-Type` is JSON: `application/json`, with parameters or without.
fn is_json(value: &HeaderValue) -> bool {
    value
        .to_str()
        .ok()
        .and_then(|v| v.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(base: &str, path: &str, query: Option<&str>) -> Option<String> {
        let base = Url::parse(base).expect("base");
        upstream_url(&base, WORKERS, path, query).map(String::from)
    }

    #[test]
    fn a_known_path_goes_under_api_v1_with_its_query() {
        assert_eq!(
            url(
                "http://workers:8082",
                "dead-letters",
                Some("status=dead&perPage=1")
            )
            .as_deref(),
            Some("http://workers:8082/api/v1/dead-letters?status=dead&perPage=1")
        );
        assert_eq!(
            url("http://host/workers/", "dead-letters/retries", None).as_deref(),
            Some("http://host/workers/api/v1/dead-letters/retries")
        );
    }

    #[test]
    fn dot_segments_hidden_by_tab_cr_or_lf_are_refused() {
        for path in [
            ".\t./.\t./metrics",
            "dead-letters/.\n./.\n./metrics",
            "dead-letters/.\r./metrics",
            "dead-letters/\t.",
            "dead-letters/..",
            "dead-letters/.",
            "dead-letters//x",
            "dead-letters/",
            "dead-letters/%2e%2e",
            "dead-letters/a\\b",
            "dead-letters/a\u{0}b",
            "dead-letters/a\u{7f}b",
            "dead-letters/a\u{85}b",
        ] {
            assert_eq!(url("http://workers", path, None), None, "{path:?}");
        }
    }

    #[test]
    fn only_the_services_own_first_segments_are_relayed() {
        for path in [
            "metrics",
            "health/ready",
            "projections",
            "api-docs/openapi.json",
            "",
        ] {
            assert_eq!(url("http://workers", path, None), None, "{path:?}");
        }
    }

    #[test]
    fn only_json_answers_are_json() {
        for (value, json) in [
            ("application/json", true),
            ("Application/JSON; charset=utf-8", true),
            ("text/html", false),
            ("application/json-seq", false),
            ("application/problem+json", false),
        ] {
            assert_eq!(is_json(&HeaderValue::from_static(value)), json, "{value}");
        }
    }
}
