//! The shared middleware answers slow requests, panics and unknown routes with the
//! documented envelope, and always sets the request id.

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::routing::get;
use serde_json::Value;
use std::time::Duration;
use tower::ServiceExt;
use web::{HttpSettings, harden};

fn app() -> Router {
    let router = Router::new()
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                "late"
            }),
        )
        .route("/boom", get(boom))
        .route(
            "/ok",
            get(|| async { web::ApiResponse::ok(serde_json::json!({"fine": true})) }),
        );
    harden(
        router,
        &HttpSettings {
            request_timeout: Duration::from_millis(50),
            ..HttpSettings::default()
        },
    )
}

async fn boom() -> &'static str {
    panic!("secret internal detail")
}

async fn call(path: &str) -> (StatusCode, Value, Option<String>) {
    let response = app()
        .oneshot(Request::get(path).body(Body::empty()).expect("request"))
        .await
        .expect("response");
    let status = response.status();
    let request_id = response
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .expect("body");
    (
        status,
        serde_json::from_slice(&bytes).expect("JSON body"),
        request_id,
    )
}

#[tokio::test]
async fn a_request_over_the_timeout_is_answered_503() {
    let (status, body, request_id) = call("/slow").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["error"]["code"], "SERVICE_UNAVAILABLE");
    assert_eq!(body["meta"]["requestId"].as_str(), request_id.as_deref());
}

#[tokio::test]
async fn a_panic_is_a_500_without_internals() {
    let (status, body, _) = call("/boom").await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(body["error"]["code"], "INTERNAL_ERROR");
    assert!(!body.to_string().contains("secret internal detail"));
}

#[tokio::test]
async fn an_unknown_route_is_a_404_envelope() {
    let (status, body, request_id) = call("/nowhere").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["code"], "NOT_FOUND");
    assert!(request_id.is_some());
}

#[tokio::test]
async fn every_envelope_carries_the_time_of_its_answer_in_utc() {
    for path in ["/ok", "/nowhere", "/slow", "/boom"] {
        let before = chrono::Utc::now();
        let (_, body, _) = call(path).await;
        let stamp = body["meta"]["timestamp"]
            .as_str()
            .unwrap_or_else(|| panic!("{path}: {body}"));
        assert!(stamp.ends_with('Z'), "{path}: UTC: {stamp}");
        let at = chrono::DateTime::parse_from_rfc3339(stamp).expect("RFC 3339");
        let after = chrono::Utc::now();
        let slack = chrono::Duration::milliseconds(1);
        assert!(at >= before - slack && at <= after + slack, "{path}: {stamp}");
    }
}
