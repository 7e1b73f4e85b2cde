//! Login, refresh rotation with reuse detection, logout, rate limits.

use crate::helpers::{body, error_code, spawn_app, spawn_with};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_returns_a_token_pair_and_the_user() {
    let app = spawn_app().await;
    let id = app.user("login@example.com").await;
    let tokens = app.login("LOGIN@example.com", "password123").await;
    assert_eq!(tokens["user"]["id"], id.as_str());
    assert_eq!(tokens["tokenType"], "Bearer");
    assert_eq!(tokens["expiresIn"], 900);
    assert_eq!(tokens["accessToken"].as_str().expect("jwt").split('.').count(), 3);
    assert!(tokens["refreshToken"].as_str().expect("refresh").len() >= 32);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_email_and_wrong_password_answer_the_same_401() {
    let app = spawn_app().await;
    app.user("who@example.com").await;
    let wrong_password = app
        .post(
            "/api/v1/auth/login",
            json!({"email": "who@example.com", "password": "nope12345"}),
        )
        .await;
    let wrong_email = app
        .post(
            "/api/v1/auth/login",
            json!({"email": "nobody@example.com", "password": "password123"}),
        )
        .await;
    let (s1, c1, b1) = error_code(wrong_password).await;
    let (s2, c2, b2) = error_code(wrong_email).await;
    assert_eq!((s1, c1.as_str()), (401, "UNAUTHORIZED"));
    assert_eq!((s1, c1), (s2, c2));
    assert_eq!(b1["error"]["message"], b2["error"]["message"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_rotates_and_reuse_of_a_rotated_token_revokes_the_family() {
    let app = spawn_app().await;
    app.user("rot@example.com").await;
    let first = app.login("rot@example.com", "password123").await["refreshToken"]
        .as_str()
        .expect("t")
        .to_owned();
    let response = app
        .post("/api/v1/auth/refresh", json!({"refreshToken": first}))
        .await;
    assert_eq!(response.status(), 200);
    let second = body(response).await["data"]["refreshToken"]
        .as_str()
        .expect("t")
        .to_owned();
    assert_ne!(first, second);
    // The old token is dead, and presenting it revokes the newest one too.
    assert_eq!(
        app.post("/api/v1/auth/refresh", json!({"refreshToken": first}))
            .await
            .status(),
        401
    );
    assert_eq!(
        app.post("/api/v1/auth/refresh", json!({"refreshToken": second}))
            .await
            .status(),
        401
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_login_session_survives_a_reuse_in_a_different_family() {
    let app = spawn_app().await;
    app.user("two@example.com").await;
    let a = app.login("two@example.com", "password123").await["refreshToken"]
        .as_str()
        .expect("t")
        .to_owned();
    let b = app.login("two@example.com", "password123").await["refreshToken"]
        .as_str()
        .expect("t")
        .to_owned();
    app.post("/api/v1/auth/refresh", json!({"refreshToken": a})).await;
    app.post("/api/v1/auth/refresh", json!({"refreshToken": a})).await;
    assert_eq!(
        app.post("/api/v1/auth/refresh", json!({"refreshToken": b}))
            .await
            .status(),
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_revokes_the_refresh_token() {
    let app = spawn_app().await;
    app.user("out@example.com").await;
    let token = app.login("out@example.com", "password123").await["refreshToken"]
        .as_str()
        .expect("t")
        .to_owned();
    assert_eq!(
        app.post("/api/v1/auth/logout", json!({"refreshToken": token}))
            .await
            .status(),
        204
    );
    assert_eq!(
        app.post("/api/v1/auth/refresh", json!({"refreshToken": token}))
            .await
            .status(),
        401
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_refresh_tokens_are_401() {
    let app = spawn_app().await;
    let (status, code, _) = error_code(
        app.post("/api/v1/auth/refresh", json!({"refreshToken": "made-up"}))
            .await,
    )
    .await;
    assert_eq!((status, code.as_str()), (401, "UNAUTHORIZED"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_endpoints_are_rate_limited_across_replicas_sharing_redis() {
    let app = spawn_with(|s| s.auth_rate_limit_per_minute = 3).await;
    let mut second = crate::helpers::settings(&app.db, &app.nats, &app.redis);
    second.auth_rate_limit_per_minute = 3;
    let (second_base, _stop) = crate::helpers::start(second).await;
    let attempt = |base: String| {
        let client = app.client.clone();
        async move {
            client
                .post(format!("{base}/api/v1/auth/login"))
                .json(&json!({"email": "x@example.com", "password": "password123"}))
                .send()
                .await
                .expect("sent")
        }
    };
    // Fixed one-minute windows: start well inside one so the four requests share it.
    let second_of_minute = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
        % 60;
    if second_of_minute > 50 {
        tokio::time::sleep(std::time::Duration::from_secs(61 - second_of_minute)).await;
    }
    for base in [&app.base, &second_base, &app.base] {
        let response = attempt(base.clone()).await;
        assert_eq!(response.status(), 401);
        assert!(response.headers().contains_key("ratelimit-remaining"));
    }
    let limited = attempt(second_base.clone()).await;
    assert_eq!(limited.status(), 429);
    let retry_after: u64 = limited.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!((1..=60).contains(&retry_after));
    let (_, code, _) = error_code(limited).await;
    assert_eq!(code, "RATE_LIMITED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zero_rate_limit_turns_limiting_off() {
    let app = spawn_app().await;
    for _ in 0..10 {
        let response = app
            .post(
                "/api/v1/auth/login",
                json!({"email": "x@example.com", "password": "password123"}),
            )
            .await;
        assert_eq!(response.status(), 401);
        assert!(!response.headers().contains_key("ratelimit-limit"));
    }
}
