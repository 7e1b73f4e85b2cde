//! Rate limits: the API-wide limit per caller, the sign-in routes' limit per address,
//! and the failed-login limit per account and per address; all shared through Redis by
//! every replica, and all letting requests through while Redis is away.

use crate::helpers::{error_code, settings, spawn_app, spawn_with, start};
use reqwest::Response;
use serde_json::json;
use std::time::{Duration, Instant};
use testkit::RedisServer;
use web::rate_limit::Quota;

fn quota(raw: &str) -> Option<Quota> {
    Quota::parse(raw).expect("a valid quota")
}

fn header(response: &Response, name: &str) -> Option<u64> {
    response.headers().get(name)?.to_str().ok()?.parse().ok()
}

/// Asserts a 429 `RATE_LIMITED` whose `Retry-After` is within `seconds`.
async fn assert_limited(response: Response, seconds: std::ops::RangeInclusive<u64>) {
    assert_eq!(response.status(), 429);
    let retry_after = header(&response, "retry-after").expect("Retry-After in seconds");
    assert!(seconds.contains(&retry_after), "Retry-After {retry_after}");
    assert_eq!(header(&response, "ratelimit-remaining"), Some(0));
    let (_, code, _) = error_code(response).await;
    assert_eq!(code, "RATE_LIMITED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_tells_the_limit_and_the_request_over_it_is_refused_with_retry_after() {
    let app = spawn_with(|s| s.api_rate_limit = quota("3/60s")).await;
    let create = || {
        app.client
            .post(app.url("/api/v1/products"))
            .json(&json!({"sku": "X", "name": "X", "priceCents": 1, "currency": "EUR"}))
            .send()
    };
    for remaining in [2, 1, 0] {
        let response = create().await.expect("sent");
        // Without a token the caller is its address; the answer itself is the route's own.
        assert_eq!(response.status(), 401);
        assert_eq!(header(&response, "ratelimit-limit"), Some(3));
        assert_eq!(header(&response, "ratelimit-remaining"), Some(remaining));
        let reset = header(&response, "ratelimit-reset").expect("RateLimit-Reset");
        assert!((1..=60).contains(&reset), "reset {reset}");
        assert_eq!(response.headers()["ratelimit-policy"], "3;w=60");
        assert!(
            response
                .headers()
                .keys()
                .all(|name| !name.as_str().starts_with("x-ratelimit")),
            "no legacy headers: {:?}",
            response.headers()
        );
    }
    // One request each 20 s: the next is allowed in at most 20 s, not at a window's end.
    assert_limited(create().await.expect("sent"), 1..=20).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_user_has_a_budget_of_their_own_shared_by_every_replica() {
    let app = spawn_with(|s| s.api_rate_limit = quota("2/60s")).await;
    let mut second = settings(&app.db, &app.nats, &app.redis);
    second.api_rate_limit = quota("2/60s");
    let (second_base, _stop) = start(second).await;
    // Registering and logging in count against the address, not the users: give the
    // address a fresh budget by logging in the users on a replica without the limit.
    let (free_base, _stop_free) = start(settings(&app.db, &app.nats, &app.redis)).await;
    let sign_in = |email: &'static str| {
        let client = app.client.clone();
        let base = free_base.clone();
        async move {
            let registered = client
                .post(format!("{base}/api/v1/auth/register"))
                .json(&json!({"email": email, "name": "Limited", "password": "password123"}))
                .send()
                .await
                .expect("sent");
            assert_eq!(registered.status(), 201);
            let login: serde_json::Value = client
                .post(format!("{base}/api/v1/auth/login"))
                .json(&json!({"email": email, "password": "password123"}))
                .send()
                .await
                .expect("sent")
                .json()
                .await
                .expect("json");
            let data = &login["data"];
            (
                data["user"]["id"].as_str().expect("id").to_owned(),
                data["accessToken"].as_str().expect("token").to_owned(),
            )
        }
    };
    let (ada, ada_token) = sign_in("ada@example.com").await;
    let (bob, bob_token) = sign_in("bob@example.com").await;
    let rename = |base: &str, id: &str, token: &str| {
        app.client
            .patch(format!("{base}/api/v1/users/{id}"))
            .bearer_auth(token)
            .json(&json!({"name": "Renamed"}))
            .send()
    };
    let first = rename(&app.base, &ada, &ada_token).await.expect("sent");
    assert_eq!(
        header(&first, "ratelimit-remaining"),
        Some(1),
        "{}",
        first.status()
    );
    let on_the_other_replica = rename(&second_base, &ada, &ada_token).await.expect("sent");
    assert_eq!(header(&on_the_other_replica, "ratelimit-remaining"), Some(0));
    assert_limited(rename(&app.base, &ada, &ada_token).await.expect("sent"), 1..=30).await;
    // Bob, from the same address, still has his whole budget.
    let bobs = rename(&second_base, &bob, &bob_token).await.expect("sent");
    assert_ne!(bobs.status(), 429);
    assert_eq!(header(&bobs, "ratelimit-remaining"), Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sign_in_routes_are_limited_per_address_across_replicas() {
    let app = spawn_with(|s| s.auth_rate_limit_per_minute = 3).await;
    let mut second = settings(&app.db, &app.nats, &app.redis);
    second.auth_rate_limit_per_minute = 3;
    let (second_base, _stop) = start(second).await;
    let attempt = |base: String| {
        let client = app.client.clone();
        async move {
            client
                .post(format!("{base}/api/v1/auth/refresh"))
                .json(&json!({"refreshToken": "made-up"}))
                .send()
                .await
                .expect("sent")
        }
    };
    for base in [&app.base, &second_base, &app.base] {
        let response = attempt(base.clone()).await;
        assert_eq!(response.status(), 401);
        assert!(response.headers().contains_key("ratelimit-remaining"));
    }
    assert_limited(attempt(second_base.clone()).await, 1..=20).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn good_logins_never_count_and_failed_ones_lock_the_account_for_minutes() {
    let app = spawn_with(|s| s.login_failure_limit = quota("3/15m")).await;
    app.user("ada@example.com").await;
    let login = |password: &str| {
        app.post(
            "/api/v1/auth/login",
            json!({"email": "ada@example.com", "password": password}),
        )
    };
    // Many more good logins than the limit: a user is never locked out by their own.
    for _ in 0..6 {
        assert_eq!(login("password123").await.status(), 200);
    }
    for _ in 0..3 {
        assert_eq!(login("wrong-password").await.status(), 401);
    }
    // Now even the right password waits: one failure is forgiven each 5 minutes.
    assert_limited(login("password123").await, 200..=300).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_logins_count_per_account_whatever_the_address_and_per_address_whatever_the_account() {
    let app = spawn_with(|s| {
        s.login_failure_limit = quota("2/15m");
        s.trust_forwarded_for = true;
    })
    .await;
    app.user("ada@example.com").await;
    let login = |email: &str, from: &str| {
        app.client
            .post(app.url("/api/v1/auth/login"))
            .header("x-forwarded-for", from)
            .json(&json!({"email": email, "password": "wrong-password"}))
            .send()
    };
    // One account guessed at from many addresses.
    assert_eq!(
        login("ada@example.com", "10.0.0.1").await.expect("sent").status(),
        401
    );
    assert_eq!(
        login("ada@example.com", "10.0.0.2").await.expect("sent").status(),
        401
    );
    assert_limited(
        login("ada@example.com", "10.0.0.3").await.expect("sent"),
        60..=450,
    )
    .await;
    // Many accounts, known or not, guessed at from one address.
    assert_eq!(
        login("bob@example.com", "10.0.0.9").await.expect("sent").status(),
        401
    );
    assert_eq!(
        login("eve@example.com", "10.0.0.9").await.expect("sent").status(),
        401
    );
    assert_limited(
        login("zed@example.com", "10.0.0.9").await.expect("sent"),
        60..=450,
    )
    .await;
    // Other accounts from other addresses are untouched.
    assert_eq!(
        login("bob@example.com", "10.0.0.4").await.expect("sent").status(),
        401
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zero_limit_turns_limiting_off() {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_gone_after_connecting_requests_go_through_unlimited_and_at_once() {
    let mut redis = RedisServer::start();
    let app = spawn_with(|s| {
        s.infra.redis_url = redis.url.clone();
        s.api_rate_limit = quota("2/60s");
        s.login_failure_limit = quota("1/15m");
    })
    .await;
    let refresh = || app.post("/api/v1/auth/refresh", json!({"refreshToken": "made-up"}));
    // Connected: the limit holds.
    testkit::eventually(Duration::from_secs(10), "the limiter to count", || async {
        let response = refresh().await;
        header(&response, "ratelimit-remaining").map(|_| ())
    })
    .await;
    redis.stop();
    let started = Instant::now();
    for _ in 0..10 {
        let response = refresh().await;
        assert_eq!(response.status(), 401, "let through, answered by the route");
        assert!(!response.headers().contains_key("ratelimit-limit"));
    }
    let failed_login = app
        .post(
            "/api/v1/auth/login",
            json!({"email": "x@example.com", "password": "password123"}),
        )
        .await;
    assert_eq!(failed_login.status(), 401);
    // Eleven requests without a limiter: well under one Redis call deadline each.
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
}
