//! `/api/v1/users/{id}`: profile, role, password and deletion.

use super::auth::metadata;
use super::dto::{PasswordRequest, RenameRequest, RoleRequest, UserResponse};
use crate::accounts;
use crate::state::AppState;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use domain::user::{Password, UserCommand, UserName};
use uuid::Uuid;
use web::{Actor, ApiError, ApiJson, ApiPath, ApiResponse, FieldError};

/// The version in `If-Match` (`"3"`, `W/"3"`, `3`, a product's `"3.2"`); `*` and no
/// header mean "any".
pub(super) fn if_match(headers: &HeaderMap) -> Result<Option<i64>, ApiError> {
    let Some(value) = headers.get(header::IF_MATCH) else {
        return Ok(None);
    };
    let raw = value.to_str().unwrap_or_default().trim();
    if raw == "*" {
        return Ok(None);
    }
    // The query API's product ETags may add `.<reviews version>`: the stream version is
    // the part before the dot.
    let bare = raw.trim_start_matches("W/").trim_matches('"');
    let bare = bare.split_once('.').map_or(bare, |(version, reviews)| {
        if !reviews.is_empty() && reviews.bytes().all(|b| b.is_ascii_digit()) {
            version
        } else {
            raw
        }
    });
    bare.parse::<i64>()
        .ok()
        .filter(|v| *v >= 0)
        .map(Some)
        .ok_or_else(|| {
            ApiError::invalid_field("If-Match", "must be an ETag returned by this API, e.g. \"3\"")
        })
}

fn answer(outcome: &crate::commands::UserOutcome) -> Result<ApiResponse, ApiError> {
    let user = UserResponse::from_outcome(outcome).ok_or_else(|| ApiError::not_found("user"))?;
    Ok(ApiResponse::ok(user).etag(outcome.version))
}

/// Rename a user (the user themself or an admin).
#[utoipa::path(patch, path = "/api/v1/users/{id}", tag = "users", request_body = RenameRequest,
    params(("id" = Uuid, Path), ("If-Match" = Option<String>, Header, description = "Expected version: an `ETag` of this API (`\"3\"`), or `*`", pattern = r#"^(\*|(W/)?"?[0-9]{1,18}"?)$"#)),
    security(("bearer" = [])),
    responses((status = 200, description = "Renamed; `user.renamed` appended", body = web::Envelope<UserResponse>),
        (status = 400, description = "VALIDATION_ERROR"), (status = 401, description = "UNAUTHORIZED"),
        (status = 403, description = "FORBIDDEN"), (status = 404, description = "NOT_FOUND"),
        (status = 412, description = "PRECONDITION_FAILED")))]
pub async fn rename(
    State(state): State<AppState>,
    caller: Actor,
    ApiPath(id): ApiPath<Uuid>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<RenameRequest>,
) -> Result<ApiResponse, ApiError> {
    let name = UserName::parse(&body.name).map_err(|e| ApiError::invalid_field("name", e.0))?;
    let expected = if_match(&headers)?;
    caller.require_self_or_admin(id)?;
    let outcome = state
        .users
        .execute(
            id,
            UserCommand::Rename { name },
            expected,
            None,
            &metadata(Some(caller.id)),
        )
        .await?;
    answer(&outcome)
}

/// Change a user's role (admins only).
#[utoipa::path(put, path = "/api/v1/users/{id}/role", tag = "users", request_body = RoleRequest,
    params(("id" = Uuid, Path), ("If-Match" = Option<String>, Header, description = "Expected version: an `ETag` of this API (`\"3\"`), or `*`", pattern = r#"^(\*|(W/)?"?[0-9]{1,18}"?)$"#)),
    security(("bearer" = [])),
    responses((status = 200, description = "Role set; `user.role_changed` appended when it changed", body = web::Envelope<UserResponse>),
        (status = 400, description = "VALIDATION_ERROR"), (status = 401, description = "UNAUTHORIZED"),
        (status = 403, description = "FORBIDDEN"), (status = 404, description = "NOT_FOUND"),
        (status = 412, description = "PRECONDITION_FAILED")))]
pub async fn change_role(
    State(state): State<AppState>,
    caller: Actor,
    ApiPath(id): ApiPath<Uuid>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<RoleRequest>,
) -> Result<ApiResponse, ApiError> {
    let role = body.validate()?;
    let expected = if_match(&headers)?;
    caller.require_admin()?;
    let outcome = state
        .users
        .execute(
            id,
            UserCommand::ChangeRole { role },
            expected,
            None,
            &metadata(Some(caller.id)),
        )
        .await?;
    answer(&outcome)
}

/// Change one's own password; every refresh token of the user is revoked.
#[utoipa::path(put, path = "/api/v1/users/{id}/password", tag = "users", request_body = PasswordRequest,
    params(("id" = Uuid, Path), ("If-Match" = Option<String>, Header, description = "Expected version: an `ETag` of this API (`\"3\"`), or `*`", pattern = r#"^(\*|(W/)?"?[0-9]{1,18}"?)$"#)),
    security(("bearer" = [])),
    responses((status = 204, description = "Changed; `user.password_changed` appended"),
        (status = 400, description = "VALIDATION_ERROR (also a wrong currentPassword)"),
        (status = 401, description = "UNAUTHORIZED"), (status = 403, description = "FORBIDDEN: not yourself"),
        (status = 404, description = "NOT_FOUND")))]
pub async fn change_password(
    State(state): State<AppState>,
    caller: Actor,
    ApiPath(id): ApiPath<Uuid>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<PasswordRequest>,
) -> Result<StatusCode, ApiError> {
    let new_password =
        Password::parse(&body.new_password).map_err(|e| ApiError::invalid_field("newPassword", e.0))?;
    let expected = if_match(&headers)?;
    if caller.id != id {
        return Err(ApiError::forbidden());
    }
    let stored = accounts::password_hash(&state.pool, id)
        .await
        .map_err(ApiError::internal)?;
    let Some(stored) = stored else {
        return Err(ApiError::not_found("user"));
    };
    let hasher = state.users.hasher();
    if !hasher
        .verify(&body.current_password, Some(&stored))
        .await
        .map_err(ApiError::internal)?
    {
        return Err(ApiError::validation(vec![FieldError::new(
            "currentPassword",
            "is incorrect",
        )]));
    }
    let hash = hasher
        .hash(new_password.expose())
        .await
        .map_err(ApiError::internal)?;
    state
        .users
        .execute(
            id,
            UserCommand::ChangePassword,
            expected,
            Some(&hash),
            &metadata(Some(caller.id)),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Delete a user (the user themself or an admin): they can no longer log in, and
/// their email and name are erased from the read models.
#[utoipa::path(delete, path = "/api/v1/users/{id}", tag = "users",
    params(("id" = Uuid, Path), ("If-Match" = Option<String>, Header, description = "Expected version: an `ETag` of this API (`\"3\"`), or `*`", pattern = r#"^(\*|(W/)?"?[0-9]{1,18}"?)$"#)),
    security(("bearer" = [])),
    responses((status = 204, description = "Deleted; `user.deleted` appended"),
        (status = 401, description = "UNAUTHORIZED"), (status = 403, description = "FORBIDDEN"),
        (status = 404, description = "NOT_FOUND"), (status = 412, description = "PRECONDITION_FAILED")))]
pub async fn delete(
    State(state): State<AppState>,
    caller: Actor,
    ApiPath(id): ApiPath<Uuid>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let expected = if_match(&headers)?;
    caller.require_self_or_admin(id)?;
    state
        .users
        .execute(
            id,
            UserCommand::Delete,
            expected,
            None,
            &metadata(Some(caller.id)),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
