//! Password resets at the command API: the request answers alike for every email and is
//! limited per account and address; a token works once, only before it expires. The
//! emailed link itself is tested end to end (`e2e/tests/passwords.rs`).

use crate::helpers::{error_code, spawn_app, spawn_with};
use serde_json::json;
use std::time::Duration;
use testkit::eventually;
use web::rate_limit::Quota;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_is_recorded_for_an_account_and_answered_alike_without_one() {
    let app = spawn_app().await;
    let id = app.user("ada@example.com").await;
    for email in ["ADA@example.com", "nobody@example.com"] {
        let response = app.post("/api/v1/passwords/reset", json!({"email": email})).await;
        assert_eq!(response.status(), 202, "{email}");
    }
    eventually(
        Duration::from_secs(10),
        "the reset request to be recorded",
        || async {
            let recorded = app
                .count(&format!(
                    "SELECT count(*) FROM events WHERE stream_id = '{id}' \
                 AND event_type = 'user.password_reset_requested' AND data = '{{}}'::jsonb"
                ))
                .await;
            (recorded == 1).then_some(())
        },
    )
    .await;
    let all = app
        .count("SELECT count(*) FROM events WHERE event_type = 'user.password_reset_requested'")
        .await;
    assert_eq!(all, 1, "nothing is recorded for an email without an account");
    let (status, code, body) = error_code(
        app.post("/api/v1/passwords/reset", json!({"email": "not an email"}))
            .await,
    )
    .await;
    assert_eq!((status, code.as_str()), (400, "VALIDATION_ERROR"));
    assert_eq!(body["error"]["details"][0]["field"], "email");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_are_limited_per_account_known_or_not() {
    let app = spawn_with(|s| {
        s.password_reset_limit = Quota::parse("2/15m").expect("valid");
        s.trust_forwarded_for = true;
    })
    .await;
    app.user("ada@example.com").await;
    for email in ["ada@example.com", "nobody@example.com"] {
        let request = |from: &'static str| {
            app.client
                .post(app.url("/api/v1/passwords/reset"))
                .header("x-forwarded-for", from)
                .json(&json!({"email": email}))
                .send()
        };
        assert_eq!(request("10.0.1.1").await.expect("sent").status(), 202);
        assert_eq!(request("10.0.1.2").await.expect("sent").status(), 202);
        let limited = request("10.0.1.3").await.expect("sent");
        assert_eq!(limited.status(), 429, "{email}");
        assert!(limited.headers().contains_key("retry-after"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_works_once_and_only_before_it_expires() {
    let app = spawn_app().await;
    let id = app.user("ada@example.com").await;
    // Tokens as the workers store them: only their SHA-256.
    for (token, expires_in) in [("fresh-token", "30 minutes"), ("stale-token", "-1 minute")] {
        sqlx::query(&format!(
            "INSERT INTO password_reset_tokens (event_id, token_hash, user_id, expires_at)
             VALUES (gen_random_uuid(), sha256($1::bytea), $2, now() + interval '{expires_in}')"
        ))
        .bind(token.as_bytes())
        .bind(uuid::Uuid::parse_str(&id).expect("uuid"))
        .execute(&app.db.pool)
        .await
        .expect("token row");
    }
    let confirm = |token: &'static str| {
        app.post(
            "/api/v1/passwords/reset/confirm",
            json!({"token": token, "newPassword": "a-new-password-1"}),
        )
    };
    let (status, _, body) = error_code(confirm("stale-token").await).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["details"][0]["field"], "token");
    assert_eq!(confirm("fresh-token").await.status(), 204);
    app.login("ada@example.com", "a-new-password-1").await;
    let (status, _, _) = error_code(confirm("fresh-token").await).await;
    assert_eq!(status, 400, "used once");
    let (status, _, _) = error_code(confirm("made-up").await).await;
    assert_eq!(status, 400);
    let changed = app
        .count(&format!(
            "SELECT count(*) FROM events WHERE stream_id = '{id}' AND event_type = 'user.password_changed'"
        ))
        .await;
    assert_eq!(changed, 1);
}
