//! The authenticated caller, from a `Bearer` access token, and what they may do now.
//!
//! A token proves who the caller is ([`AuthUser`]); the role it carries may be up to a
//! token lifetime old. What the caller may do is read from the write side
//! ([`auth::Authority`]): [`Actor`] checks it eagerly on every request (every write), and
//! [`Reader`] checks it when a read uses admin powers.

use crate::{ApiError, context::record_user_id};
use auth::{AuthError, Authority, TokenVerifier};
use axum::extract::{FromRef, FromRequestParts};
use axum::http::{HeaderMap, header, request::Parts};
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

/// The token of an `Authorization: Bearer <token>` header, if there is one.
pub(crate) fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() => {
            Some(token.trim())
        }
        _ => None,
    }
}

impl<S> FromRequestParts<S> for AuthUser
where
    Arc<TokenVerifier>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let token =
            bearer_token(&parts.headers).ok_or_else(|| ApiError::unauthorized("missing bearer token"))?;
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

/// The caller as they stand now on the write side: they still exist, and `role` is their
/// current role, whatever their token says. Extracting it costs one primary-key lookup;
/// every write handler takes one, so a deleted user's token is refused (401) and a
/// demoted admin acts as a user (403 on admin actions) from the next request on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Actor {
    /// User id.
    pub id: Uuid,
    /// Current role.
    pub role: Role,
}

impl Actor {
    /// Confirms a token's user against their current standing: 401 when the account is
    /// gone, otherwise the actor with their current role.
    pub async fn confirm(user: AuthUser, authority: &Authority) -> Result<Self, ApiError> {
        match authority.current_role(user.id).await {
            Ok(Some(role)) => Ok(Actor { id: user.id, role }),
            Ok(None) => Err(ApiError::unauthorized("the account no longer exists")),
            Err(error) => {
                tracing::error!(error = %error, "user authority unavailable");
                Err(ApiError::unavailable("authorisation is temporarily unavailable"))
            }
        }
    }

    /// Whether the caller is an administrator now.
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    /// Allows the user themselves or a current administrator.
    pub fn require_self_or_admin(&self, user_id: Uuid) -> Result<(), ApiError> {
        self.as_user().require_self_or_admin(user_id)
    }

    /// Allows current administrators only.
    pub fn require_admin(&self) -> Result<(), ApiError> {
        self.as_user().require_admin()
    }

    fn as_user(&self) -> AuthUser {
        AuthUser {
            id: self.id,
            role: self.role,
        }
    }
}

impl<S> FromRequestParts<S> for Actor
where
    Arc<TokenVerifier>: FromRef<S>,
    Authority: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let user = AuthUser::from_request_parts(parts, state).await?;
        Actor::confirm(user, &Authority::from_ref(state)).await
    }
}

/// A current administrator, for operator routes: 401 without a valid token or when the
/// account is gone, 403 when the caller is not an administrator now (whatever role the
/// token carries), checked before any other input is looked at.
#[derive(Debug, Clone, Copy)]
pub struct Admin(pub Actor);

impl<S> FromRequestParts<S> for Admin
where
    Arc<TokenVerifier>: FromRef<S>,
    Authority: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let actor = Actor::from_request_parts(parts, state).await?;
        actor.require_admin()?;
        Ok(Admin(actor))
    }
}

/// The caller of a read. Reading one's own data needs only the token; anything more is
/// decided by the caller's current role on the write side, read each time (no cache), so
/// reads that stay within the caller's own data cost no query.
#[derive(Clone)]
pub struct Reader {
    /// Who the token says the caller is.
    pub user: AuthUser,
    authority: Authority,
}

impl Reader {
    /// The caller's id.
    pub fn id(&self) -> Uuid {
        self.user.id
    }

    /// The caller as they stand now (401 when their account is gone).
    pub async fn current(&self) -> Result<Actor, ApiError> {
        Actor::confirm(self.user, &self.authority).await
    }

    /// Whether the caller is an administrator now.
    pub async fn is_admin(&self) -> Result<bool, ApiError> {
        Ok(self.current().await?.is_admin())
    }

    /// Allows current administrators only, whatever role the token carries.
    pub async fn require_admin(&self) -> Result<(), ApiError> {
        self.current().await?.require_admin()
    }

    /// Allows the user themselves (token only) or a current administrator.
    pub async fn require_self_or_admin(&self, user_id: Uuid) -> Result<(), ApiError> {
        if self.user.id == user_id {
            Ok(())
        } else {
            self.require_admin().await
        }
    }
}

impl<S> FromRequestParts<S> for Reader
where
    Arc<TokenVerifier>: FromRef<S>,
    Authority: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let user = AuthUser::from_request_parts(parts, state).await?;
        Ok(Reader {
            user,
            authority: Authority::from_ref(state),
        })
    }
}

/// The longest reason an administrator may give for an action.
pub const MAX_REASON: usize = 500;

/// The reason given for an administrator's action, trimmed (`None` when none or blank):
/// 400 on `reason` when it is over [`MAX_REASON`] characters or holds NUL.
pub fn optional_reason(raw: Option<&str>) -> Result<Option<&str>, ApiError> {
    let reason = raw.map(str::trim).filter(|r| !r.is_empty());
    if reason.is_some_and(|r| r.chars().count() > MAX_REASON || r.contains('\0')) {
        return Err(ApiError::invalid_field(
            "reason",
            "must be at most 500 characters, without NUL",
        ));
    }
    Ok(reason)
}
