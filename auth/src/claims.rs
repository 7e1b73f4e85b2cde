//! Access-token claims and the issuer that signs them.

use crate::{AUDIENCE, SigningKey};
use chrono::{DateTime, Duration, Utc};
use domain::user::Role;
use jsonwebtoken::{Algorithm, Header, encode};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// What an access token says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// User id.
    pub sub: Uuid,
    /// Role at the time the token was minted.
    pub role: Role,
    /// Issuer.
    pub iss: String,
    /// Audience.
    pub aud: String,
    /// Issued at (seconds since the epoch).
    pub iat: i64,
    /// Expiry (seconds since the epoch).
    pub exp: i64,
    /// Token id.
    pub jti: Uuid,
}

/// A signed access token.
#[derive(Debug, Clone)]
pub struct AccessToken {
    /// The JWT.
    pub token: String,
    /// When it stops working.
    pub expires_at: DateTime<Utc>,
}

/// Mints access tokens. Only the command API holds one.
#[derive(Clone, Debug)]
pub struct TokenIssuer {
    key: SigningKey,
    issuer: String,
    ttl: Duration,
}

impl TokenIssuer {
    /// An issuer signing with `key`, tokens valid for `ttl`.
    pub fn new(key: SigningKey, issuer: impl Into<String>, ttl: Duration) -> Self {
        Self {
            key,
            issuer: issuer.into(),
            ttl,
        }
    }

    /// The signing key.
    pub fn key(&self) -> &SigningKey {
        &self.key
    }

    /// How long a token lives.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Signs a token for a user.
    pub fn issue(&self, user_id: Uuid, role: Role) -> Result<AccessToken, jsonwebtoken::errors::Error> {
        let now = Utc::now();
        let expires_at = now + self.ttl;
        let claims = Claims {
            sub: user_id,
            role,
            iss: self.issuer.clone(),
            aud: AUDIENCE.to_owned(),
            iat: now.timestamp(),
            exp: expires_at.timestamp(),
            jti: Uuid::now_v7(),
        };
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.key.kid().to_owned());
        let token = encode(&header, &claims, self.key.encoding_key())?;
        Ok(AccessToken { token, expires_at })
    }
}
