//! argon2id hashing on the blocking pool, behind a semaphore so that a login flood
//! cannot take every blocking thread or starve the async runtime.

use argon2::password_hash::{PasswordHash, PasswordVerifier, SaltString, rand_core::OsRng};
use argon2::{Argon2, PasswordHasher as _};
use std::sync::Arc;
use tokio::sync::Semaphore;
use tracing::Span;

/// Hashing could not run (never "wrong password", which is `Ok(false)`).
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    /// The stored hash is not a valid PHC string, or hashing failed.
    #[error("password hashing failed: {0}")]
    Hash(String),
    /// The blocking task panicked or was cancelled.
    #[error("password hashing task failed")]
    Task,
}

/// Bounded argon2id hasher. Cheap to clone.
#[derive(Clone)]
pub struct PasswordHasher {
    permits: Arc<Semaphore>,
}

/// A valid hash of a password nobody has, so unknown emails cost the same as known ones.
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$2x5QgTtK4Bw6o8oE1xFQ8wV3bMo2xw7YxG5gNwq8pXo";

impl PasswordHasher {
    /// A hasher that runs at most `max_concurrent` hashes at once.
    pub fn new(max_concurrent: usize) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(max_concurrent.max(1))),
        }
    }

    /// Hashes a password with argon2id and a random salt; returns the PHC string.
    pub async fn hash(&self, password: &str) -> Result<String, PasswordError> {
        let password = password.to_owned();
        self.run(move || {
            let salt = SaltString::generate(&mut OsRng);
            Argon2::default()
                .hash_password(password.as_bytes(), &salt)
                .map(|h| h.to_string())
                .map_err(|e| PasswordError::Hash(e.to_string()))
        })
        .await
    }

    /// Checks a password against a stored hash; `None` checks against a dummy hash so
    /// that an unknown account takes as long as a wrong password.
    pub async fn verify(&self, password: &str, stored: Option<&str>) -> Result<bool, PasswordError> {
        let known = stored.is_some();
        let password = password.to_owned();
        let stored = stored.unwrap_or(DUMMY_HASH).to_owned();
        let matches = self
            .run(move || {
                let parsed = PasswordHash::new(&stored).map_err(|e| PasswordError::Hash(e.to_string()))?;
                Ok(Argon2::default()
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok())
            })
            .await?;
        Ok(known && matches)
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> Result<T, PasswordError> + Send + 'static,
    ) -> Result<T, PasswordError> {
        let waited = std::time::Instant::now();
        let _permit = self.permits.acquire().await.map_err(|_| PasswordError::Task)?;
        metrics::histogram!("argon2_queue_wait_seconds").record(waited.elapsed().as_secs_f64());
        let span = Span::current();
        tokio::task::spawn_blocking(move || span.in_scope(work))
            .await
            .map_err(|_| PasswordError::Task)?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hash_verifies_its_password_only() {
        let hasher = PasswordHasher::new(2);
        let hash = hasher.hash("s3cret-pass").await.expect("hashes");
        assert!(hash.starts_with("$argon2id$"));
        assert!(hasher.verify("s3cret-pass", Some(&hash)).await.expect("verifies"));
        assert!(!hasher.verify("wrong-pass1", Some(&hash)).await.expect("verifies"));
    }

    #[tokio::test]
    async fn an_unknown_account_never_verifies() {
        let hasher = PasswordHasher::new(1);
        assert!(
            !hasher
                .verify("anything1", None)
                .await
                .expect("runs the dummy check")
        );
    }
}
