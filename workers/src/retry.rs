//! When a failed side effect is tried again: after the workspace's one backoff
//! ([`runtime::backoff::Policy`]), until its last attempt.

use runtime::backoff::Policy;
use std::time::Duration;

/// How failed side effects are retried (`WORKER_BACKOFF_BASE_MS`,
/// `WORKER_BACKOFF_MAX_MS`, `WORKER_MAX_ATTEMPTS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The delay after the first failure (before jitter).
    pub base: Duration,
    /// The largest delay.
    pub max: Duration,
    /// Attempts before a message becomes a dead letter (the delivery count, from 1).
    pub max_attempts: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            base: Duration::from_millis(1000),
            max: Duration::from_millis(60_000),
            max_attempts: 5,
        }
    }
}

impl RetryPolicy {
    /// The backoff between attempts.
    pub fn backoff(&self) -> Policy {
        Policy::new(self.base, self.max)
    }

    /// The delay before the attempt after failed attempt `attempt` (from 1): the
    /// backoff's delay for that retry, jittered so replicas that failed together do not
    /// retry together, never above `max`.
    pub fn delay(&self, attempt: u32) -> Duration {
        self.backoff().delay(attempt)
    }

    /// Whether attempt `attempt` was the last one.
    pub fn is_last(&self, attempt: u32) -> bool {
        attempt >= self.max_attempts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            base: Duration::from_millis(1000),
            max: Duration::from_millis(60_000),
            max_attempts: 5,
        }
    }

    #[test]
    fn the_delay_doubles_per_attempt_from_the_configured_base() {
        let p = policy();
        for attempt in 1..=5 {
            let floor = p.base * 2u32.pow(attempt - 1);
            for _ in 0..20 {
                let delay = p.delay(attempt);
                assert!(
                    delay >= floor && delay <= (floor * 2).min(p.max),
                    "{attempt}: {delay:?}"
                );
            }
        }
    }

    #[test]
    fn the_delay_never_exceeds_the_configured_maximum() {
        let p = policy();
        for attempt in [7, 8, 30, u32::MAX] {
            assert!(p.delay(attempt) <= p.max);
        }
        let tight = RetryPolicy {
            base: Duration::from_millis(5),
            max: Duration::from_millis(40),
            max_attempts: 5,
        };
        assert!((1..=20).all(|attempt| tight.delay(attempt) <= Duration::from_millis(40)));
    }

    #[test]
    fn the_delay_is_jittered() {
        let p = policy();
        let delays: std::collections::HashSet<Duration> = (0..50).map(|_| p.delay(3)).collect();
        assert!(delays.len() > 1);
    }

    #[test]
    fn the_last_attempt_is_the_configured_maximum() {
        let p = policy();
        assert!(!p.is_last(4));
        assert!(p.is_last(5));
        assert!(p.is_last(6));
    }
}
