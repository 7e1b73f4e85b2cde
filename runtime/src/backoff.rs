//! The one backoff of the workspace: every retry (the outbox relay, the consumers of the
//! projector and the workers, message redelivery, reconnects, command conflicts) waits
//! by backon's exponential policy with jitter, so replicas that failed together do not
//! retry in lockstep. Delays never exceed the policy's maximum.

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Exponential delays from `first`, doubling, with up to +100 % jitter, capped at `max`.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// The first delay.
    pub first: Duration,
    /// The largest delay.
    pub max: Duration,
}

impl Policy {
    /// A policy from `first` up to `max`.
    pub const fn new(first: Duration, max: Duration) -> Self {
        Self { first, max }
    }

    fn builder(&self) -> ExponentialBuilder {
        ExponentialBuilder::new()
            .with_min_delay(self.first)
            .with_max_delay(self.max)
            .with_jitter()
            .without_max_times()
    }

    /// The delay before retry number `attempt` (1 for the first retry).
    pub fn delay(&self, attempt: u32) -> Duration {
        let index = attempt.saturating_sub(1).min(64) as usize;
        self.builder()
            .build()
            .nth(index)
            .unwrap_or(self.max)
            .min(self.max)
    }

    /// A stateful sequence of delays, reset after a success.
    pub fn start(&self) -> Backoff {
        Backoff {
            policy: *self,
            delays: self.builder().build(),
        }
    }
}

/// The delays of one run of failures (see [`Policy::start`]).
#[derive(Debug)]
pub struct Backoff {
    policy: Policy,
    delays: ExponentialBackoff,
}

impl Backoff {
    /// The next delay.
    pub fn next_delay(&mut self) -> Duration {
        self.delays.next().unwrap_or(self.policy.max).min(self.policy.max)
    }

    /// Back to the first delay, after a success.
    pub fn reset(&mut self) {
        self.delays = self.policy.builder().build();
    }

    /// Sleeps the next delay; `true` when `shutdown` was cancelled meanwhile.
    pub async fn wait(&mut self, shutdown: &CancellationToken) -> bool {
        sleep_or_cancelled(self.next_delay(), shutdown).await
    }
}

/// Sleeps `duration`; `true` when `shutdown` was cancelled first.
pub async fn sleep_or_cancelled(duration: Duration, shutdown: &CancellationToken) -> bool {
    tokio::select! {
        _ = shutdown.cancelled() => true,
        _ = tokio::time::sleep(duration) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_with_jitter_and_stay_under_the_maximum() {
        let policy = Policy::new(Duration::from_millis(100), Duration::from_secs(30));
        let first = policy.delay(1);
        assert!(first >= Duration::from_millis(100) && first < Duration::from_millis(200));
        assert!(policy.delay(4) >= Duration::from_millis(800));
        assert!(policy.delay(1000) <= Duration::from_secs(30));
    }

    #[test]
    fn the_jitter_differs_between_runs_so_replicas_do_not_retry_in_lockstep() {
        let policy = Policy::new(Duration::from_millis(100), Duration::from_secs(30));
        let delays: std::collections::HashSet<Duration> = (0..20).map(|_| policy.delay(3)).collect();
        assert!(delays.len() > 1, "{delays:?}");
    }

    #[test]
    fn a_run_restarts_from_the_first_delay_after_a_reset() {
        let mut run = Policy::new(Duration::from_millis(10), Duration::from_millis(50)).start();
        let delays: Vec<_> = (0..6).map(|_| run.next_delay()).collect();
        assert!(delays.iter().all(|d| *d <= Duration::from_millis(50)));
        assert!(delays[5] >= Duration::from_millis(40));
        run.reset();
        assert!(run.next_delay() < Duration::from_millis(20));
    }
}
