//! Retry delays: when a failed message comes back, and when a broken subscription is
//! tried again.

use rand::Rng;
use std::time::Duration;

/// Delay before redelivering a message that failed `delivered` times: exponential from
/// 100 ms, capped at 30 s, with ±20 % jitter so replicas do not retry in lockstep.
pub fn nak_delay(delivered: i64) -> Duration {
    let exponent = delivered.clamp(1, 20) as u32 - 1;
    let base = Duration::from_millis(100).saturating_mul(1 << exponent.min(9));
    let capped = base.min(Duration::from_secs(30));
    capped.mul_f64(rand::rng().random_range(0.8..1.2))
}

/// Exponential backoff for reconnecting.
pub struct Backoff {
    first: Duration,
    max: Duration,
    current: Duration,
}

impl Backoff {
    /// Starts at `first`, doubling up to `max`.
    pub fn new(first: Duration, max: Duration) -> Self {
        Self {
            first,
            max,
            current: first,
        }
    }

    /// The next delay.
    pub fn next(&mut self) -> Duration {
        let delay = self.current;
        self.current = (self.current * 2).min(self.max);
        delay
    }

    /// Back to the first delay, after a success.
    pub fn reset(&mut self) {
        self.current = self.first;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delays_grow_and_stay_bounded() {
        assert!(nak_delay(1) <= Duration::from_millis(120));
        assert!(nak_delay(4) >= Duration::from_millis(640));
        assert!(nak_delay(1000) <= Duration::from_secs(36));
    }
}
