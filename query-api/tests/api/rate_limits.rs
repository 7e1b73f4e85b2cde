//! The API-wide rate limit of the query API: per user, else per address, in Redis.

use crate::helpers::spawn_app_with;
use domain::user::Role;
use reqwest::StatusCode;
use serde_json::Value;
use uuid::Uuid;
use web::rate_limit::Quota;

fn remaining(response: &reqwest::Response) -> Option<u32> {
    response
        .headers()
        .get("ratelimit-remaining")?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

#[tokio::test(flavor = "multi_thread")]
async fn readers_are_limited_each_on_their_own_and_told_when_to_come_back() {
    let app = spawn_app_with(|s| s.api_rate_limit = Quota::parse("2/60s").expect("valid")).await;
    let ada = app.token(Uuid::new_v4(), Role::User);
    let bob = app.token(Uuid::new_v4(), Role::User);
    for left in [1, 0] {
        let response = app.get("/api/v1/products", Some(&ada)).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(remaining(&response), Some(left));
        assert_eq!(response.headers()["ratelimit-limit"], "2");
        assert_eq!(response.headers()["ratelimit-policy"], "2;w=60");
    }
    let refused = app.get("/api/v1/products", Some(&ada)).await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = refused.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!((1..=30).contains(&retry_after), "{retry_after}");
    let body: Value = refused.json().await.expect("JSON");
    assert_eq!(body["error"]["code"], "RATE_LIMITED");
    // Another user, and an anonymous caller (counted by address), have budgets of their own.
    assert_eq!(
        app.get("/api/v1/products", Some(&bob)).await.status(),
        StatusCode::OK
    );
    let anonymous = app.get("/api/v1/products", None).await;
    assert_eq!(remaining(&anonymous), Some(1));
    // Health and docs are never limited: orchestrators and readers of the docs are not callers.
    for _ in 0..3 {
        let health = app.get("/health/live", None).await;
        assert_eq!(health.status(), StatusCode::OK);
        assert!(!health.headers().contains_key("ratelimit-limit"));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_document_tells_every_operation_may_answer_429() {
    let app = spawn_app_with(|s| s.api_rate_limit = Quota::parse("600/60s").expect("valid")).await;
    let (_, document) = app.get_json("/openapi.json", None).await;
    let paths = document["paths"].as_object().expect("paths");
    assert!(!paths.is_empty());
    for (path, item) in paths {
        for (method, operation) in item.as_object().expect("operations") {
            let limited = &operation["responses"]["429"];
            assert!(limited["headers"]["Retry-After"].is_object(), "{method} {path}");
            assert!(
                limited["content"]["application/json"].is_object(),
                "{method} {path}"
            );
        }
    }
}
