//! The authenticated caller, from a `Bearer` access token.

use crate::{ApiError, context::record_user_id};
use auth::{AuthError, TokenVerifier};
use axum::extract::{FromRef, FromRequestParts};
use axum::http::{header, request::Parts};
use domain::user::Role;
use std::sync::Arc;
use uuid::Uuid;

/// The caller of an authenticated endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthUser {
    /// User id.
    pub id: Uuid,
    /// Role carried by the token.
    pub role: Role,
}

impl AuthUser {
    /// Whether the caller is an administrator.
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    /// Allows the user themselves or an administrator.
    pub fn require_self_or_admin(&self, user_id: Uuid) -> Result<(), ApiError> {
        if self.id == user_id || self.is_admin() {
            Ok(())
        } else {
            Err(ApiError::forbidden())
        }
    }

    /// Allows administrators only.
    pub fn require_admin(&self) -> Result<(), ApiError> {
        if self.is_admin() {
            Ok(())
        } else {
            Err(ApiError::forbidden())
        }
    }
}

impl<S> FromRequestParts<S> for AuthUser
where
    Arc<TokenVerifier>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let header = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| ApiError::unauthorized("missing bearer token"))?;
        let token = match header.split_once(' ') {
            Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() => {
                token.trim()
            }
            _ => return Err(ApiError::unauthorized("missing bearer token")),
        };
        let verifier = Arc::<TokenVerifier>::from_ref(state);
        match verifier.verify(token).await {
            Ok(claims) => {
                record_user_id(claims.sub);
                Ok(AuthUser {
                    id: claims.sub,
                    role: claims.role,
                })
            }
            Err(AuthError::Invalid(reason)) => {
                tracing::debug!(reason = %reason, "token refused");
                Err(ApiError::unauthorized("invalid or expired token"))
            }
            Err(AuthError::Unavailable(error)) => {
                tracing::error!(error = %error, "signing keys unavailable");
                Err(ApiError::unavailable("authentication is temporarily unavailable"))
            }
        }
    }
}
