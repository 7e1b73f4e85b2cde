//! Retry timing: exponential backoff with jitter, and when to give up.

use rand::Rng;
use std::time::Duration;

/// How failed side effects are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Delay ceiling after the first failure.
    pub base: Duration,
    /// Largest delay ceiling.
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
    /// The ceiling after failed attempt `attempt` (from 1): `min(max, base * 2^(attempt-1))`.
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let factor = 1u32.checked_shl(attempt.saturating_sub(1)).unwrap_or(u32::MAX);
        self.base
            .checked_mul(factor)
            .map_or(self.max, |d| d.min(self.max))
    }

    /// The delay before the next attempt: uniformly random in `[ceiling/2, ceiling]`, so
    /// replicas that failed together do not retry together.
    pub fn delay(&self, attempt: u32) -> Duration {
        let ceiling = self.ceiling(attempt).as_millis().min(u64::MAX as u128) as u64;
        let millis = rand::rng().random_range(ceiling / 2..=ceiling);
        Duration::from_millis(millis)
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
    fn the_ceiling_doubles_per_attempt_up_to_the_maximum() {
        let p = policy();
        let ceilings: Vec<u64> = (1..=8).map(|n| p.ceiling(n).as_millis() as u64).collect();
        assert_eq!(ceilings, [1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000]);
        assert_eq!(p.ceiling(10_000), Duration::from_millis(60_000));
        assert_eq!(p.ceiling(0), Duration::from_millis(1000));
    }

    #[test]
    fn the_delay_lies_between_half_the_ceiling_and_the_ceiling() {
        let p = policy();
        for attempt in 1..=10 {
            let ceiling = p.ceiling(attempt);
            for _ in 0..50 {
                let delay = p.delay(attempt);
                assert!(
                    delay >= ceiling / 2 && delay <= ceiling,
                    "{delay:?} vs {ceiling:?}"
                );
            }
        }
    }

    #[test]
    fn the_delay_is_jittered() {
        let p = policy();
        let delays: std::collections::HashSet<Duration> = (0..50).map(|_| p.delay(6)).collect();
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
