//! `POST /api/v1/passwords/reset` and `POST /api/v1/passwords/reset/confirm`: a forgotten
//! password replaced through a single-use link sent by email.

use super::auth::metadata;
use crate::accounts;
use crate::state::AppState;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use domain::user::{Email, Password, UserCommand};
use serde::Deserialize;
use utoipa::ToSchema;
use web::rate_limit::{Peer, client_address};
use web::{ApiError, ApiJson};

/// `POST /api/v1/passwords/reset`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ResetRequest {
    /// The account's email address.
    #[schema(example = "ada@example.com")]
    pub email: String,
}

/// `POST /api/v1/passwords/reset/confirm`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ConfirmRequest {
    /// The token of the emailed link.
    pub token: String,
    /// The new password (same rules as at registration).
    pub new_password: String,
}

/// Ask for a link that sets a new password. The answer is the same `202`, after the same
/// work, whether or not an account has this email (nothing tells which accounts exist);
/// when one does, the workers email it a single-use link (`user.password_reset_requested`).
#[utoipa::path(post, path = "/api/v1/passwords/reset", tag = "auth", request_body = ResetRequest,
    responses((status = 202, description = "Accepted: if an account has this email, a link is on its way"),
        (status = 400, description = "VALIDATION_ERROR: not an email address"),
        (status = 429, description = "RATE_LIMITED: too many resets for this account or from this address (`PASSWORD_RESET_LIMIT`)")))]
pub async fn request_reset(
    State(state): State<AppState>,
    headers: HeaderMap,
    peer: Peer,
    ApiJson(body): ApiJson<ResetRequest>,
) -> Result<StatusCode, ApiError> {
    let email = Email::parse(&body.email).map_err(|e| ApiError::invalid_field("email", e.0))?;
    let address = client_address(&headers, peer.0, state.trust_forwarded_for);
    // Every request counts: there is no "success" to give back.
    state.reset_limit.begin(email.as_str(), &address).await?;
    let owner = accounts::user_id_by_email(&state.pool, email.as_str())
        .await
        .map_err(ApiError::internal)?;
    if let Some(user_id) = owner {
        // Appended after the answer, so that a known email is not answered later than an
        // unknown one. If it fails, the link does not come and the user asks again.
        let metadata = metadata(None);
        let users = state.users.clone();
        tokio::spawn(async move {
            if let Err(error) = users
                .execute(user_id, UserCommand::RequestPasswordReset, None, None, &metadata)
                .await
            {
                tracing::warn!(error = %error, "password reset not recorded; no link is sent");
            }
        });
    }
    Ok(StatusCode::ACCEPTED)
}

/// Set a new password with the token of an emailed link. The token works once and
/// until it expires; the change appends `user.password_changed`, revokes every refresh
/// token of the user and ends their other links.
#[utoipa::path(post, path = "/api/v1/passwords/reset/confirm", tag = "auth", request_body = ConfirmRequest,
    responses((status = 204, description = "The password is set; `user.password_changed` appended"),
        (status = 400, description = "VALIDATION_ERROR: the password breaks a rule, or the token is unknown, used or expired"),
        (status = 429, description = "RATE_LIMITED: too many attempts from this address (`PASSWORD_RESET_LIMIT`)")))]
pub async fn confirm_reset(
    State(state): State<AppState>,
    headers: HeaderMap,
    peer: Peer,
    ApiJson(body): ApiJson<ConfirmRequest>,
) -> Result<StatusCode, ApiError> {
    let password =
        Password::parse(&body.new_password).map_err(|e| ApiError::invalid_field("newPassword", e.0))?;
    let address = client_address(&headers, peer.0, state.trust_forwarded_for);
    // Counted per address (the token names no account until it is found); a success is
    // given back.
    let attempt = state.reset_limit.begin_from(&address).await?;
    let token_hash = auth::hash_refresh_token(body.token.trim());
    let Some((user_id, used_at)) = accounts::use_reset_token(&state.pool, &token_hash)
        .await
        .map_err(ApiError::internal)?
    else {
        return Err(ApiError::invalid_field("token", "is unknown, used or expired"));
    };
    let changed = async {
        let hash = state
            .users
            .hasher()
            .hash(password.expose())
            .await
            .map_err(ApiError::internal)?;
        state
            .users
            .execute(
                user_id,
                UserCommand::ChangePassword,
                None,
                Some(&hash),
                &metadata(Some(user_id)),
            )
            .await
            .map_err(ApiError::from)
    }
    .await;
    if let Err(error) = changed {
        // The token did not do its work: it stays usable until it expires.
        if let Err(restore) = accounts::restore_reset_token(&state.pool, &token_hash, used_at).await {
            tracing::warn!(error = %restore, "a used reset token could not be made usable again");
        }
        return Err(error);
    }
    state.reset_limit.forgive(attempt).await;
    Ok(StatusCode::NO_CONTENT)
}
