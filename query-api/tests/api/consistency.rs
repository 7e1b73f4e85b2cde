//! `X-Consistency-Token`: a read waits until the rows the token names reflect their
//! versions, then reads Postgres (not a cache a moment behind); past the bound it is 503
//! with `Retry-After`; a malformed token is 400 naming the header.

use crate::helpers::{NewUser, TestApp, assert_error, spawn_app, spawn_app_with};
use domain::user::Role;
use readmodels::cache::CacheLookup;
use reqwest::StatusCode;
use serde_json::Value;
use std::time::{Duration, Instant};
use uuid::Uuid;

impl TestApp {
    /// Renames a user in `users_view` at a new version, as the projector would.
    async fn project_rename(&self, id: Uuid, name: &str, version: i64) {
        sqlx::query("UPDATE users_view SET name = $2, version = $3 WHERE id = $1")
            .bind(id)
            .bind(name)
            .bind(version)
            .execute(&self.db.pool)
            .await
            .expect("rename");
    }

    async fn read_with_token(
        &self,
        path: &str,
        bearer: &str,
        token: &str,
    ) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        let response = self
            .client
            .get(format!("{}{path}", self.address))
            .bearer_auth(bearer)
            .header("X-Consistency-Token", token)
            .send()
            .await
            .expect("answered");
        let status = response.status();
        let headers = response.headers().clone();
        (status, headers, response.json().await.expect("JSON"))
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_read_with_a_token_waits_for_the_write_and_skips_the_cache_a_moment_behind() {
    let app = spawn_app().await;
    let user = app.seed(NewUser::named("Ada")).await;
    let bearer = app.token(user.id, Role::User);
    // The cache holds version 1; the write the client made is version 2.
    let (status, _) = app.get_json("/api/v1/me", Some(&bearer)).await;
    assert_eq!(status, StatusCode::OK);
    let token = format!("v1;user:{}:2", user.id);

    let projector = {
        let pool = app.db.pool.clone();
        let id = user.id;
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            sqlx::query("UPDATE users_view SET name = 'Ada Lovelace', version = 2 WHERE id = $1")
                .bind(id)
                .execute(&pool)
                .await
                .expect("rename");
        })
    };
    let started = Instant::now();
    let (status, _, body) = app.read_with_token("/api/v1/me", &bearer, &token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(started.elapsed() >= Duration::from_millis(250), "it waited");
    assert_eq!(body["data"]["name"], "Ada Lovelace");
    assert_eq!(body["data"]["version"], 2);
    projector.await.expect("renamed");

    // The read went to Postgres past the cached version 1, and left the newer copy behind.
    let CacheLookup::Hit(cached) = app.cached(user.id).await else {
        panic!("the user is cached");
    };
    assert_eq!(cached.version, 2);
    // A token already reflected answers at once.
    app.project_rename(user.id, "Ada L.", 3).await;
    let (status, _, body) = app
        .read_with_token("/api/v1/users?page=1&perPage=5", &app.admin_token().await, &token)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_never_reflected_is_503_with_retry_after_once_the_bound_has_passed() {
    let app = spawn_app_with(|settings| settings.consistency_wait = Duration::from_millis(300)).await;
    let user = app.seed(NewUser::named("Grace")).await;
    let bearer = app.token(user.id, Role::User);
    let token = format!("v1;user:{}:5,order:{}:1", user.id, Uuid::now_v7());

    let started = Instant::now();
    let (status, headers, body) = app.read_with_token("/api/v1/me", &bearer, &token).await;
    assert_error(
        status,
        &body,
        StatusCode::SERVICE_UNAVAILABLE,
        "SERVICE_UNAVAILABLE",
    );
    assert!(headers.contains_key("retry-after"));
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(250), "{waited:?}");
    assert!(waited < Duration::from_secs(3), "{waited:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_malformed_token_is_refused_naming_the_header() {
    let app = spawn_app().await;
    let user = app.seed(NewUser::named("Alan")).await;
    let bearer = app.token(user.id, Role::User);
    for token in [
        "garbage".to_owned(),
        format!("v1;user:{}:0", user.id),
        format!("v1;invoice:{}:1", user.id),
        "v1;user:not-a-uuid:1".to_owned(),
    ] {
        let (status, _, body) = app.read_with_token("/api/v1/me", &bearer, &token).await;
        assert_error(status, &body, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
        assert_eq!(
            body["error"]["details"][0]["field"], "X-Consistency-Token",
            "{token}: {body}"
        );
    }
}
