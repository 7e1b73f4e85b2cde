//! Bad input never gets a 500; headers, ids, docs and health.

use crate::helpers::{body, error_code, spawn_app};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_json_is_a_400_validation_error() {
    let app = spawn_app().await;
    let response = app
        .client
        .post(app.url("/api/v1/auth/register"))
        .header("content-type", "application/json")
        .body("{\"email\": ")
        .send()
        .await
        .expect("sent");
    let (status, code, _) = error_code(response).await;
    assert_eq!((status, code.as_str()), (400, "VALIDATION_ERROR"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_content_type_is_415() {
    let app = spawn_app().await;
    let response = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .body("email=a")
        .send()
        .await
        .expect("sent");
    let (status, code, _) = error_code(response).await;
    assert_eq!((status, code.as_str()), (415, "UNSUPPORTED_MEDIA_TYPE"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_unknown_and_mistyped_fields_name_the_field() {
    let app = spawn_app().await;
    for (payload, field) in [
        (json!({"email": "a@b.io", "name": "A"}), "password"),
        (
            json!({"email": "a@b.io", "name": "A", "password": "password123", "role": "admin"}),
            "role",
        ),
        (
            json!({"email": 42, "name": "A", "password": "password123"}),
            "email",
        ),
    ] {
        let (status, code, body) = error_code(app.post("/api/v1/auth/register", payload).await).await;
        assert_eq!((status, code.as_str()), (400, "VALIDATION_ERROR"));
        assert_eq!(body["error"]["details"][0]["field"], field);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_over_one_mebibyte_are_413() {
    let app = spawn_app().await;
    let huge = json!({"email": "a@b.io", "name": "x".repeat(1024 * 1024 + 10), "password": "password123"});
    let (status, code, _) = error_code(app.post("/api/v1/auth/register", huge).await).await;
    assert_eq!((status, code.as_str()), (413, "PAYLOAD_TOO_LARGE"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_that_are_missing_garbage_or_from_another_key_are_401() {
    let app = spawn_app().await;
    let id = app.user("t@example.com").await;
    let foreign_key = auth::SigningKey::generate();
    let foreign = auth::TokenIssuer::new(foreign_key, "cqrs-backend", chrono::Duration::minutes(5))
        .issue(id.parse().expect("uuid"), domain::user::Role::Admin)
        .expect("signed")
        .token;
    for token in [None, Some("garbage".to_owned()), Some(foreign)] {
        let mut request = app.client.delete(app.url(&format!("/api/v1/users/{id}")));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let (status, code, _) = error_code(request.send().await.expect("sent")).await;
        assert_eq!((status, code.as_str()), (401, "UNAUTHORIZED"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn responses_carry_the_request_id_and_security_headers() {
    let app = spawn_app().await;
    let response = app
        .client
        .get(app.url("/health/live"))
        .header("x-request-id", "trace-me-42")
        .send()
        .await
        .expect("sent");
    assert_eq!(response.headers()["x-request-id"], "trace-me-42");
    assert_eq!(response.headers()["x-content-type-options"], "nosniff");
    assert_eq!(response.headers()["x-frame-options"], "DENY");
    assert_eq!(response.headers()["referrer-policy"], "no-referrer");
    assert_eq!(body(response).await["meta"]["requestId"], "trace-me-42");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_request_id_becomes_the_events_correlation_id() {
    let app = spawn_app().await;
    app.client
        .post(app.url("/api/v1/auth/register"))
        .header("x-request-id", "corr-123")
        .json(&json!({"email": "c@example.com", "name": "C", "password": "password123"}))
        .send()
        .await
        .expect("sent");
    let correlation: String = sqlx::query_scalar("SELECT correlation_id FROM events")
        .fetch_one(&app.db.pool)
        .await
        .expect("event");
    assert_eq!(correlation, "corr-123");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_routes_and_methods_get_the_error_envelope() {
    let app = spawn_app().await;
    let (status, code, _) = error_code(
        app.client
            .get(app.url("/api/v1/nothing"))
            .send()
            .await
            .expect("sent"),
    )
    .await;
    assert_eq!((status, code.as_str()), (404, "NOT_FOUND"));
    let (status, _, _) = error_code(
        app.client
            .get(app.url("/api/v1/auth/login"))
            .send()
            .await
            .expect("sent"),
    )
    .await;
    assert_eq!(status, 405);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_docs_are_served() {
    let app = spawn_app().await;
    assert_eq!(
        app.client
            .get(app.url("/health/live"))
            .send()
            .await
            .expect("sent")
            .status(),
        200
    );
    let ready = app
        .client
        .get(app.url("/health/ready"))
        .send()
        .await
        .expect("sent");
    assert_eq!(ready.status(), 200);
    assert_eq!(body(ready).await["data"]["checks"]["postgres"], "up");
    let openapi = body(
        app.client
            .get(app.url("/openapi.json"))
            .send()
            .await
            .expect("sent"),
    )
    .await;
    for (path, method) in [
        ("/api/v1/auth/register", "post"),
        ("/api/v1/auth/login", "post"),
        ("/api/v1/users/{id}", "patch"),
        ("/api/v1/users/{id}", "delete"),
        ("/api/v1/products/{id}", "patch"),
        ("/api/v1/users/{id}/orders", "post"),
        ("/api/v1/products/{id}/reviews", "post"),
        ("/api/v1/products/{id}/reviews/{reviewId}", "patch"),
        ("/api/v1/products/{id}/reviews/{reviewId}", "delete"),
    ] {
        assert!(
            openapi["paths"][path][method].is_object(),
            "{method} {path} is documented"
        );
    }
    // The shared error answers reach the paths the router adds, too.
    let patch = &openapi["paths"]["/api/v1/products/{id}"]["patch"]["responses"];
    for status in ["401", "415", "503"] {
        assert!(
            patch[status].is_object(),
            "PATCH /api/v1/products/{{id}} documents {status}"
        );
    }
    let docs = app.client.get(app.url("/docs/")).send().await.expect("sent");
    assert_eq!(docs.status(), 200);
    assert!(docs.text().await.expect("html").contains("swagger"));
    // Every write documents the read-your-writes token of its answer.
    let created = &openapi["paths"]["/api/v1/users/{id}/orders"]["post"]["responses"]["201"];
    assert!(created["headers"]["X-Consistency-Token"].is_object(), "{created}");

    // The event catalogue, for subscribers: AsyncAPI and a readable page, both public.
    let catalogue = app
        .client
        .get(app.url("/asyncapi.json"))
        .send()
        .await
        .expect("sent");
    assert_eq!(catalogue.status(), 200);
    let catalogue: serde_json::Value = catalogue.json().await.expect("JSON");
    assert_eq!(catalogue["asyncapi"], "3.0.0");
    // The deployment's own subjects (each test has its own prefix).
    let address = catalogue["channels"]["order_placed"]["address"]
        .as_str()
        .expect("address");
    assert!(address.ends_with(".order.placed"), "{address}");
    let page = app.client.get(app.url("/asyncapi")).send().await.expect("sent");
    assert_eq!(page.status(), 200);
    assert!(
        page.headers()["content-type"]
            .to_str()
            .expect("ascii")
            .starts_with("text/html")
    );
    assert!(
        page.text()
            .await
            .expect("html")
            .contains(".user.registered</code>")
    );
}
