//! How far behind each projection is, as Prometheus metrics: events applied (counted as
//! they commit), and at scrape time the backlog of its consumer in events and in seconds.
//!
//! The lag in seconds is the age of the newest event this process applied, while events
//! still wait (0 once the backlog is empty): how old the read model's view of the world is.
//! A process that has applied nothing since it started uses the last time the consumer's
//! acknowledged floor moved instead (any replica's progress), so a projection stuck since
//! before a restart still shows its lag growing.

use crate::registry::PROJECTIONS;
use async_nats::jetstream;
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

/// The newest event applied per projection, by this process.
fn newest() -> &'static Mutex<HashMap<&'static str, DateTime<Utc>>> {
    static NEWEST: OnceLock<Mutex<HashMap<&'static str, DateTime<Utc>>>> = OnceLock::new();
    NEWEST.get_or_init(Mutex::default)
}

/// A projection held at a gap: a delivery is ahead of its stream's row and the events
/// between are not in the event store yet (the writer's transaction has not committed,
/// or the store lost them). It is retried with backoff; nothing after it in its stream
/// is applied meanwhile.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Gap {
    /// The stream held.
    pub stream_id: uuid::Uuid,
    /// The version its row is at.
    pub after: i64,
    /// The version of the delivery waiting.
    pub upto: i64,
    /// Since when (the first time this process met this gap).
    pub since: DateTime<Utc>,
}

/// The gap each projection is held at, as this process saw it last.
fn gaps() -> &'static Mutex<HashMap<&'static str, Gap>> {
    static GAPS: OnceLock<Mutex<HashMap<&'static str, Gap>>> = OnceLock::new();
    GAPS.get_or_init(Mutex::default)
}

/// Records that `projection` is held at a gap of `stream_id` (`after < v < upto`).
pub fn held_at_gap(projection: &'static str, stream_id: uuid::Uuid, after: i64, upto: i64) {
    let mut gaps = gaps().lock().unwrap_or_else(|e| e.into_inner());
    let since = gaps
        .get(projection)
        .filter(|gap| gap.stream_id == stream_id && gap.after == after)
        .map_or_else(Utc::now, |gap| gap.since);
    gaps.insert(
        projection,
        Gap {
            stream_id,
            after,
            upto,
            since,
        },
    );
    metrics::gauge!("projection_held_at_gap", "projection" => projection).set(1.0);
}

/// Records that `projection` projected a batch without meeting a gap.
pub fn gap_closed(projection: &'static str) {
    let mut gaps = gaps().lock().unwrap_or_else(|e| e.into_inner());
    if gaps.remove(projection).is_some() {
        metrics::gauge!("projection_held_at_gap", "projection" => projection).set(0.0);
    }
}

/// The gap `projection` is held at, if any.
pub fn gap(projection: &str) -> Option<Gap> {
    gaps()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(projection)
        .cloned()
}

/// Counts `applied` events of `projection`, the newest of which occurred at `occurred_at`.
pub fn applied(projection: &'static str, applied: u64, occurred_at: Option<DateTime<Utc>>) {
    if applied == 0 {
        return;
    }
    metrics::counter!("projection_events_applied_total", "projection" => projection).increment(applied);
    if let Some(at) = occurred_at {
        let mut newest = newest().lock().unwrap_or_else(|e| e.into_inner());
        let entry = newest.entry(projection).or_insert(at);
        *entry = (*entry).max(at);
    }
}

/// The lag gauges of one projection from its consumer's info.
fn record(projection: &'static str, info: &jetstream::consumer::Info) {
    runtime::consumers::record_consumer(info);
    let waiting = info.num_pending + info.num_ack_pending as u64;
    metrics::gauge!("projection_lag_events", "projection" => projection).set(waiting as f64);
    metrics::gauge!("projection_lag_seconds", "projection" => projection).set(lag_seconds(projection, info));
}

/// How old the projection's view of the world is, in seconds (see the module's note);
/// 0 when nothing waits.
pub fn lag_seconds(projection: &str, info: &jetstream::consumer::Info) -> f64 {
    let waiting = info.num_pending + info.num_ack_pending as u64;
    if waiting == 0 {
        0.0
    } else {
        let newest = newest()
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(projection)
            .copied();
        let since = newest.map(|at| at.timestamp_micros() as f64 / 1e6).or_else(|| {
            info.ack_floor
                .last_active
                .map(|at| at.unix_timestamp_nanos() as f64 / 1e9)
        });
        since.map_or(0.0, |since| {
            (Utc::now().timestamp_micros() as f64 / 1e6 - since).max(0.0)
        })
    }
}

/// Reads every projection's consumer at scrape time into the lag and consumer gauges.
pub fn collector(jetstream: jetstream::Context, stream_name: String) -> web::metrics::Collector {
    web::metrics::collector(move || {
        let (jetstream, stream_name) = (jetstream.clone(), stream_name.clone());
        async move {
            let stream = match jetstream.get_stream_no_info(&stream_name).await {
                Ok(stream) => stream,
                Err(error) => {
                    tracing::warn!(error = %error, "consumer state not read for /metrics");
                    return;
                }
            };
            for projection in PROJECTIONS {
                match stream.consumer_info(projection.consumer()).await {
                    Ok(info) => record(projection.name(), &info),
                    Err(error) => {
                        tracing::debug!(error = %error, consumer = projection.consumer(), "no consumer info")
                    }
                }
            }
        }
    })
}
