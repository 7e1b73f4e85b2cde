//! HTTP handlers of the query API, and the conditional-GET answer they share.

pub mod orders;
pub mod products;
pub mod users;
pub mod users_v2;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use web::ApiResponse;

/// `data` with `ETag: "<version>"` and `Cache-Control`, or an empty 304 with the same
/// headers when the request's `If-None-Match` names that version.
pub fn versioned(
    headers: &HeaderMap,
    data: &impl Serialize,
    version: impl std::fmt::Display,
    cache_control: &'static str,
) -> Response {
    let version = version.to_string();
    if matches_etag(headers, &version) {
        let etag = HeaderValue::from_str(&format!("\"{version}\""))
            .expect("a quoted integer is a valid header value");
        let headers = [
            (header::ETAG, etag),
            (header::CACHE_CONTROL, HeaderValue::from_static(cache_control)),
        ];
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    ApiResponse::ok(data)
        .etag(version)
        .header(header::CACHE_CONTROL, cache_control)
        .into_response()
}

/// Whether `If-None-Match` lists the current version (weak comparison, `*` matches all).
fn matches_etag(headers: &HeaderMap, version: &str) -> bool {
    let current = format!("\"{version}\"");
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == current)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn if_none_match(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(
                header::IF_NONE_MATCH,
                HeaderValue::from_str(value).expect("header"),
            );
        }
        headers
    }

    #[test]
    fn if_none_match_compares_quoted_versions_weakly() {
        assert!(matches_etag(&if_none_match(&["\"3\""]), "3"));
        assert!(matches_etag(&if_none_match(&["W/\"3\""]), "3"));
        assert!(matches_etag(&if_none_match(&["\"1\", \"3\""]), "3"));
        assert!(matches_etag(&if_none_match(&["\"1\"", "\"3\""]), "3"));
        assert!(matches_etag(&if_none_match(&["*"]), "3"));
        assert!(!matches_etag(&if_none_match(&["\"2\""]), "3"));
        assert!(!matches_etag(&if_none_match(&["3"]), "3"));
        assert!(!matches_etag(&HeaderMap::new(), "3"));
        assert!(matches_etag(&if_none_match(&["\"3.2\""]), "3.2"));
        assert!(!matches_etag(&if_none_match(&["\"3\""]), "3.2"));
    }
}
