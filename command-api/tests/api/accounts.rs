//! Users as a resource: accounts made by admins (their users set the password through
//! the emailed link), and profile changes by PATCH and PUT that can change the email,
//! unique under concurrency.

use crate::helpers::{TestApp, body, error_code, spawn_app};
use reqwest::Response;
use serde_json::{Value, json};

async fn send(app: &TestApp, method: reqwest::Method, path: &str, token: &str, payload: Value) -> Response {
    app.client
        .request(method, app.url(path))
        .bearer_auth(token)
        .json(&payload)
        .send()
        .await
        .expect("sent")
}

async fn login_status(app: &TestApp, email: &str) -> u16 {
    app.post(
        "/api/v1/auth/login",
        json!({"email": email, "password": "password123"}),
    )
    .await
    .status()
    .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_makes_an_account_without_a_password_and_its_link_is_asked_for() {
    let app = spawn_app().await;
    let (_, admin) = app.admin_token().await;
    let created = send(
        &app,
        reqwest::Method::POST,
        "/api/v1/users",
        &admin,
        json!({"email": "New@Example.com", "name": "Newcomer", "role": "user"}),
    )
    .await;
    assert_eq!(created.status(), 201);
    let location = created.headers()["location"].to_str().expect("ascii").to_owned();
    let data = body(created).await["data"].clone();
    let id = data["id"].as_str().expect("id");
    assert_eq!(location, format!("/api/v1/users/{id}"));
    assert_eq!(
        (data["email"].as_str(), data["role"].as_str()),
        (Some("new@example.com"), Some("user"))
    );
    let types: Vec<String> = sqlx::query_scalar(
        "SELECT event_type FROM events WHERE stream_id = $1::uuid ORDER BY stream_version",
    )
    .bind(id)
    .fetch_all(&app.db.pool)
    .await
    .expect("events");
    assert_eq!(types, ["user.registered", "user.password_reset_requested"]);
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM credentials WHERE user_id = '{id}'"
        ))
        .await,
        0,
        "no password until the user sets one"
    );
    assert_eq!(login_status(&app, "new@example.com").await, 401);

    let again = send(
        &app,
        reqwest::Method::POST,
        "/api/v1/users",
        &admin,
        json!({"email": "new@example.com", "name": "Twice", "role": "user"}),
    )
    .await;
    assert_eq!(again.status(), 409);
    let (_, user) = app.signed_in("plain@example.com").await;
    let refused = send(
        &app,
        reqwest::Method::POST,
        "/api/v1/users",
        &user,
        json!({"email": "x@example.com", "name": "X", "role": "admin"}),
    )
    .await;
    assert_eq!(refused.status(), 403);
    let (status, _, body) = error_code(
        send(
            &app,
            reqwest::Method::POST,
            "/api/v1/users",
            &admin,
            json!({"email": "nope", "name": "", "role": "root"}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 400);
    let fields: Vec<&str> = body["error"]["details"]
        .as_array()
        .expect("details")
        .iter()
        .filter_map(|d| d["field"].as_str())
        .collect();
    assert_eq!(fields, ["email", "name", "role"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_email_moves_the_sign_in_and_frees_the_old_one() {
    let app = spawn_app().await;
    let (id, token) = app.signed_in("ada@example.com").await;
    let path = format!("/api/v1/users/{id}");
    // One's own email moves only with the password: a stolen access token is not enough.
    for (body, reason) in [
        (
            json!({"email": "ada@lovelace.org"}),
            "is required to change your own email",
        ),
        (
            json!({"email": "ada@lovelace.org", "currentPassword": "wrong-password-1"}),
            "is incorrect",
        ),
    ] {
        let (status, _, refused) =
            error_code(send(&app, reqwest::Method::PATCH, &path, &token, body).await).await;
        assert_eq!(status, 400);
        assert_eq!(refused["error"]["details"][0]["field"], "currentPassword");
        assert_eq!(refused["error"]["details"][0]["message"], reason);
    }
    let changed = send(
        &app,
        reqwest::Method::PATCH,
        &path,
        &token,
        json!({"email": "ada@lovelace.org", "currentPassword": "password123"}),
    )
    .await;
    assert_eq!(changed.status(), 200);
    assert_eq!(changed.headers()["etag"], "\"2\"");
    assert_eq!(body(changed).await["data"]["email"], "ada@lovelace.org");
    let data: Value = sqlx::query_scalar(
        "SELECT data FROM events WHERE stream_id = $1::uuid AND event_type = 'user.email_changed'",
    )
    .bind(&id)
    .fetch_one(&app.db.pool)
    .await
    .expect("event");
    assert_eq!(
        data,
        json!({"email": "ada@lovelace.org", "previousEmail": "ada@example.com"})
    );
    assert_eq!(login_status(&app, "ada@lovelace.org").await, 200);
    assert_eq!(login_status(&app, "ada@example.com").await, 401);
    // The old address is free for someone else; a taken one is 409.
    let (other, other_token) = app.signed_in("ada@example.com").await;
    let taken = send(
        &app,
        reqwest::Method::PATCH,
        &format!("/api/v1/users/{other}"),
        &other_token,
        json!({"email": "ADA@lovelace.org", "currentPassword": "password123"}),
    )
    .await;
    let (status, code, _) = error_code(taken).await;
    assert_eq!((status, code.as_str()), (409, "CONFLICT"));
    let empty = send(
        &app,
        reqwest::Method::PATCH,
        &format!("/api/v1/users/{other}"),
        &other_token,
        json!({}),
    )
    .await;
    assert_eq!(empty.status(), 400);
    // An administrator moves someone else's email without their password.
    let (_, admin) = app.admin_token().await;
    let moved = send(
        &app,
        reqwest::Method::PATCH,
        &format!("/api/v1/users/{other}"),
        &admin,
        json!({"email": "ada.two@example.com"}),
    )
    .await;
    assert_eq!(moved.status(), 200);
    assert_eq!(body(moved).await["data"]["email"], "ada.two@example.com");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_replaces_the_profile_under_if_match() {
    let app = spawn_app().await;
    let (id, token) = app.signed_in("grace@example.com").await;
    let put = |etag: &'static str, name: &'static str, email: &'static str| {
        app.client
            .put(app.url(&format!("/api/v1/users/{id}")))
            .bearer_auth(&token)
            .header("If-Match", etag)
            .json(&json!({"name": name, "email": email, "currentPassword": "password123"}))
            .send()
    };
    let replaced = put("\"1\"", "Grace Hopper", "grace@navy.mil")
        .await
        .expect("sent");
    assert_eq!(replaced.status(), 200);
    assert_eq!(
        replaced.headers()["etag"],
        "\"3\"",
        "a rename and an email change"
    );
    let data = body(replaced).await["data"].clone();
    assert_eq!(
        (data["name"].as_str(), data["email"].as_str()),
        (Some("Grace Hopper"), Some("grace@navy.mil"))
    );
    assert_eq!(
        put("\"1\"", "Other", "other@example.com")
            .await
            .expect("sent")
            .status(),
        412
    );
    let same = put("\"3\"", "Grace Hopper", "grace@navy.mil")
        .await
        .expect("sent");
    assert_eq!(same.status(), 200);
    assert_eq!(
        same.headers()["etag"],
        "\"3\"",
        "nothing changed, nothing appended"
    );
    let missing_field = app
        .client
        .put(app.url(&format!("/api/v1/users/{id}")))
        .bearer_auth(&token)
        .json(&json!({"name": "Only a name"}))
        .send()
        .await
        .expect("sent");
    assert_eq!(missing_field.status(), 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_accounts_racing_for_one_email_get_one_success_and_one_conflict() {
    let app = spawn_app().await;
    let mut users = Vec::new();
    for email in ["one@example.com", "two@example.com"] {
        users.push(app.signed_in(email).await);
    }
    for round in 0..5 {
        let wanted = format!("wanted{round}@example.com");
        let paths: Vec<String> = users
            .iter()
            .map(|(id, _)| format!("/api/v1/users/{id}"))
            .collect();
        let attempts = users.iter().zip(&paths).map(|((_, token), path)| {
            send(
                &app,
                reqwest::Method::PATCH,
                path,
                token,
                json!({"email": wanted, "currentPassword": "password123"}),
            )
        });
        let mut statuses: Vec<u16> = futures::future::join_all(attempts)
            .await
            .iter()
            .map(|r| r.status().as_u16())
            .collect();
        statuses.sort_unstable();
        assert_eq!(statuses, [200, 409], "round {round}");
        let owners = app
            .count(&format!(
                "SELECT count(*) FROM unique_claims WHERE kind = 'user.email' AND value = '{wanted}'"
            ))
            .await;
        assert_eq!(owners, 1);
    }
}
