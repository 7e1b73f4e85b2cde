//! Bodies are objects as documented: a JSON array in place of an object, at the top or
//! nested, is a 400 naming where, and writes nothing.

use crate::helpers::{error_code, spawn_app};
use serde_json::json;

fn field(body: &serde_json::Value) -> &str {
    body["error"]["details"][0]["field"].as_str().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registering_or_logging_in_with_an_array_body_is_a_validation_error() {
    let app = spawn_app().await;
    let register = app
        .post(
            "/api/v1/auth/register",
            json!(["a@example.com", "Name", "passw0rd1"]),
        )
        .await;
    let (status, code, body) = error_code(register).await;
    assert_eq!(
        (status, code.as_str(), field(&body)),
        (400, "VALIDATION_ERROR", "body")
    );
    assert_eq!(app.count("SELECT count(*) FROM events").await, 0);

    app.user("b@example.com").await;
    let login = app
        .post("/api/v1/auth/login", json!(["b@example.com", "password123"]))
        .await;
    let (status, code, body) = error_code(login).await;
    assert_eq!(
        (status, code.as_str(), field(&body)),
        (400, "VALIDATION_ERROR", "body")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_whose_lines_are_arrays_is_a_validation_error_naming_the_line() {
    let app = spawn_app().await;
    let (_, admin) = app.admin_token().await;
    let (user, token) = app.signed_in("lines@example.com").await;
    let mug = app.product(&admin, "MUG", 1250, 5).await;
    let response = app.order(&token, &user, json!([[mug, 2]])).await;
    let (status, code, body) = error_code(response).await;
    assert_eq!(
        (status, code.as_str(), field(&body)),
        (400, "VALIDATION_ERROR", "items[0]")
    );
    assert_eq!(app.stock(&mug).await, 5);
}
