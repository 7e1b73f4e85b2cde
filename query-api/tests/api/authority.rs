//! Authority is current (DESIGN.md guarantee 9) on the read side: admin reads are
//! decided by the caller's role in the write side's `user_authority` table at the time
//! of the request, not by the role their token carries.

use crate::helpers::{NewUser, TestApp, assert_error, spawn_app};
use domain::user::Role;
use reqwest::StatusCode;
use uuid::Uuid;

/// An administrator with a valid admin token, and another user.
async fn admin_and_user(app: &TestApp) -> (Uuid, String, Uuid) {
    let admin = app
        .seed(NewUser {
            role: Role::Admin,
            ..NewUser::named("Root")
        })
        .await;
    let user = app.seed(NewUser::named("Someone")).await;
    let token = app.token(admin.id, Role::Admin);
    let (status, _) = app.get_json("/api/v1/users", Some(&token)).await;
    assert_eq!(status, StatusCode::OK, "an admin lists users");
    (admin.id, token, user.id)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deleted_admins_token_lists_no_users() {
    let app = spawn_app().await;
    let (admin, token, _) = admin_and_user(&app).await;
    app.mark_deleted(admin).await;
    let (status, body) = app.get_json("/api/v1/users", Some(&token)).await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deleted_admins_token_reads_no_other_user_nor_their_orders() {
    let app = spawn_app().await;
    let (admin, token, user) = admin_and_user(&app).await;
    app.mark_deleted(admin).await;
    for path in [
        format!("/api/v1/users/{user}"),
        format!("/api/v1/users/{user}/orders"),
    ] {
        let (status, body) = app.get_json(&path, Some(&token)).await;
        assert_error(status, &body, StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_demoted_admins_token_lists_no_users_nor_reads_others() {
    let app = spawn_app().await;
    let (admin, token, user) = admin_and_user(&app).await;
    app.set_authority(admin, Some(Role::User)).await;
    for path in [
        "/api/v1/users".to_owned(),
        format!("/api/v1/users/{user}"),
        format!("/api/v1/users/{user}/orders"),
    ] {
        let (status, body) = app.get_json(&path, Some(&token)).await;
        assert_error(status, &body, StatusCode::FORBIDDEN, "FORBIDDEN");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_demoted_admin_still_reads_their_own_user_and_orders() {
    let app = spawn_app().await;
    let (admin, token, _) = admin_and_user(&app).await;
    app.set_authority(admin, Some(Role::User)).await;
    for path in [
        format!("/api/v1/users/{admin}"),
        format!("/api/v1/users/{admin}/orders"),
        "/api/v1/me".to_owned(),
    ] {
        let (status, body) = app.get_json(&path, Some(&token)).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_promoted_users_old_token_lists_users() {
    let app = spawn_app().await;
    let user = app.seed(NewUser::named("Rising")).await;
    let token = app.token(user.id, Role::User);
    let (status, body) = app.get_json("/api/v1/users", Some(&token)).await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "FORBIDDEN");
    app.set_authority(user.id, Some(Role::Admin)).await;
    let (status, _) = app.get_json("/api/v1/users", Some(&token)).await;
    assert_eq!(status, StatusCode::OK);
}

/// Roles are never remembered: each change below is seen by the very next request, round
/// after round, even right after the same caller was answered with the old role.
#[tokio::test(flavor = "multi_thread")]
async fn each_role_change_is_seen_by_the_very_next_request() {
    let app = spawn_app().await;
    let (admin, token, _) = admin_and_user(&app).await;
    for round in 0..20 {
        app.set_authority(admin, Some(Role::User)).await;
        let (status, body) = app.get_json("/api/v1/users", Some(&token)).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "round {round}, demoted: {body}");
        app.set_authority(admin, Some(Role::Admin)).await;
        let (status, body) = app.get_json("/api/v1/users", Some(&token)).await;
        assert_eq!(status, StatusCode::OK, "round {round}, promoted: {body}");
        let (status, _) = app.get_json("/api/v1/users", Some(&token)).await;
        assert_eq!(status, StatusCode::OK, "round {round}, remembered");
    }
    app.set_authority(admin, None).await;
    let (status, body) = app.get_json("/api/v1/users", Some(&token)).await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
}
