//! Ed25519 signing keys. The private half stays in the command API's memory (or comes
//! from a file the operator provides); the public half is published in Postgres so
//! every verifier trusts it without any shared secret.

use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey};
use jsonwebtoken::EncodingKey;
use sha2::{Digest, Sha256};
use sqlx::PgPool;

/// A key that signs access tokens.
#[derive(Clone)]
pub struct SigningKey {
    kid: String,
    encoding: EncodingKey,
    public_pem: String,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

/// The key material could not be read.
#[derive(Debug, thiserror::Error)]
#[error("invalid Ed25519 key: {0}")]
pub struct KeyError(String);

impl SigningKey {
    /// A fresh random key.
    pub fn generate() -> Self {
        let seed: [u8; 32] = rand::random();
        Self::from_dalek(&ed25519_dalek::SigningKey::from_bytes(&seed)).expect("a fresh Ed25519 key encodes")
    }

    /// Reads a PKCS#8 PEM private key (`openssl genpkey -algorithm ed25519`).
    pub fn from_pkcs8_pem(pem: &str) -> Result<Self, KeyError> {
        let key = ed25519_dalek::SigningKey::from_pkcs8_pem(pem).map_err(|e| KeyError(e.to_string()))?;
        Self::from_dalek(&key)
    }

    fn from_dalek(key: &ed25519_dalek::SigningKey) -> Result<Self, KeyError> {
        let private_pem = key
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(|e| KeyError(e.to_string()))?;
        let public_pem = key
            .verifying_key()
            .to_public_key_pem(LineEnding::LF)
            .map_err(|e| KeyError(e.to_string()))?;
        let encoding =
            EncodingKey::from_ed_pem(private_pem.as_bytes()).map_err(|e| KeyError(e.to_string()))?;
        let digest = Sha256::digest(key.verifying_key().as_bytes());
        let kid = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
        Ok(Self {
            kid,
            encoding,
            public_pem,
        })
    }

    /// The key id written in every token's header.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public key, PEM (SPKI).
    pub fn public_pem(&self) -> &str {
        &self.public_pem
    }

    pub(crate) fn encoding_key(&self) -> &EncodingKey {
        &self.encoding
    }

    /// Publishes (or refreshes) the public half in `signing_keys`.
    pub async fn publish(&self, pool: &PgPool) -> Result<(), sqlx::Error> {
        sqlx::query!(
            "INSERT INTO signing_keys (kid, algorithm, public_key_pem) VALUES ($1, 'EdDSA', $2)
             ON CONFLICT (kid) DO UPDATE SET last_seen_at = now()",
            &self.kid,
            &self.public_pem
        )
        .execute(pool)
        .await?;
        Ok(())
    }
}
