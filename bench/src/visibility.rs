//! Command → query visibility: the time from a rename's answer until the query API
//! returns the user at that rename's version (or later), while renames arrive at a
//! steady [`RATE`] per second; every [`SAMPLE_EVERY`]th rename is timed.

use crate::http_client;
use crate::load::Latencies;
use crate::services::Running;
use crate::users::{BenchUser, read_user};
use serde_json::{Value, json};
use std::time::Duration;
use tokio::time::{Instant, MissedTickBehavior};

/// Renames per second (DESIGN.md's visibility target is stated at 1,000 commands/s).
pub const RATE: u64 = 1_000;
/// One rename in this many is followed until it is visible; the others only load.
pub const SAMPLE_EVERY: usize = 10;
/// Fewest samples taken, whatever the duration.
pub const MIN_SAMPLES: usize = 200;
/// Pause between two polls of the query API: the resolution of a sample, traded against
/// the load the polling itself puts on the query API.
pub const POLL: Duration = Duration::from_millis(2);
/// A rename not visible after this counts as this long (and as timed out).
pub const GIVE_UP: Duration = Duration::from_secs(5);

/// Latencies of the samples, how many failed (rename refused or never visible), and
/// the rate of renames actually sent.
pub struct Visibility {
    /// From the PATCH answer to the first GET showing its version.
    pub latencies: Latencies,
    /// Samples never seen within [`GIVE_UP`].
    pub failed: usize,
    /// Renames refused among all sent (409s of renames racing on one user included).
    pub refused: usize,
    /// Renames sent per second.
    pub sent_per_second: f64,
}

/// Renames users round-robin at [`RATE`] for about `window` and times when every
/// [`SAMPLE_EVERY`]th becomes visible at its version.
pub async fn measure(
    command: &Running,
    query: &Running,
    users: &[BenchUser],
    window: Duration,
) -> anyhow::Result<Visibility> {
    let renames = (MIN_SAMPLES * SAMPLE_EVERY).max((window.as_millis() as u64 * RATE / 1000) as usize);
    let writer = http_client(64)?;
    let reader = http_client(16)?;
    let mut ticker = tokio::time::interval(Duration::from_micros(1_000_000 / RATE));
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let started = Instant::now();
    let mut samples = tokio::task::JoinSet::new();
    let mut background = tokio::task::JoinSet::new();
    for i in 0..renames {
        ticker.tick().await;
        let user = users[i % users.len()].clone();
        let rename = writer
            .patch(command.url(&format!("/api/v1/users/{}", user.id)))
            .bearer_auth(&user.token)
            .json(&json!({"name": format!("Visible {i}")}));
        if i % SAMPLE_EVERY != 0 {
            background.spawn(async move { rename.send().await.is_ok_and(|r| r.status() == 200) });
            continue;
        }
        let reader = reader.clone();
        let base = query.base.clone();
        samples.spawn(async move {
            let answered = rename.send().await.ok()?;
            if answered.status() != 200 {
                return None;
            }
            let written = Instant::now();
            let body: Value = answered.json().await.ok()?;
            let version = body["data"]["version"].as_i64()?;
            loop {
                let seen = read_user(&reader, &base, &user).await;
                if seen.is_some_and(|data| data["version"].as_i64().is_some_and(|v| v >= version)) {
                    return Some(written.elapsed());
                }
                if written.elapsed() > GIVE_UP {
                    return Some(GIVE_UP + Duration::from_nanos(1));
                }
                tokio::time::sleep(POLL).await;
            }
        });
    }
    let sent_per_second = renames as f64 / started.elapsed().as_secs_f64().max(1e-9);
    let mut latencies = Vec::with_capacity(renames / SAMPLE_EVERY + 1);
    let mut failed = 0;
    let mut refused = 0;
    while let Some(joined) = samples.join_next().await {
        match joined.ok().flatten() {
            Some(latency) if latency <= GIVE_UP => latencies.push(latency),
            Some(latency) => {
                failed += 1;
                latencies.push(latency);
            }
            None => refused += 1,
        }
    }
    while let Some(joined) = background.join_next().await {
        if !joined.unwrap_or(false) {
            refused += 1;
        }
    }
    Ok(Visibility {
        latencies: Latencies::new(latencies),
        failed,
        refused,
        sent_per_second,
    })
}
