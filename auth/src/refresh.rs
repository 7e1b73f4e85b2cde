//! Refresh-token secrets: 256 random bits handed to the client once, stored as SHA-256.
//! A slow hash is unnecessary for secrets of this entropy.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

/// A new refresh token and the hash to store.
pub struct RefreshSecret {
    /// What the client receives.
    pub token: String,
    /// What the database keeps.
    pub hash: Vec<u8>,
}

impl RefreshSecret {
    /// Generates a new random token.
    pub fn generate() -> Self {
        let bytes: [u8; 32] = rand::random();
        let token = URL_SAFE_NO_PAD.encode(bytes);
        let hash = hash_refresh_token(&token);
        Self { token, hash }
    }
}

/// The stored form of a refresh token.
pub fn hash_refresh_token(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_unique_and_hash_consistently() {
        let a = RefreshSecret::generate();
        let b = RefreshSecret::generate();
        assert_ne!(a.token, b.token);
        assert_eq!(a.hash, hash_refresh_token(&a.token));
        assert_eq!(a.token.len(), 43);
    }
}
