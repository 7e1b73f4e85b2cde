//! The projector's retry delays, all from the workspace's one backoff
//! ([`runtime::backoff::Policy`]): when a failed message comes back, how long a replica
//! pauses while failures repeat, and when a broken subscription is tried again.

use runtime::backoff::Policy;
use std::time::Duration;

/// Redelivery of a message that failed: from 100 ms, capped at 30 s.
pub const REDELIVERY: Policy = Policy::new(Duration::from_millis(100), Duration::from_secs(30));

/// The pause of a replica after a failed batch, growing while failures repeat, so it
/// slows down instead of spinning while Postgres is away.
pub const SLOWDOWN: Policy = Policy::new(Duration::from_millis(50), Duration::from_millis(6400));

/// Reconnecting a broken subscription.
pub const RECONNECT: Policy = Policy::new(Duration::from_millis(100), Duration::from_secs(5));

/// Delay before redelivering a message that failed `delivered` times.
pub fn nak_delay(delivered: i64) -> Duration {
    REDELIVERY.delay(u32::try_from(delivered.max(1)).unwrap_or(u32::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delays_grow_and_stay_bounded() {
        assert!(nak_delay(1) < Duration::from_millis(200));
        assert!(nak_delay(4) >= Duration::from_millis(800));
        assert!(nak_delay(1000) <= Duration::from_secs(30));
        assert!(nak_delay(-3) < Duration::from_millis(200));
    }
}
