//! Authority is current (DESIGN.md guarantee 9): every write checks the caller's role and
//! existence on the write side, whatever their still-valid access token says.

use crate::helpers::{TestApp, body, error_code, spawn_with};
use command_api::AdminAccount;
use reqwest::Response;
use serde_json::{Value, json};

const BOOTSTRAP_EMAIL: &str = "boss@example.com";
const BOOTSTRAP_PASSWORD: &str = "bootstrap-42";

/// A command API started with a bootstrap administrator.
async fn app_with_bootstrap_admin() -> TestApp {
    spawn_with(|settings| {
        settings.admin = Some(AdminAccount {
            email: BOOTSTRAP_EMAIL.into(),
            password: BOOTSTRAP_PASSWORD.into(),
            name: "Boss".into(),
        })
    })
    .await
}

/// (id, access token) of the bootstrap administrator.
async fn bootstrap_admin(app: &TestApp) -> (String, String) {
    let tokens = app.login(BOOTSTRAP_EMAIL, BOOTSTRAP_PASSWORD).await;
    (
        tokens["user"]["id"].as_str().expect("id").to_owned(),
        tokens["accessToken"].as_str().expect("token").to_owned(),
    )
}

async fn put_role(app: &TestApp, token: &str, id: &str, role: &str) -> Response {
    app.client
        .put(app.url(&format!("/api/v1/users/{id}/role")))
        .bearer_auth(token)
        .json(&json!({ "role": role }))
        .send()
        .await
        .expect("sent")
}

async fn delete_user(app: &TestApp, token: &str, id: &str) -> Response {
    app.client
        .delete(app.url(&format!("/api/v1/users/{id}")))
        .bearer_auth(token)
        .send()
        .await
        .expect("sent")
}

async fn rename(app: &TestApp, token: &str, id: &str, name: &str) -> Response {
    app.client
        .patch(app.url(&format!("/api/v1/users/{id}")))
        .bearer_auth(token)
        .json(&json!({ "name": name }))
        .send()
        .await
        .expect("sent")
}

async fn create_product(app: &TestApp, token: &str, sku: &str) -> Response {
    app.client
        .post(app.url("/api/v1/products"))
        .bearer_auth(token)
        .json(&json!({"sku": sku, "name": "Mug", "description": "", "priceCents": 900, "currency": "EUR", "stock": 5}))
        .send()
        .await
        .expect("sent")
}

/// An admin promoted by the bootstrap admin, logged in (so holding an admin token), then
/// acted on by the bootstrap admin with `then`: returns (id, their tokens).
async fn admin_then(app: &TestApp, email: &str, then: &str) -> (String, Value) {
    let (_, boss) = bootstrap_admin(app).await;
    let id = app.user(email).await;
    assert_eq!(put_role(app, &boss, &id, "admin").await.status(), 200);
    let tokens = app.login(email, "password123").await;
    assert_eq!(tokens["user"]["role"], "admin");
    let response = match then {
        "delete" => delete_user(app, &boss, &id).await,
        _ => put_role(app, &boss, &id, then).await,
    };
    assert!(response.status().is_success(), "{then}: {}", response.status());
    (id, tokens)
}

fn access(tokens: &Value) -> &str {
    tokens["accessToken"].as_str().expect("access token")
}

async fn assert_refused(response: Response, status: u16, code: &str) {
    let (actual, actual_code, body) = error_code(response).await;
    assert_eq!((actual, actual_code.as_str()), (status, code), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_admins_token_cannot_create_a_product() {
    let app = app_with_bootstrap_admin().await;
    let (_, tokens) = admin_then(&app, "gone@example.com", "delete").await;
    assert_refused(
        create_product(&app, access(&tokens), "MUG-1").await,
        401,
        "UNAUTHORIZED",
    )
    .await;
    assert_eq!(
        app.count("SELECT count(*) FROM events WHERE event_type = 'product.created'")
            .await,
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_admins_token_cannot_promote_another_user() {
    let app = app_with_bootstrap_admin().await;
    let (_, tokens) = admin_then(&app, "gone@example.com", "delete").await;
    let other = app.user("other@example.com").await;
    assert_refused(
        put_role(&app, access(&tokens), &other, "admin").await,
        401,
        "UNAUTHORIZED",
    )
    .await;
    assert_eq!(
        app.count("SELECT count(*) FROM user_authority WHERE role = 'admin'")
            .await,
        1,
        "only the bootstrap admin is an admin"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_admins_token_cannot_delete_the_bootstrap_admin() {
    let app = app_with_bootstrap_admin().await;
    let (_, tokens) = admin_then(&app, "gone@example.com", "delete").await;
    let (boss_id, _) = bootstrap_admin(&app).await;
    assert_refused(
        delete_user(&app, access(&tokens), &boss_id).await,
        401,
        "UNAUTHORIZED",
    )
    .await;
    app.login(BOOTSTRAP_EMAIL, BOOTSTRAP_PASSWORD).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_users_token_cannot_change_their_own_account() {
    let app = app_with_bootstrap_admin().await;
    let (id, tokens) = admin_then(&app, "gone@example.com", "delete").await;
    assert_refused(
        rename(&app, access(&tokens), &id, "Back").await,
        401,
        "UNAUTHORIZED",
    )
    .await;
    assert_refused(delete_user(&app, access(&tokens), &id).await, 401, "UNAUTHORIZED").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_users_refresh_token_mints_no_access_token() {
    let app = app_with_bootstrap_admin().await;
    let (_, tokens) = admin_then(&app, "gone@example.com", "delete").await;
    let response = app
        .post(
            "/api/v1/auth/refresh",
            json!({"refreshToken": tokens["refreshToken"]}),
        )
        .await;
    assert_refused(response, 401, "UNAUTHORIZED").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_demoted_admin_cannot_promote_themself_again_with_the_old_token() {
    let app = app_with_bootstrap_admin().await;
    let (id, tokens) = admin_then(&app, "demoted@example.com", "user").await;
    assert_refused(
        put_role(&app, access(&tokens), &id, "admin").await,
        403,
        "FORBIDDEN",
    )
    .await;
    assert_eq!(
        app.count("SELECT count(*) FROM events WHERE event_type = 'user.role_changed'")
            .await,
        2,
        "promoted once and demoted once, never re-promoted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_demoted_admin_cannot_act_as_admin_but_still_renames_themself() {
    let app = app_with_bootstrap_admin().await;
    let (id, tokens) = admin_then(&app, "demoted@example.com", "user").await;
    let token = access(&tokens);
    let other = app.user("other@example.com").await;
    assert_refused(create_product(&app, token, "MUG-1").await, 403, "FORBIDDEN").await;
    assert_refused(rename(&app, token, &other, "Hijacked").await, 403, "FORBIDDEN").await;
    assert_refused(delete_user(&app, token, &other).await, 403, "FORBIDDEN").await;
    let response = rename(&app, token, &id, "Still Me").await;
    assert_eq!(response.status(), 200);
    assert_eq!(body(response).await["data"]["name"], "Still Me");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_demoted_admins_refresh_mints_a_user_token() {
    let app = app_with_bootstrap_admin().await;
    let (_, tokens) = admin_then(&app, "demoted@example.com", "user").await;
    let response = app
        .post(
            "/api/v1/auth/refresh",
            json!({"refreshToken": tokens["refreshToken"]}),
        )
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(body(response).await["data"]["user"]["role"], "user");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_promoted_user_acts_as_admin_before_their_token_is_renewed() {
    let app = app_with_bootstrap_admin().await;
    let (_, boss) = bootstrap_admin(&app).await;
    let (id, token) = app.signed_in("new-admin@example.com").await;
    assert_refused(create_product(&app, &token, "MUG-1").await, 403, "FORBIDDEN").await;
    assert_eq!(put_role(&app, &boss, &id, "admin").await.status(), 200);
    assert_eq!(create_product(&app, &token, "MUG-1").await.status(), 201);
}
