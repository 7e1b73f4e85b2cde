//! Verifies access tokens against the public keys published in Postgres.
//!
//! Only EdDSA is accepted (so `none`, HMAC with a public key as secret, and every other
//! algorithm are refused), the key is chosen by `kid`, and issuer, audience and expiry
//! are checked with no leeway.
//!
//! A token that verified is remembered by its SHA-256 until it expires (at most
//! [`VERIFIED_CACHE_ENTRIES`] tokens, least recently used out first), so a client reading
//! with one token pays the signature check once instead of on every request (an EdDSA
//! verification costs tens of microseconds; the hash about one). Expiry is checked on every
//! use, so a remembered token stops working the second it expires. What a token's holder
//! may do is not cached here: it is the current authority's job (`Authority`).

use crate::{AUDIENCE, Claims, SigningKey};
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// Why a token was refused. Callers answer every variant but `Unavailable` with 401.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Missing, malformed, expired, tampered, wrong algorithm or unknown key.
    #[error("invalid token: {0}")]
    Invalid(String),
    /// The key list could not be loaded.
    #[error("signing keys unavailable: {0}")]
    Unavailable(#[from] sqlx::Error),
}

/// Tokens remembered as verified, per process.
pub const VERIFIED_CACHE_ENTRIES: usize = 100_000;

/// Checks access tokens. Share one per process.
pub struct TokenVerifier {
    pool: PgPool,
    validation: Validation,
    keys: RwLock<HashMap<String, DecodingKey>>,
    last_reload: Mutex<Option<Instant>>,
    verified: quick_cache::sync::Cache<[u8; 32], Claims>,
}

/// Unknown `kid`s reload the key list at most this often, so forged tokens cannot
/// turn into a flood of database queries.
const RELOAD_INTERVAL: Duration = Duration::from_secs(1);

impl TokenVerifier {
    /// A verifier for tokens from `issuer`, trusting the keys in `signing_keys`.
    pub fn new(pool: PgPool, issuer: &str) -> Self {
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = 0;
        Self {
            pool,
            validation,
            keys: RwLock::new(HashMap::new()),
            last_reload: Mutex::new(None),
            verified: quick_cache::sync::Cache::new(VERIFIED_CACHE_ENTRIES),
        }
    }

    /// Trusts a key directly (the issuer's own key), without a database round trip.
    pub fn trust(&self, key: &SigningKey) {
        if let Ok(decoding) = DecodingKey::from_ed_pem(key.public_pem().as_bytes()) {
            self.keys
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .insert(key.kid().to_owned(), decoding);
        }
    }

    /// Verifies a bearer token and returns its claims.
    pub async fn verify(&self, token: &str) -> Result<Claims, AuthError> {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if let Some(claims) = self.verified.get(&digest) {
            if claims.exp > chrono::Utc::now().timestamp() {
                return Ok(claims);
            }
            self.verified.remove(&digest);
            return Err(AuthError::Invalid("ExpiredSignature".into()));
        }
        let claims = self.verify_signed(token).await?;
        self.verified.insert(digest, claims.clone());
        Ok(claims)
    }

    /// The full check: algorithm, key, signature, issuer, audience, expiry.
    async fn verify_signed(&self, token: &str) -> Result<Claims, AuthError> {
        let header = decode_header(token).map_err(|e| AuthError::Invalid(e.to_string()))?;
        if header.alg != Algorithm::EdDSA {
            return Err(AuthError::Invalid("algorithm not allowed".into()));
        }
        let kid = header.kid.ok_or_else(|| AuthError::Invalid("no key id".into()))?;
        let key = match self.cached(&kid) {
            Some(key) => key,
            None => {
                self.reload().await?;
                self.cached(&kid)
                    .ok_or_else(|| AuthError::Invalid("unknown key id".into()))?
            }
        };
        decode::<Claims>(token, &key, &self.validation)
            .map(|data| data.claims)
            .map_err(|e| AuthError::Invalid(e.to_string()))
    }

    fn cached(&self, kid: &str) -> Option<DecodingKey> {
        self.keys
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(kid)
            .cloned()
    }

    async fn reload(&self) -> Result<(), AuthError> {
        let mut last = self.last_reload.lock().await;
        if last.is_some_and(|at| at.elapsed() < RELOAD_INTERVAL) {
            return Ok(());
        }
        let rows = sqlx::query!("SELECT kid, public_key_pem FROM signing_keys WHERE algorithm = 'EdDSA'")
            .fetch_all(&self.pool)
            .await?;
        let mut keys = self.keys.write().unwrap_or_else(|e| e.into_inner());
        for row in rows {
            let (kid, pem) = (row.kid, row.public_key_pem);
            match DecodingKey::from_ed_pem(pem.as_bytes()) {
                Ok(key) => {
                    keys.insert(kid, key);
                }
                Err(error) => {
                    tracing::warn!(key.id = %kid, error = %error, "ignoring unreadable signing key")
                }
            }
        }
        *last = Some(Instant::now());
        Ok(())
    }
}
