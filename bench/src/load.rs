//! Load generation: a closed loop of N workers that each repeat one operation, counted
//! only inside the measurement window (after a warm-up), and latency percentiles.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::Mutex;
use tokio::time::Instant;

/// Warm-up before every throughput window: connections open, caches fill.
pub const WARMUP: Duration = Duration::from_millis(500);

/// What a closed-loop run did inside its window.
#[derive(Debug, Clone, Default)]
pub struct Throughput {
    /// Operations that succeeded.
    pub ok: u64,
    /// Operations that failed.
    pub errors: u64,
    /// The first error seen, for the report.
    pub first_error: Option<String>,
    /// Length of the window.
    pub window: Duration,
}

impl Throughput {
    /// Successful operations per second.
    pub fn per_second(&self) -> f64 {
        self.ok as f64 / self.window.as_secs_f64().max(1e-9)
    }

    /// A note on failures, if any.
    pub fn error_note(&self, what: &str) -> Option<String> {
        (self.errors > 0).then(|| {
            format!(
                "{what}: {} of {} operations failed (first: {})",
                self.errors,
                self.ok + self.errors,
                self.first_error.as_deref().unwrap_or("?")
            )
        })
    }
}

/// Runs `concurrency` workers, each calling `op(worker, iteration)` back to back, for a
/// warm-up and then `window`; counts what completes inside the window.
pub async fn closed_loop<F, Fut>(concurrency: usize, window: Duration, op: F) -> Throughput
where
    F: Fn(usize, u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), String>> + Send + 'static,
{
    let op = Arc::new(op);
    let ok = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let first_error = Arc::new(Mutex::new(None::<String>));
    let start = Instant::now() + WARMUP;
    let end = start + window;
    let mut workers = tokio::task::JoinSet::new();
    for worker in 0..concurrency {
        let (op, ok, errors, first_error) = (op.clone(), ok.clone(), errors.clone(), first_error.clone());
        workers.spawn(async move {
            let mut iteration = 0u64;
            loop {
                let result = op(worker, iteration).await;
                iteration += 1;
                let now = Instant::now();
                if now >= end {
                    return;
                }
                if now < start {
                    continue;
                }
                match result {
                    Ok(()) => {
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(error) => {
                        errors.fetch_add(1, Ordering::Relaxed);
                        first_error.lock().await.get_or_insert(error);
                    }
                }
            }
        });
    }
    // An operation that hangs must not hold the run: stop waiting shortly after the window.
    let drained = tokio::time::timeout_at(end + Duration::from_secs(10), async {
        while workers.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        workers.abort_all();
    }
    let first_error = first_error.lock().await.take();
    Throughput {
        ok: ok.load(Ordering::Relaxed),
        errors: errors.load(Ordering::Relaxed),
        first_error,
        window,
    }
}

/// Latency samples and their percentiles.
#[derive(Debug, Clone, Default)]
pub struct Latencies {
    samples: Vec<Duration>,
}

impl Latencies {
    /// Collects samples.
    pub fn new(mut samples: Vec<Duration>) -> Self {
        samples.sort_unstable();
        Self { samples }
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// Whether there is no sample.
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// The `p`-th percentile (nearest rank), `p` in 0..=100.
    pub fn percentile(&self, p: f64) -> Option<Duration> {
        if self.samples.is_empty() {
            return None;
        }
        let rank = ((p / 100.0) * self.samples.len() as f64).ceil() as usize;
        Some(self.samples[rank.clamp(1, self.samples.len()) - 1])
    }

    /// The largest sample.
    pub fn max(&self) -> Option<Duration> {
        self.samples.last().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let latencies = Latencies::new((1..=100).rev().map(Duration::from_millis).collect());
        assert_eq!(latencies.percentile(50.0), Some(Duration::from_millis(50)));
        assert_eq!(latencies.percentile(99.0), Some(Duration::from_millis(99)));
        assert_eq!(latencies.percentile(100.0), Some(Duration::from_millis(100)));
        assert_eq!(latencies.percentile(0.0), Some(Duration::from_millis(1)));
        assert_eq!(Latencies::default().percentile(50.0), None);
    }

    #[tokio::test]
    async fn a_closed_loop_counts_successes_and_failures_inside_the_window() {
        let result = closed_loop(2, Duration::from_millis(200), |worker, _| async move {
            tokio::time::sleep(Duration::from_millis(5)).await;
            if worker == 0 {
                Ok(())
            } else {
                Err("refused".to_owned())
            }
        })
        .await;
        assert!(result.ok > 0 && result.errors > 0);
        assert_eq!(result.first_error.as_deref(), Some("refused"));
        assert!(result.error_note("x").is_some());
    }
}
