//! `/api/v1/users` and `/api/v1/users/{id}`: accounts made by admins, profile (name and
//! email), role, password and deletion.

use super::auth::metadata;
use super::dto::{
    CreateUserRequest, PasswordRequest, ReplaceUserRequest, RoleRequest, UpdateUserRequest, UserResponse,
};
use crate::accounts;
use crate::commands::Registration;
use crate::state::AppState;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use domain::user::{Email, Password, Role, UserCommand, UserName};
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

/// Create an account (admins only). It has no password: the user gets an email with a
/// single-use link to set one (the reset flow; `user.registered` and
/// `user.password_reset_requested` are appended together).
#[utoipa::path(post, path = "/api/v1/users", tag = "users", request_body = CreateUserRequest,
    security(("bearer" = [])),
    responses((status = 201, description = "Created; `user.registered` and `user.password_reset_requested` appended", body = web::Envelope<UserResponse>),
        (status = 400, description = "VALIDATION_ERROR"), (status = 401, description = "UNAUTHORIZED"),
        (status = 403, description = "FORBIDDEN: not an admin"),
        (status = 409, description = "CONFLICT: the email is already registered")))]
pub async fn create(
    State(state): State<AppState>,
    caller: Actor,
    ApiJson(body): ApiJson<CreateUserRequest>,
) -> Result<ApiResponse, ApiError> {
    let mut errors = Vec::new();
    let email = Email::parse(&body.email).map_err(|e| errors.push(FieldError::new("email", e.0)));
    let name = UserName::parse(&body.name).map_err(|e| errors.push(FieldError::new("name", e.0)));
    let role = Role::parse(&body.role).map_err(|e| errors.push(FieldError::new("role", e.0)));
    let (Ok(email), Ok(name), Ok(role)) = (email, name, role) else {
        return Err(ApiError::validation(errors));
    };
    caller.require_admin()?;
    let input = Registration {
        email,
        name,
        password: None,
        role,
    };
    let outcome = state
        .users
        .register(input, &metadata(Some(caller.id)), None)
        .await?;
    let user = UserResponse::from_outcome(&outcome).ok_or_else(|| ApiError::not_found("user"))?;
    Ok(ApiResponse::created(user)
        .etag(outcome.version)
        .header(header::LOCATION, &format!("/api/v1/users/{}", outcome.id)))
}

/// Change a user's name and/or email (the user themself or an admin). A new email must be
/// free (409 otherwise, also when two accounts race for it); the old address is told.
#[utoipa::path(patch, path = "/api/v1/users/{id}", tag = "users", request_body = UpdateUserRequest,
    params(("id" = Uuid, Path), ("If-Match" = Option<String>, Header, description = "Expected version: an `ETag` of this API (`\"3\"`), or `*`", pattern = r#"^(\*|(W/)?"?[0-9]{1,18}"?)$"#)),
    security(("bearer" = [])),
    responses((status = 200, description = "Changed; `user.renamed` and/or `user.email_changed` appended", body = web::Envelope<UserResponse>),
        (status = 400, description = "VALIDATION_ERROR"), (status = 401, description = "UNAUTHORIZED"),
        (status = 403, description = "FORBIDDEN"), (status = 404, description = "NOT_FOUND"),
        (status = 409, description = "CONFLICT: the email is already registered"),
        (status = 412, description = "PRECONDITION_FAILED")))]
pub async fn update(
    State(state): State<AppState>,
    caller: Actor,
    ApiPath(id): ApiPath<Uuid>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<UpdateUserRequest>,
) -> Result<ApiResponse, ApiError> {
    if body.name.is_none() && body.email.is_none() {
        return Err(ApiError::validation(vec![FieldError::new(
            "body",
            "give at least one of name and email",
        )]));
    }
    let commands = profile_commands(body.name.as_deref(), body.email.as_deref())?;
    change_profile(
        &state,
        caller,
        id,
        &headers,
        &commands,
        body.current_password.as_deref(),
    )
    .await
}

/// Replace a user's profile, name and email (the user themself or an admin). What is
/// unchanged appends nothing; a changed email is told to the old address.
#[utoipa::path(put, path = "/api/v1/users/{id}", tag = "users", request_body = ReplaceUserRequest,
    params(("id" = Uuid, Path), ("If-Match" = Option<String>, Header, description = "Expected version: an `ETag` of this API (`\"3\"`), or `*`", pattern = r#"^(\*|(W/)?"?[0-9]{1,18}"?)$"#)),
    security(("bearer" = [])),
    responses((status = 200, description = "Replaced; `user.renamed` and/or `user.email_changed` appended", body = web::Envelope<UserResponse>),
        (status = 400, description = "VALIDATION_ERROR"), (status = 401, description = "UNAUTHORIZED"),
        (status = 403, description = "FORBIDDEN"), (status = 404, description = "NOT_FOUND"),
        (status = 409, description = "CONFLICT: the email is already registered"),
        (status = 412, description = "PRECONDITION_FAILED")))]
pub async fn replace(
    State(state): State<AppState>,
    caller: Actor,
    ApiPath(id): ApiPath<Uuid>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<ReplaceUserRequest>,
) -> Result<ApiResponse, ApiError> {
    let commands = profile_commands(Some(&body.name), Some(&body.email))?;
    change_profile(
        &state,
        caller,
        id,
        &headers,
        &commands,
        body.current_password.as_deref(),
    )
    .await
}

/// Users who change their own email prove it is them with their password: a stolen
/// access token alone must not move the account (and its password resets) to another
/// address. Administrators changing someone else's email need no password.
async fn confirm_own_email_change(
    state: &AppState,
    id: Uuid,
    commands: &[UserCommand],
    current_password: Option<&str>,
) -> Result<(), ApiError> {
    let Some(new_email) = commands.iter().find_map(|c| match c {
        UserCommand::ChangeEmail { email } => Some(email),
        _ => None,
    }) else {
        return Ok(());
    };
    let (current, _) = state.users.load(id).await?;
    if matches!(&current, domain::user::UserState::Active { email, .. } if email == new_email) {
        return Ok(());
    }
    let Some(password) = current_password else {
        return Err(ApiError::invalid_field(
            "currentPassword",
            "is required to change your own email",
        ));
    };
    match password_matches(state, id, password).await? {
        Some(true) => Ok(()),
        // No password yet (an account an admin made) proves nothing either.
        Some(false) | None => Err(ApiError::invalid_field("currentPassword", "is incorrect")),
    }
}

/// Whether `password` is the user's current one; `None` when they have no password.
async fn password_matches(state: &AppState, id: Uuid, password: &str) -> Result<Option<bool>, ApiError> {
    let stored = accounts::password_hash(&state.pool, id)
        .await
        .map_err(ApiError::internal)?;
    let Some(stored) = stored else {
        return Ok(None);
    };
    let matches = state
        .users
        .hasher()
        .verify(password, Some(&stored))
        .await
        .map_err(ApiError::internal)?;
    Ok(Some(matches))
}

/// The commands of a profile change, every field validated (all errors at once).
fn profile_commands(name: Option<&str>, email: Option<&str>) -> Result<Vec<UserCommand>, ApiError> {
    let mut errors = Vec::new();
    let mut commands = Vec::new();
    if let Some(name) = name {
        match UserName::parse(name) {
            Ok(name) => commands.push(UserCommand::Rename { name }),
            Err(e) => errors.push(FieldError::new("name", e.0)),
        }
    }
    if let Some(email) = email {
        match Email::parse(email) {
            Ok(email) => commands.push(UserCommand::ChangeEmail { email }),
            Err(e) => errors.push(FieldError::new("email", e.0)),
        }
    }
    if errors.is_empty() {
        Ok(commands)
    } else {
        Err(ApiError::validation(errors))
    }
}

async fn change_profile(
    state: &AppState,
    caller: Actor,
    id: Uuid,
    headers: &HeaderMap,
    commands: &[UserCommand],
    current_password: Option<&str>,
) -> Result<ApiResponse, ApiError> {
    let expected = if_match(headers)?;
    caller.require_self_or_admin(id)?;
    if caller.id == id {
        confirm_own_email_change(state, id, commands, current_password).await?;
    }
    let outcome = state
        .users
        .execute_all(id, commands, expected, None, &metadata(Some(caller.id)))
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
    match password_matches(&state, id, &body.current_password).await? {
        None => return Err(ApiError::not_found("user")),
        Some(false) => return Err(ApiError::invalid_field("currentPassword", "is incorrect")),
        Some(true) => {}
    }
    let hash = state
        .users
        .hasher()
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
