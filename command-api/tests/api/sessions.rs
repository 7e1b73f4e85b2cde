//! Login, refresh rotation with reuse detection, logout.

use crate::helpers::{body, error_code, spawn_app};
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
