//! Strict limits per account and per client address over long windows: failed logins
//! (`LOGIN_FAILURE_LIMIT`, default 5 per 15 minutes) and password-reset requests
//! (`PASSWORD_RESET_LIMIT`, the same default). Each attempt takes one request from both
//! budgets before anything is checked (so parallel guesses cannot all slip in); an attempt
//! that turns out not to count (a successful login) gives both back, so good logins never
//! count against anyone. The account is named in Redis by a hash of its normalised email,
//! never the address itself; unknown emails count like known ones, so the answers tell
//! nothing about accounts.

use sha2::{Digest, Sha256};
use web::ApiError;
use web::rate_limit::{Limiter, Quota};

/// A limit per account and per address. Cheap to clone.
#[derive(Clone)]
pub struct AccountLimit {
    limiter: Limiter,
    bucket: &'static str,
    quota: Option<Quota>,
    refusal: &'static str,
}

/// An attempt counted against an account and an address, until it proves good.
pub struct Attempt {
    keys: Vec<String>,
}

impl AccountLimit {
    /// Failed logins: `quota` per account and per address; `None` counts nothing.
    pub fn failed_logins(limiter: Limiter, quota: Option<Quota>) -> Self {
        Self {
            limiter,
            bucket: "login-failures",
            quota,
            refusal: "too many failed logins for this account or from this address; retry later",
        }
    }

    /// Password-reset requests and confirmations: `quota` per account and per address.
    pub fn password_resets(limiter: Limiter, quota: Option<Quota>) -> Self {
        Self {
            limiter,
            bucket: "password-resets",
            quota,
            refusal: "too many password resets for this account or from this address; retry later",
        }
    }

    /// Counts an attempt for `email` from `address`; 429 `RATE_LIMITED` with
    /// `Retry-After` when either has no attempt left (nothing is then counted).
    pub async fn begin(&self, email: &str, address: &str) -> Result<Attempt, ApiError> {
        self.take([account_key(email), format!("ip:{address}")]).await
    }

    /// Counts an attempt from `address` alone (one that names no account).
    pub async fn begin_from(&self, address: &str) -> Result<Attempt, ApiError> {
        self.take([format!("ip:{address}")]).await
    }

    async fn take<const N: usize>(&self, keys: [String; N]) -> Result<Attempt, ApiError> {
        let Some(quota) = self.quota else {
            return Ok(Attempt { keys: Vec::new() });
        };
        let mut taken: Vec<String> = Vec::new();
        for key in keys {
            match self.limiter.acquire(self.bucket, &key, quota).await {
                Some(decision) if !decision.allowed => {
                    for key in &taken {
                        self.limiter.release(self.bucket, key, quota).await;
                    }
                    return Err(decision.refusal(quota, self.refusal));
                }
                Some(_) => taken.push(key),
                // Redis cannot decide: the attempt goes on, uncounted (logged by the limiter).
                None => {}
            }
        }
        Ok(Attempt { keys: taken })
    }

    /// The attempt turned out not to count (it logged in, or a dependency failed).
    pub async fn forgive(&self, attempt: Attempt) {
        let Some(quota) = self.quota else { return };
        for key in &attempt.keys {
            self.limiter.release(self.bucket, key, quota).await;
        }
    }
}

/// `account:<sha-256 of the trimmed, lower-cased email>` (first 16 bytes, hex).
fn account_key(email: &str) -> String {
    let digest = Sha256::digest(email.trim().to_lowercase().as_bytes());
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("account:{hex}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_account_is_one_key_however_its_email_is_written_and_never_the_email() {
        let key = account_key("Ada@Example.com ");
        assert_eq!(key, account_key("ada@example.com"));
        assert_ne!(key, account_key("bob@example.com"));
        assert!(!key.contains("example"), "{key}");
    }
}
