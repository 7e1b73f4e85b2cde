//! `GET /api/v1/me` and `GET /api/v1/users/{id}`: cache-aside reads, access rules, ETags.

use crate::helpers::{NewUser, assert_error, spawn_app, spawn_app_with_redis};
use domain::user::Role;
use readmodels::users::CacheLookup;
use reqwest::StatusCode;
use reqwest::header::{ETAG, IF_NONE_MATCH};
use serde_json::json;
use uuid::Uuid;

#[tokio::test(flavor = "multi_thread")]
async fn a_user_reads_the_same_json_from_postgres_and_from_redis() {
    let app = spawn_app().await;
    let user = app.seed(NewUser::named("Ada Lovelace")).await;
    let token = app.token(user.id, Role::User);
    let by_id = format!("/api/v1/users/{}", user.id);

    let (status, from_postgres) = app.get_json("/api/v1/me", Some(&token)).await;
    assert_eq!(status, StatusCode::OK, "{from_postgres}");
    assert_eq!(from_postgres["data"], json!(user));
    assert_eq!(app.cached(user.id).await, CacheLookup::Hit(user.clone()));

    // With the row gone from Postgres, only Redis can still answer.
    app.remove_row(user.id).await;
    for path in ["/api/v1/me", by_id.as_str()] {
        let (status, from_redis) = app.get_json(path, Some(&token)).await;
        assert_eq!(status, StatusCode::OK, "{path}: {from_redis}");
        assert_eq!(from_redis["data"], from_postgres["data"], "{path}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_read_fills_the_cache() {
    let app = spawn_app().await;
    let user = app.seed(NewUser::named("Grace Hopper")).await;
    assert_eq!(app.cached(user.id).await, CacheLookup::Miss);

    let response = app
        .get(
            &format!("/api/v1/users/{}", user.id),
            Some(&app.admin_token().await),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);

    assert_eq!(app.cached(user.id).await, CacheLookup::Hit(user));
}

#[tokio::test(flavor = "multi_thread")]
async fn reads_are_answered_from_postgres_when_redis_is_down() {
    let app = spawn_app_with_redis(Some("redis://127.0.0.1:1")).await;
    let user = app.seed(NewUser::named("Alan Turing")).await;
    let token = app.token(user.id, Role::User);

    for path in ["/api/v1/me".to_owned(), format!("/api/v1/users/{}", user.id)] {
        let (status, body) = app.get_json(&path, Some(&token)).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        assert_eq!(body["data"], json!(user), "{path}");
    }
    let unknown = format!("/api/v1/users/{}", Uuid::now_v7());
    let (status, body) = app.get_json(&unknown, Some(&app.admin_token().await)).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "NOT_FOUND");

    let (status, body) = app.get_json("/health/ready", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let checks = &body["data"]["checks"];
    assert_eq!(
        (&checks["postgres"], &checks["redis"]),
        (&json!("up"), &json!("down")),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_user_is_cached_as_missing_until_the_projector_writes_it() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let id = Uuid::now_v7();
    let path = format!("/api/v1/users/{id}");

    let (status, body) = app.get_json(&path, Some(&admin)).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "NOT_FOUND");
    assert_eq!(app.cached(id).await, CacheLookup::Absent);

    // The projector catches up: the row lands in Postgres, the negative entry still answers...
    let late = app
        .seed(NewUser {
            id: Some(id),
            ..NewUser::named("Late Projection")
        })
        .await;
    let (status, body) = app.get_json(&path, Some(&admin)).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "NOT_FOUND");

    // ...until the projector's cache write replaces it.
    app.project_into_cache(&late).await;
    let (status, body) = app.get_json(&path, Some(&admin)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"], json!(late));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deleted_user_is_not_found() {
    let app = spawn_app().await;
    let user = app.seed(NewUser::named("Gone Soon")).await;
    app.mark_deleted(user.id).await;

    let (status, body) = app
        .get_json(
            &format!("/api/v1/users/{}", user.id),
            Some(&app.admin_token().await),
        )
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "NOT_FOUND");
    let (status, body) = app
        .get_json("/api/v1/me", Some(&app.token(user.id, Role::User)))
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "NOT_FOUND");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_user_cannot_read_another_user_even_an_unknown_one() {
    let app = spawn_app().await;
    let alice = app.seed(NewUser::named("Alice")).await;
    let bob = app.seed(NewUser::named("Bob")).await;
    let alice_token = app.token(alice.id, Role::User);

    for id in [bob.id, Uuid::now_v7()] {
        let (status, body) = app
            .get_json(&format!("/api/v1/users/{id}"), Some(&alice_token))
            .await;
        assert_error(status, &body, StatusCode::FORBIDDEN, "FORBIDDEN");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_admin_can_read_any_user() {
    let app = spawn_app().await;
    let admin = app
        .seed(NewUser {
            role: Role::Admin,
            ..NewUser::named("Root")
        })
        .await;
    let user = app.seed(NewUser::named("Someone")).await;
    let token = app.token(admin.id, Role::Admin);

    for expected in [&user, &admin] {
        let (status, body) = app
            .get_json(&format!("/api/v1/users/{}", expected.id), Some(&token))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["data"], json!(expected));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_etag_is_the_version_and_a_matching_if_none_match_answers_304() {
    let app = spawn_app().await;
    let user = app
        .seed(NewUser {
            version: 3,
            ..NewUser::named("Versioned")
        })
        .await;
    let token = app.token(user.id, Role::User);
    let url = format!("{}/api/v1/users/{}", app.address, user.id);

    let response = app.get(&format!("/api/v1/users/{}", user.id), Some(&token)).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[ETAG], "\"3\"");

    let send = |tag: &'static str| {
        app.client
            .get(&url)
            .bearer_auth(&token)
            .header(IF_NONE_MATCH, tag)
            .send()
    };
    let not_modified = send("\"3\"").await.expect("answered");
    assert_eq!(not_modified.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(not_modified.headers()[ETAG], "\"3\"");
    assert!(not_modified.bytes().await.expect("body").is_empty());

    let stale = send("\"2\"").await.expect("answered");
    assert_eq!(stale.status(), StatusCode::OK);
    assert_eq!(stale.headers()[ETAG], "\"3\"");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_invalid_uuid_in_the_path_is_refused_naming_id() {
    let app = spawn_app().await;
    let (status, body) = app
        .get_json("/api/v1/users/not-a-uuid", Some(&app.admin_token().await))
        .await;
    assert_eq!(crate::helpers::refused_fields(status, &body), vec!["id"]);
}
