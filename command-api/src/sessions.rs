//! Login, refresh-token rotation and logout.

use crate::accounts::{self, Rotation};
use crate::commands::{CommandError, Users};
use auth::{AccessToken, TokenIssuer};
use domain::user::{Email, Role, UserState};
use sqlx::PgPool;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// A freshly issued token pair and the user it is for.
pub struct TokenPair {
    /// Short-lived JWT.
    pub access: AccessToken,
    /// Opaque refresh token.
    pub refresh_token: String,
    /// User id.
    pub user_id: Uuid,
    /// User state (always active).
    pub state: UserState,
    /// User version.
    pub version: i64,
}

/// Why a session operation failed.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// Wrong email or password (deliberately indistinguishable).
    #[error("invalid email or password")]
    InvalidCredentials,
    /// Refresh token unknown, expired, revoked or reused.
    #[error("invalid refresh token")]
    InvalidToken,
    /// Anything else.
    #[error(transparent)]
    Internal(Box<dyn std::error::Error + Send + Sync>),
}

impl From<sqlx::Error> for SessionError {
    fn from(error: sqlx::Error) -> Self {
        SessionError::Internal(Box::new(error))
    }
}

impl From<CommandError> for SessionError {
    fn from(error: CommandError) -> Self {
        SessionError::Internal(Box::new(error))
    }
}

/// The session service.
#[derive(Clone)]
pub struct Sessions {
    pool: PgPool,
    users: Users,
    issuer: Arc<TokenIssuer>,
    refresh_ttl: Duration,
}

impl Sessions {
    /// A service issuing tokens with `issuer`.
    pub fn new(pool: PgPool, users: Users, issuer: Arc<TokenIssuer>, refresh_ttl: Duration) -> Self {
        Self {
            pool,
            users,
            issuer,
            refresh_ttl,
        }
    }

    /// The access-token lifetime.
    pub fn access_ttl(&self) -> chrono::Duration {
        self.issuer.ttl()
    }

    /// Checks email and password and starts a session. Unknown emails cost the same
    /// argon2 work as wrong passwords.
    pub async fn login(&self, email: &str, password: &str) -> Result<TokenPair, SessionError> {
        let user_id = match Email::parse(email) {
            Ok(email) => accounts::user_id_by_email(&self.pool, email.as_str()).await?,
            Err(_) => None,
        };
        let hash = match user_id {
            Some(id) => accounts::password_hash(&self.pool, id).await?,
            None => None,
        };
        let matches = self
            .users
            .hasher()
            .verify(password, hash.as_deref())
            .await
            .map_err(|e| SessionError::Internal(Box::new(e)))?;
        let Some(user_id) = user_id.filter(|_| matches) else {
            return Err(SessionError::InvalidCredentials);
        };
        let (state, version) = self.users.load(user_id).await?;
        let UserState::Active { role, .. } = &state else {
            return Err(SessionError::InvalidCredentials);
        };
        let secret = accounts::create_session(&self.pool, user_id, self.refresh_ttl).await?;
        let access = self.access_token(user_id, *role)?;
        Ok(TokenPair {
            access,
            refresh_token: secret.token,
            user_id,
            state,
            version,
        })
    }

    /// Exchanges a live refresh token for a new pair; a reused one revokes its family.
    pub async fn refresh(&self, token: &str) -> Result<TokenPair, SessionError> {
        let (user_id, secret) = match accounts::rotate(&self.pool, token, self.refresh_ttl).await? {
            Rotation::Rotated { user_id, secret } => (user_id, secret),
            Rotation::Reused => {
                tracing::warn!("refresh token reuse detected; session family revoked");
                return Err(SessionError::InvalidToken);
            }
            Rotation::Invalid => return Err(SessionError::InvalidToken),
        };
        let (state, version) = self.users.load(user_id).await?;
        let UserState::Active { role, .. } = &state else {
            accounts::revoke_session(&self.pool, &secret.token).await?;
            return Err(SessionError::InvalidToken);
        };
        let access = self.access_token(user_id, *role)?;
        Ok(TokenPair {
            access,
            refresh_token: secret.token,
            user_id,
            state,
            version,
        })
    }

    /// Revokes the session of a refresh token.
    pub async fn logout(&self, token: &str) -> Result<(), SessionError> {
        Ok(accounts::revoke_session(&self.pool, token).await?)
    }

    fn access_token(&self, user_id: Uuid, role: Role) -> Result<AccessToken, SessionError> {
        self.issuer
            .issue(user_id, role)
            .map_err(|e| SessionError::Internal(Box::new(e)))
    }
}
