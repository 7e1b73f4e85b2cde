//! The argon2 bound: latency of `GET /health/live` on the command API, idle and while a
//! flood of wrong-password logins keeps every argon2 permit busy.

use crate::http_client;
use crate::load::{Latencies, Throughput, closed_loop};
use crate::services::Running;
use crate::users::BenchUser;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Wrong-password logins in flight during the flood.
pub const LOGINS_IN_FLIGHT: usize = 64;
/// Pause between two health probes.
pub const PROBE_INTERVAL: Duration = Duration::from_millis(5);
/// Longest idle baseline.
pub const BASELINE: Duration = Duration::from_secs(2);

/// Health latencies without and with the flood, and what the flood achieved.
pub struct Flood {
    /// `/health/live` with nothing else running.
    pub idle: Latencies,
    /// `/health/live` during the flood.
    pub flooded: Latencies,
    /// Logins answered (401 expected) during the flood.
    pub logins: Throughput,
}

/// Probes `/health/live` back to back (with a short pause) until `stop`.
async fn probe(api: &Running, stop: CancellationToken) -> anyhow::Result<Latencies> {
    let client = http_client(1)?;
    let url = api.url("/health/live");
    let mut samples = Vec::new();
    while !stop.is_cancelled() {
        let started = Instant::now();
        let response = client.get(&url).send().await?;
        let _ = response.bytes().await?;
        samples.push(started.elapsed());
        tokio::time::sleep(PROBE_INTERVAL).await;
    }
    Ok(Latencies::new(samples))
}

/// Measures the idle baseline, then the flood for `window`.
pub async fn measure(api: &Running, users: &[BenchUser], window: Duration) -> anyhow::Result<Flood> {
    let stop = CancellationToken::new();
    let timer = stop.clone();
    tokio::spawn(async move {
        tokio::time::sleep(BASELINE.min(window)).await;
        timer.cancel();
    });
    let idle = probe(api, stop).await?;

    let client = http_client(LOGINS_IN_FLIGHT)?;
    let emails: Arc<[String]> = users.iter().map(|u| u.email.clone()).collect();
    let url = api.url("/api/v1/auth/login");
    let flood = tokio::spawn(closed_loop(LOGINS_IN_FLIGHT, window, move |worker, _| {
        let request = client
            .post(&url)
            .json(&json!({"email": emails[worker % emails.len()], "password": "wrong-password-1"}));
        async move { crate::expect_status(request, 401).await }
    }));
    // Probe only while the flood is in its measurement window.
    tokio::time::sleep(crate::load::WARMUP).await;
    let stop = CancellationToken::new();
    let timer = stop.clone();
    tokio::spawn(async move {
        tokio::time::sleep(window).await;
        timer.cancel();
    });
    let flooded = probe(api, stop).await?;
    let logins = flood.await?;
    Ok(Flood {
        idle,
        flooded,
        logins,
    })
}
