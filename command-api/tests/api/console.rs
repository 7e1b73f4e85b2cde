//! The operator console's page and relay, without the other services (a stand-in
//! answers for them where one is needed): every answer under `/console` carries a strict
//! CSP, the relay reaches only known paths under `/api/v1/` of the workers and the
//! projector, passes on JSON only, and a service that does not answer is a 503 with
//! `Retry-After`, never a 500.

use crate::helpers::{TestApp, error_code, spawn_with};
use axum::Router;
use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::sync::{Arc, Mutex};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_page_is_served_and_the_relay_stays_inside_the_two_services() {
    // Nothing listens on port 9 of this machine (discard).
    let app = spawn_with(|s| {
        s.console.workers_url = "http://127.0.0.1:9".into();
        s.console.projector_url = "http://127.0.0.1:9".into();
    })
    .await;
    let page = app.client.get(app.url("/console")).send().await.expect("sent");
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(
        csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    let html = page.text().await.expect("html");
    assert!(html.contains("/console/app.js") && html.contains("Dead letters"));
    for (path, kind) in [("/console/app.js", "javascript"), ("/console/app.css", "css")] {
        let file = app.client.get(app.url(path)).send().await.expect("sent");
        assert_eq!(file.status(), 200);
        assert!(
            file.headers()["content-type"]
                .to_str()
                .expect("ascii")
                .contains(kind)
        );
    }

    let missing = app
        .client
        .get(app.url("/console/nothing"))
        .send()
        .await
        .expect("sent");
    assert_eq!(missing.status(), 404);
    assert!(missing.headers().contains_key("content-security-policy"));

    let (status, code, answer) = error_code(
        app.client
            .get(app.url("/console/api/workers/dead-letters"))
            .bearer_auth("whatever")
            .send()
            .await
            .expect("sent"),
    )
    .await;
    assert_eq!((status, code.as_str()), (503, "SERVICE_UNAVAILABLE"), "{answer}");
    for path in [
        "/console/api/elsewhere/dead-letters",
        "/console/api/workers/dead-letters/%2E%2E/%2E%2E/metrics",
        "/console/api/workers/a//b",
    ] {
        let response = app.client.get(app.url(path)).send().await.expect("sent");
        assert_eq!(response.status(), 404, "{path}");
    }
    let put = app
        .client
        .put(app.url("/console/api/workers/dead-letters"))
        .send()
        .await
        .expect("sent");
    assert_eq!(put.status(), 405);
}

/// Requests a stand-in for the workers and the projector has received, as
/// `METHOD path?query`.
type Seen = Arc<Mutex<Vec<String>>>;

/// A stand-in for both services: records each request and answers JSON, except a
/// `DELETE` (204) and `/api/v1/dead-letters/html` (a web page).
async fn upstream() -> (String, Seen) {
    let seen = Seen::default();
    let record = seen.clone();
    let router = Router::new().fallback(move |request: Request| {
        let record = record.clone();
        async move { stand_in(&record, request) }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    tokio::spawn(async move { axum::serve(listener, router).await });
    (base, seen)
}

fn stand_in(seen: &Seen, request: Request) -> Response {
    let target = request
        .uri()
        .path_and_query()
        .map(ToString::to_string)
        .unwrap_or_default();
    seen.lock()
        .expect("lock")
        .push(format!("{} {target}", request.method()));
    if request.method() == axum::http::Method::DELETE {
        return StatusCode::NO_CONTENT.into_response();
    }
    if request.uri().path() == "/api/v1/dead-letters/html" {
        let page = "<html><script>alert(1)</script></html>";
        return ([(header::CONTENT_TYPE, "text/html")], page).into_response();
    }
    axum::Json(serde_json::json!({ "data": { "target": target } })).into_response()
}

async fn console_with_upstream() -> (TestApp, Seen) {
    let (base, seen) = upstream().await;
    let app = spawn_with(|s| {
        s.console.workers_url = base.clone();
        s.console.projector_url = base;
    })
    .await;
    (app, seen)
}

fn csp(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("content-security-policy")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_relays_json_and_empty_answers_with_the_query_under_its_csp() {
    let (app, seen) = console_with_upstream().await;
    let listed = app
        .client
        .get(app.url("/console/api/workers/dead-letters?status=dead&perPage=1"))
        .bearer_auth("token")
        .send()
        .await
        .expect("sent");
    assert_eq!(listed.status(), 200);
    assert!(
        csp(&listed).contains("default-src 'none'"),
        "{:?}",
        listed.headers()
    );
    assert!(
        listed.headers()["content-type"]
            .to_str()
            .expect("ascii")
            .starts_with("application/json")
    );
    let body: serde_json::Value = listed.json().await.expect("json");
    assert_eq!(
        body["data"]["target"],
        "/api/v1/dead-letters?status=dead&perPage=1"
    );

    let projections = app
        .client
        .get(app.url("/console/api/projector/projections"))
        .send()
        .await
        .expect("sent");
    assert_eq!(projections.status(), 200);

    let discarded = app
        .client
        .delete(
            app.url("/console/api/workers/dead-letters/0b1e9c7a-6d3e-4c55-9a57-1f2d6d7e8f90?reason=noise"),
        )
        .send()
        .await
        .expect("sent");
    assert_eq!(discarded.status(), 204);
    assert!(!csp(&discarded).is_empty());
    assert_eq!(
        *seen.lock().expect("lock"),
        [
            "GET /api/v1/dead-letters?status=dead&perPage=1",
            "GET /api/v1/projections",
            "DELETE /api/v1/dead-letters/0b1e9c7a-6d3e-4c55-9a57-1f2d6d7e8f90?reason=noise",
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_refuses_hidden_dot_segments_and_unknown_paths_without_calling_the_service() {
    let (app, seen) = console_with_upstream().await;
    for path in [
        // Tab, LF and CR are dropped by the URL parser: `.%09.` would leave as `..`.
        "/console/api/workers/.%09./.%09./metrics",
        "/console/api/workers/.%0A./.%0A./metrics",
        "/console/api/workers/.%0D./.%0D./metrics",
        "/console/api/workers/dead-letters/.%09./.%09./.%09./metrics",
        "/console/api/workers/dead-letters/.%0a./.%0d./metrics",
        "/console/api/workers/dead-letters/%09",
        "/console/api/workers/dead-letters/a%00b",
        // Encoded twice, a backslash, a dot segment spelled out.
        "/console/api/workers/dead-letters/%252e%252e/metrics",
        "/console/api/workers/dead-letters/..%5Cmetrics",
        "/console/api/workers/dead-letters/%2E%2E/%2E%2E/metrics",
        "/console/api/workers/dead-letters%2F..%2F..%2Fmetrics",
        // Not a path the service serves under /api/v1/, or another service's.
        "/console/api/workers/metrics",
        "/console/api/workers/health/ready",
        "/console/api/workers/projections",
        "/console/api/projector/dead-letters",
        "/console/api/projector/api-docs/openapi.json",
    ] {
        let response = app.client.get(app.url(path)).send().await.expect("sent");
        assert!(!csp(&response).is_empty(), "{path}");
        let (status, code, answer) = error_code(response).await;
        assert_eq!((status, code.as_str()), (404, "NOT_FOUND"), "{path}: {answer}");
    }
    assert!(seen.lock().expect("lock").is_empty(), "{:?}", seen.lock());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_answers_502_for_a_service_answer_that_is_not_json() {
    let (app, seen) = console_with_upstream().await;
    let response = app
        .client
        .get(app.url("/console/api/workers/dead-letters/html"))
        .send()
        .await
        .expect("sent");
    assert!(!csp(&response).is_empty());
    assert!(
        response.headers()["content-type"]
            .to_str()
            .expect("ascii")
            .starts_with("application/json")
    );
    let (status, code, answer) = error_code(response).await;
    assert_eq!((status, code.as_str()), (502, "BAD_GATEWAY"), "{answer}");
    assert!(!answer.to_string().contains("<script>"), "{answer}");
    assert_eq!(*seen.lock().expect("lock"), ["GET /api/v1/dead-letters/html"]);
}
