//! The strict limit on failed logins (`LOGIN_FAILURE_LIMIT`, default 5 per 15 minutes),
//! per account and per client address: each attempt takes one request from both budgets
//! before the password is checked (so parallel guesses cannot all slip in), and a
//! successful login gives both back, so good logins never count against anyone. The
//! account is named in Redis by a hash of its normalised email, never the address itself;
//! unknown emails count like known ones, so the answers tell nothing about accounts.

use sha2::{Digest, Sha256};
use web::ApiError;
use web::rate_limit::{Limiter, Quota};

/// Redis bucket of the failed-login budgets.
const BUCKET: &str = "login-failures";

/// The failed-login limit. Cheap to clone.
#[derive(Clone)]
pub struct LoginLimit {
    limiter: Limiter,
    quota: Option<Quota>,
}

/// An attempt counted against an account and an address, until it proves good.
pub struct Attempt {
    keys: Vec<String>,
}

impl LoginLimit {
    /// `quota` failed logins per account and per address; `None` counts nothing.
    pub fn new(limiter: Limiter, quota: Option<Quota>) -> Self {
        Self { limiter, quota }
    }

    /// Counts an attempt to log in as `email` from `address`; 429 `RATE_LIMITED` with
    /// `Retry-After` when either has no failed attempt left (nothing is then counted).
    pub async fn begin(&self, email: &str, address: &str) -> Result<Attempt, ApiError> {
        let Some(quota) = self.quota else {
            return Ok(Attempt { keys: Vec::new() });
        };
        let mut taken: Vec<String> = Vec::new();
        for key in [account_key(email), format!("ip:{address}")] {
            match self.limiter.acquire(BUCKET, &key, quota).await {
                Some(decision) if !decision.allowed => {
                    for key in &taken {
                        self.limiter.release(BUCKET, key, quota).await;
                    }
                    return Err(decision.refusal(
                        quota,
                        "too many failed logins for this account or from this address; retry later",
                    ));
                }
                Some(_) => taken.push(key),
                // Redis cannot decide: the attempt goes on, uncounted (logged by the limiter).
                None => {}
            }
        }
        Ok(Attempt { keys: taken })
    }

    /// The attempt did not fail for its credentials (it logged in, or a dependency
    /// failed): it no longer counts.
    pub async fn forgive(&self, attempt: Attempt) {
        let Some(quota) = self.quota else { return };
        for key in &attempt.keys {
            self.limiter.release(BUCKET, key, quota).await;
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
