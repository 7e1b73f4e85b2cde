//! Changing users: rename with If-Match, roles, passwords, deletion, authorisation.

use crate::helpers::{body, error_code, spawn_app};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_renames_themself_and_gets_the_new_version() {
    let app = spawn_app().await;
    let (id, token) = app.signed_in("ren@example.com").await;
    let response = app
        .client
        .patch(app.url(&format!("/api/v1/users/{id}")))
        .bearer_auth(&token)
        .json(&json!({"name": "Renamed"}))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["etag"], "\"2\"");
    let data = body(response).await["data"].clone();
    assert_eq!(
        (data["name"].as_str(), data["version"].as_i64()),
        (Some("Renamed"), Some(2))
    );
    assert_eq!(
        app.count("SELECT count(*) FROM events WHERE event_type = 'user.renamed'")
            .await,
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_if_match_is_412_and_a_current_one_succeeds() {
    let app = spawn_app().await;
    let (id, token) = app.signed_in("etag@example.com").await;
    let patch = |etag: &'static str, name: &'static str| {
        app.client
            .patch(app.url(&format!("/api/v1/users/{id}")))
            .bearer_auth(&token)
            .header("If-Match", etag)
            .json(&json!({"name": name}))
            .send()
    };
    assert_eq!(patch("\"1\"", "First").await.expect("sent").status(), 200);
    let (status, code, _) = error_code(patch("\"1\"", "Second").await.expect("sent")).await;
    assert_eq!((status, code.as_str()), (412, "PRECONDITION_FAILED"));
    assert_eq!(patch("\"2\"", "Second").await.expect("sent").status(), 200);
    let (status, _, _) = error_code(patch("garbage", "Third").await.expect("sent")).await;
    assert_eq!(status, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_cannot_change_another_user() {
    let app = spawn_app().await;
    let (_, token) = app.signed_in("me@example.com").await;
    let other = app.user("other@example.com").await;
    let response = app
        .client
        .patch(app.url(&format!("/api/v1/users/{other}")))
        .bearer_auth(&token)
        .json(&json!({"name": "Hijacked"}))
        .send()
        .await
        .expect("sent");
    assert_eq!(error_code(response).await.1, "FORBIDDEN");
    let response = app
        .client
        .delete(app.url(&format!("/api/v1/users/{other}")))
        .bearer_auth(&token)
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_admins_change_roles() {
    let app = spawn_app().await;
    let (id, token) = app.signed_in("plain@example.com").await;
    let set_role = |token: String, role: &'static str| {
        app.client
            .put(app.url(&format!("/api/v1/users/{id}/role")))
            .bearer_auth(token)
            .json(&json!({"role": role}))
            .send()
    };
    assert_eq!(
        set_role(token.clone(), "admin").await.expect("sent").status(),
        403
    );
    let (_, admin) = app.admin_token().await;
    let response = set_role(admin.clone(), "admin").await.expect("sent");
    assert_eq!(response.status(), 200);
    assert_eq!(body(response).await["data"]["role"], "admin");
    assert_eq!(set_role(admin, "emperor").await.expect("sent").status(), 400);
    let event: serde_json::Value = sqlx::query_scalar(
        "SELECT data FROM events WHERE event_type = 'user.role_changed' AND stream_id = $1::uuid",
    )
    .bind(&id)
    .fetch_one(&app.db.pool)
    .await
    .expect("event");
    assert_eq!(event, json!({"role": "admin", "previousRole": "user"}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changing_the_password_revokes_refresh_tokens_and_needs_the_current_one() {
    let app = spawn_app().await;
    let (id, token) = app.signed_in("pw@example.com").await;
    let refresh = app.login("pw@example.com", "password123").await["refreshToken"]
        .as_str()
        .expect("t")
        .to_owned();
    let change = |current: &'static str, new: &'static str| {
        app.client
            .put(app.url(&format!("/api/v1/users/{id}/password")))
            .bearer_auth(&token)
            .json(&json!({"currentPassword": current, "newPassword": new}))
            .send()
    };
    let (status, _, body) = error_code(change("wrongpass1", "newpass123").await.expect("sent")).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["details"][0]["field"], "currentPassword");
    assert_eq!(change("password123", "weak").await.expect("sent").status(), 400);
    assert_eq!(
        change("password123", "newpass123").await.expect("sent").status(),
        204
    );
    assert_eq!(
        app.post("/api/v1/auth/refresh", json!({"refreshToken": refresh}))
            .await
            .status(),
        401
    );
    assert_eq!(
        app.post(
            "/api/v1/auth/login",
            json!({"email": "pw@example.com", "password": "password123"})
        )
        .await
        .status(),
        401
    );
    app.login("pw@example.com", "newpass123").await;
    assert_eq!(
        app.count("SELECT count(*) FROM events WHERE event_type = 'user.password_changed'")
            .await,
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_user_can_no_longer_log_in_and_frees_the_email() {
    let app = spawn_app().await;
    let (id, token) = app.signed_in("gone@example.com").await;
    let response = app
        .client
        .delete(app.url(&format!("/api/v1/users/{id}")))
        .bearer_auth(&token)
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 204);
    assert_eq!(
        app.post(
            "/api/v1/auth/login",
            json!({"email": "gone@example.com", "password": "password123"})
        )
        .await
        .status(),
        401
    );
    let again = app
        .client
        .delete(app.url(&format!("/api/v1/users/{id}")))
        .bearer_auth(&token)
        .send()
        .await
        .expect("sent");
    assert_eq!(again.status(), 401, "the token's account is gone");
    assert_eq!(
        app.register("gone@example.com", "Back", "password123")
            .await
            .status(),
        201
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_deletes_any_user_and_unknown_ids_are_404() {
    let app = spawn_app().await;
    let victim = app.user("victim@example.com").await;
    let (_, admin) = app.admin_token().await;
    let delete = |id: String| {
        app.client
            .delete(app.url(&format!("/api/v1/users/{id}")))
            .bearer_auth(&admin)
            .send()
    };
    assert_eq!(delete(victim).await.expect("sent").status(), 204);
    assert_eq!(
        delete(uuid::Uuid::now_v7().to_string())
            .await
            .expect("sent")
            .status(),
        404
    );
    let (status, _, body) = error_code(delete("not-a-uuid".into()).await.expect("sent")).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["details"][0]["field"], "id");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_renames_are_all_applied_in_sequence() {
    let app = spawn_app().await;
    let (id, token) = app.signed_in("busy@example.com").await;
    let renames = (0..10).map(|i| {
        app.client
            .patch(app.url(&format!("/api/v1/users/{id}")))
            .bearer_auth(&token)
            .json(&json!({"name": format!("Name {i}")}))
            .send()
    });
    for response in futures::future::join_all(renames).await {
        assert_eq!(response.expect("sent").status(), 200);
    }
    let versions: Vec<i64> =
        sqlx::query_scalar("SELECT stream_version FROM events WHERE stream_id = $1::uuid ORDER BY 1")
            .bind(&id)
            .fetch_all(&app.db.pool)
            .await
            .expect("versions");
    assert_eq!(versions, (1..=11).collect::<Vec<_>>());
}
