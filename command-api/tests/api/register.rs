//! Registration: validation, uniqueness under concurrency, idempotency, events.

use crate::helpers::{body, error_code, spawn_app};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registering_answers_201_with_the_user_version_and_position() {
    let app = spawn_app().await;
    let response = app
        .register("Ada@Example.com", "Ada Lovelace", "analytical1")
        .await;
    assert_eq!(response.status(), 201);
    assert_eq!(response.headers()["etag"], "\"1\"");
    assert!(
        response.headers()["location"]
            .to_str()
            .expect("ascii")
            .starts_with("/api/v1/users/")
    );
    let data = body(response).await["data"].clone();
    assert_eq!(data["email"], "ada@example.com");
    assert_eq!(data["name"], "Ada Lovelace");
    assert_eq!(data["role"], "user");
    assert_eq!(data["version"], 1);
    assert!(data["position"].as_i64().expect("position") > 0);
    assert!(data.get("password").is_none() && data.get("passwordHash").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registering_appends_user_registered_without_any_secret() {
    let app = spawn_app().await;
    app.register("grace@example.com", "Grace", "cobol1959x").await;
    let (event_type, data): (String, serde_json::Value) =
        sqlx::query_as("SELECT event_type, data FROM events")
            .fetch_one(&app.db.pool)
            .await
            .expect("one event");
    assert_eq!(event_type, "user.registered");
    assert_eq!(
        data,
        json!({"email": "grace@example.com", "name": "Grace", "role": "user"})
    );
    let hash: String = sqlx::query_scalar("SELECT password_hash FROM credentials")
        .fetch_one(&app.db.pool)
        .await
        .expect("hash");
    assert!(hash.starts_with("$argon2id$"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_fields_are_each_named() {
    let app = spawn_app().await;
    let response = app.register("not-an-email", "", "short").await;
    let (status, code, body) = error_code(response).await;
    assert_eq!((status, code.as_str()), (400, "VALIDATION_ERROR"));
    let fields: Vec<&str> = body["error"]["details"]
        .as_array()
        .expect("details")
        .iter()
        .map(|d| d["field"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(fields, ["email", "name", "password"]);
    assert_eq!(app.count("SELECT count(*) FROM events").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_rules_need_a_letter_a_digit_and_8_to_128_characters() {
    let app = spawn_app().await;
    for (i, bad) in ["abcdefgh", "12345678", "a1", &format!("a1{}", "x".repeat(127))]
        .iter()
        .enumerate()
    {
        let response = app.register(&format!("p{i}@example.com"), "P", bad).await;
        assert_eq!(response.status(), 400, "{bad} should be refused");
    }
    assert_eq!(
        app.register("ok@example.com", "P", "abcdefg1").await.status(),
        201
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registering_twice_with_one_email_in_any_case_conflicts() {
    let app = spawn_app().await;
    assert_eq!(
        app.register("dup@example.com", "A", "password123").await.status(),
        201
    );
    let (status, code, _) = error_code(app.register("DUP@example.com", "B", "password123").await).await;
    assert_eq!((status, code.as_str()), (409, "CONFLICT"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_parallel_registrations_of_one_email_give_exactly_one_201() {
    let app = spawn_app().await;
    let names: Vec<String> = (0..20).map(|i| format!("Racer {i}")).collect();
    let attempts = names
        .iter()
        .map(|name| app.register("race@example.com", name, "password123"));
    let statuses: Vec<u16> = futures::future::join_all(attempts)
        .await
        .iter()
        .map(|r| r.status().as_u16())
        .collect();
    assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 1, "{statuses:?}");
    assert!(statuses.iter().all(|s| *s == 201 || *s == 409), "{statuses:?}");
    assert_eq!(app.count("SELECT count(*) FROM events").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeating_a_registration_with_its_idempotency_key_replays_the_first_answer() {
    let app = spawn_app().await;
    let send = || {
        app.client
            .post(app.url("/api/v1/auth/register"))
            .header("Idempotency-Key", "key-1")
            .json(&json!({"email": "idem@example.com", "name": "Idem", "password": "password123"}))
            .send()
    };
    let first = send().await.expect("sent");
    assert_eq!(first.status(), 201);
    let first = body(first).await;
    let second = send().await.expect("sent");
    assert_eq!(second.status(), 201);
    assert_eq!(second.headers()["idempotent-replayed"], "true");
    assert_eq!(body(second).await["data"], first["data"]);
    assert_eq!(app.count("SELECT count(*) FROM events").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reusing_an_idempotency_key_with_another_body_is_refused() {
    let app = spawn_app().await;
    let send = |name: &'static str, password: &'static str| {
        app.client
            .post(app.url("/api/v1/auth/register"))
            .header("Idempotency-Key", "key-2")
            .json(&json!({"email": "idem2@example.com", "name": name, "password": password}))
            .send()
    };
    assert_eq!(send("One", "password123").await.expect("sent").status(), 201);
    let (status, code, _) = error_code(send("Two", "password123").await.expect("sent")).await;
    assert_eq!((status, code.as_str()), (422, "IDEMPOTENCY_KEY_REUSED"));
    let (status, code, _) = error_code(send("One", "otherpass123").await.expect("sent")).await;
    assert_eq!((status, code.as_str()), (422, "IDEMPOTENCY_KEY_REUSED"));
    assert_eq!(app.count("SELECT count(*) FROM events").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_with_one_idempotency_key_append_once() {
    let app = spawn_app().await;
    let sends = (0..5).map(|_| {
        app.client
            .post(app.url("/api/v1/auth/register"))
            .header("Idempotency-Key", "key-3")
            .json(&json!({"email": "idem3@example.com", "name": "Same", "password": "password123"}))
            .send()
    });
    let responses = futures::future::join_all(sends).await;
    for response in responses {
        assert_eq!(response.expect("sent").status(), 201);
    }
    assert_eq!(app.count("SELECT count(*) FROM events").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bootstrap_admin_is_created_through_events_and_can_log_in() {
    let app = crate::helpers::spawn_with(|s| {
        s.admin = Some(command_api::AdminAccount {
            email: "boss@example.com".into(),
            password: "bosspass123".into(),
            name: "Boss".into(),
        })
    })
    .await;
    let tokens = app.login("boss@example.com", "bosspass123").await;
    assert_eq!(tokens["user"]["role"], "admin");
    assert_eq!(
        app.count("SELECT count(*) FROM events WHERE event_type = 'user.registered'")
            .await,
        1
    );
}
