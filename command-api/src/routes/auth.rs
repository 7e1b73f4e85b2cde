//! `/api/v1/auth/*`: registration and sessions. Rate limited per client.

use super::dto::{LoginRequest, RefreshRequest, RegisterRequest, TokenResponse, UserResponse};
use crate::accounts;
use crate::commands::{CommandError, PendingIdempotency, Registration};
use crate::idempotency;
use crate::sessions::{SessionError, TokenPair};
use crate::state::AppState;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use domain::user::Role;
use eventstore::{EventMetadata, IdempotencyRecord};
use serde_json::json;
use web::rate_limit::{Peer, client_address};
use web::{ApiError, ApiJson, ApiResponse, current_request_id};

const REGISTER_ROUTE: &str = "POST /api/v1/auth/register";

/// Metadata of events caused by the current request.
pub(super) fn metadata(actor_id: Option<uuid::Uuid>) -> EventMetadata {
    let request_id = current_request_id();
    EventMetadata {
        correlation_id: Some(request_id.clone()),
        causation_id: Some(request_id),
        actor_id,
    }
}

/// Register a new user.
#[utoipa::path(post, path = "/api/v1/auth/register", tag = "auth", request_body = RegisterRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Replays the first answer for the same request", pattern = "^[!-~]{1,255}$")),
    responses((status = 201, description = "Registered; `user.registered` appended", body = web::Envelope<UserResponse>),
        (status = 400, description = "VALIDATION_ERROR"), (status = 409, description = "CONFLICT: email taken"),
        (status = 415, description = "UNSUPPORTED_MEDIA_TYPE"), (status = 422, description = "IDEMPOTENCY_KEY_REUSED"),
        (status = 429, description = "RATE_LIMITED")))]
pub async fn register(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<RegisterRequest>,
) -> Result<ApiResponse, ApiError> {
    let (email, name, password) = body.validate()?;
    let key = idempotency::key_from(&headers)?;
    // The password is left out of the stored fingerprint; a replay checks it against
    // the account's argon2 hash instead, so no fast hash of it is ever stored.
    let hash = idempotency::request_hash(REGISTER_ROUTE, &json!({ "email": email, "name": name }));
    if let Some(key) = &key
        && let Some(record) = idempotency::lookup(&state.pool, "anonymous", key).await?
    {
        return replay_registration(&state, &record, &hash, &body.password).await;
    }
    let pending = key.as_ref().map(|key| PendingIdempotency {
        record: idempotency::pending_record("anonymous", key, &hash, StatusCode::CREATED, None),
        render: std::sync::Arc::new(|outcome| json!(UserResponse::from_outcome(outcome))),
    });
    let input = Registration {
        email,
        name,
        password: Some(password),
        role: Role::User,
    };
    match state.users.register(input, &metadata(None), pending).await {
        Ok(outcome) => {
            let user = UserResponse::from_outcome(&outcome)
                .ok_or_else(|| ApiError::internal("registered user is not active"))?;
            let location = format!("/api/v1/users/{}", user.id);
            Ok(ApiResponse::created(user)
                .etag(outcome.version)
                .header(header::LOCATION, &location))
        }
        // A concurrent request with the same key won the race (it holds the email
        // claim, or stored its answer first): answer as it did.
        Err(error @ (CommandError::IdempotencyRaced | CommandError::EmailTaken)) if key.is_some() => {
            let key = key.unwrap_or_default();
            match idempotency::lookup(&state.pool, "anonymous", &key).await? {
                Some(record) => replay_registration(&state, &record, &hash, &body.password).await,
                None => Err(error.into()),
            }
        }
        Err(error) => Err(error.into()),
    }
}

async fn replay_registration(
    state: &AppState,
    record: &IdempotencyRecord,
    hash: &str,
    password: &str,
) -> Result<ApiResponse, ApiError> {
    if record.request_hash != hash {
        return Err(idempotency::reused());
    }
    let user_id = record
        .body
        .get("id")
        .and_then(|v| v.as_str())
        .and_then(|v| v.parse().ok());
    let stored = match user_id {
        Some(id) => accounts::password_hash(&state.pool, id)
            .await
            .map_err(ApiError::internal)?,
        None => None,
    };
    let same_password = state
        .users
        .hasher()
        .verify(password, stored.as_deref())
        .await
        .map_err(ApiError::internal)?;
    if stored.is_some() && !same_password {
        return Err(idempotency::reused());
    }
    let mut response = idempotency::replay(record);
    if let Some(id) = user_id {
        response = response.header(header::LOCATION, &format!("/api/v1/users/{id}"));
    }
    Ok(response)
}

fn token_response(pair: TokenPair, expires_in: i64) -> Result<ApiResponse, ApiError> {
    let user = UserResponse::from_state(pair.user_id, &pair.state, pair.version, None)
        .ok_or_else(|| ApiError::internal("session for an inactive user"))?;
    Ok(ApiResponse::ok(TokenResponse {
        access_token: pair.access.token,
        refresh_token: pair.refresh_token,
        token_type: "Bearer".into(),
        expires_in,
        user,
    }))
}

/// Log in with email and password.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, description = "Token pair", body = web::Envelope<TokenResponse>),
        (status = 400, description = "VALIDATION_ERROR"),
        (status = 401, description = "UNAUTHORIZED: wrong email or password (same answer for both)"),
        (status = 429, description = "RATE_LIMITED: too many requests, or too many failed logins for the account or from the address (`LOGIN_FAILURE_LIMIT`)")))]
pub async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
    peer: Peer,
    ApiJson(body): ApiJson<LoginRequest>,
) -> Result<ApiResponse, ApiError> {
    let address = client_address(&headers, peer.0, state.trust_forwarded_for);
    let attempt = state.login_limit.begin(&body.email, &address).await?;
    match state.sessions.login(&body.email, &body.password).await {
        Ok(pair) => {
            state.login_limit.forgive(attempt).await;
            token_response(pair, state.sessions.access_ttl().num_seconds())
        }
        Err(error @ SessionError::InvalidCredentials) => Err(error.into()),
        Err(error) => {
            state.login_limit.forgive(attempt).await;
            Err(error.into())
        }
    }
}

/// Exchange a refresh token for a new pair. The old token dies; presenting it again
/// revokes every token of its family.
#[utoipa::path(post, path = "/api/v1/auth/refresh", tag = "auth", request_body = RefreshRequest,
    responses((status = 200, description = "New token pair", body = web::Envelope<TokenResponse>),
        (status = 401, description = "UNAUTHORIZED: unknown, expired, revoked or reused token"),
        (status = 429, description = "RATE_LIMITED")))]
pub async fn refresh(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<RefreshRequest>,
) -> Result<ApiResponse, ApiError> {
    let pair = state.sessions.refresh(&body.refresh_token).await?;
    token_response(pair, state.sessions.access_ttl().num_seconds())
}

/// Log out: revoke the refresh token's session.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth", request_body = RefreshRequest,
    responses((status = 204, description = "Revoked (also for unknown tokens)"), (status = 400, description = "VALIDATION_ERROR"),
        (status = 429, description = "RATE_LIMITED")))]
pub async fn logout(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<RefreshRequest>,
) -> Result<StatusCode, ApiError> {
    state.sessions.logout(&body.refresh_token).await?;
    Ok(StatusCode::NO_CONTENT)
}
