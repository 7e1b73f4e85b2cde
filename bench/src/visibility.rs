//! Command → query visibility: the time from a rename's answer until the query API
//! returns the new name, at a moderate, steady rate of renames.

use crate::http_client;
use crate::load::Latencies;
use crate::services::Running;
use crate::users::{BenchUser, read_user};
use serde_json::json;
use std::time::Duration;
use tokio::time::{Instant, MissedTickBehavior};

/// One rename per this interval.
pub const INTERVAL: Duration = Duration::from_millis(10);
/// Fewest samples taken, whatever the duration.
pub const MIN_SAMPLES: usize = 200;
/// Pause between two polls of the query API: the resolution of a sample, traded against
/// the load the polling itself puts on the query API.
pub const POLL: Duration = Duration::from_millis(2);
/// A rename not visible after this counts as this long (and as timed out).
pub const GIVE_UP: Duration = Duration::from_secs(5);

/// Latencies of the samples, and how many failed (rename refused or never visible).
pub struct Visibility {
    /// From the PATCH answer to the first GET showing the new name.
    pub latencies: Latencies,
    /// Renames refused or never seen within [`GIVE_UP`].
    pub failed: usize,
}

/// Renames users round-robin every [`INTERVAL`] for about `window` (at least
/// [`MIN_SAMPLES`] renames) and times when each becomes visible.
pub async fn measure(
    command: &Running,
    query: &Running,
    users: &[BenchUser],
    window: Duration,
) -> anyhow::Result<Visibility> {
    let samples = MIN_SAMPLES.max((window.as_millis() / INTERVAL.as_millis()) as usize);
    let writer = http_client(16)?;
    let reader = http_client(16)?;
    let mut ticker = tokio::time::interval(INTERVAL);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..samples {
        ticker.tick().await;
        let user = users[i % users.len()].clone();
        let name = format!("Visible {i}");
        let rename = writer
            .patch(command.url(&format!("/api/v1/users/{}", user.id)))
            .bearer_auth(&user.token)
            .json(&json!({"name": name}));
        let reader = reader.clone();
        let base = query.base.clone();
        tasks.spawn(async move {
            let answered = rename.send().await.ok()?;
            if answered.status() != 200 {
                return None;
            }
            let written = Instant::now();
            loop {
                let seen = read_user(&reader, &base, &user).await;
                if seen.is_some_and(|data| data["name"] == name.as_str()) {
                    return Some(written.elapsed());
                }
                if written.elapsed() > GIVE_UP {
                    return Some(GIVE_UP + Duration::from_nanos(1));
                }
                tokio::time::sleep(POLL).await;
            }
        });
    }
    let mut latencies = Vec::with_capacity(samples);
    let mut failed = 0;
    while let Some(joined) = tasks.join_next().await {
        match joined.ok().flatten() {
            Some(latency) if latency <= GIVE_UP => latencies.push(latency),
            Some(latency) => {
                failed += 1;
                latencies.push(latency);
            }
            None => failed += 1,
        }
    }
    Ok(Visibility {
        latencies: Latencies::new(latencies),
        failed,
    })
}
