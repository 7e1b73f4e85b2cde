//! Rebuilding the users projection from the event store (`projector rebuild`).
//!
//! The rebuild holds the projection's advisory lock exclusively while it replaces the
//! table; live projector transactions take the same lock shared, so they simply wait
//! (their messages are redelivered if the wait outlasts the ack wait, and then skipped as
//! duplicates). Stopping the live projectors first is still the cleaner operation: while
//! the rebuild runs, `users_view` is truncated and refilled batch by batch, so readers see
//! it partly filled.
//!
//! Events are read in position order, several thousand per query, applied in memory with
//! the same fold as the live projection, and written with bulk upserts of several thousand
//! rows per transaction whenever [`RebuildLimits::users_in_memory`] users are held in
//! memory, and at the end.
//! An event whose transaction commits while the scan runs may be passed over by the scan
//! (positions are handed out before commit): a later event of its stream fills it in from
//! the store, and otherwise the live consumer delivers it once the lock is released.
//! Redis is cleared first (so no document of a vanished row survives) and refilled from
//! Postgres at the end.

use crate::RebuildError;
use crate::users::{STREAM_TYPE, UserRow, cache, evolve, sql};
use eventstore::EventEnvelope;
use readmodels::users::UserCache;
use redis::aio::ConnectionLike;
use sqlx::{Connection, PgConnection, PgPool};
use std::collections::HashMap;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// How much a rebuild reads and holds at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RebuildLimits {
    /// Events read per query, and rows written per transaction.
    pub batch_size: i64,
    /// Users held in memory before their rows are written. Each row is written once per
    /// flush however many of its events were replayed, which is what makes a rebuild fast.
    pub users_in_memory: usize,
}

impl Default for RebuildLimits {
    fn default() -> Self {
        Self {
            batch_size: 5000,
            users_in_memory: 100_000,
        }
    }
}

/// What a rebuild did.
#[derive(Debug, Clone, PartialEq)]
pub struct RebuildReport {
    /// Events replayed from the store.
    pub events: u64,
    /// Rows in `users_view` afterwards (tombstones included), each written to Redis too.
    pub rows: u64,
    /// Redis documents removed before the replay.
    pub cleared_documents: u64,
    /// Time spent replaying into Postgres.
    pub replay_duration: Duration,
    /// Time spent refilling Redis.
    pub cache_duration: Duration,
}

impl RebuildReport {
    /// Replay throughput.
    pub fn events_per_second(&self) -> f64 {
        self.events as f64 / self.replay_duration.as_secs_f64().max(1e-9)
    }
}

/// Rebuilds `users_view` and the Redis user documents from the event store.
pub async fn rebuild<C>(
    pool: &PgPool,
    cache: &UserCache,
    redis: &C,
    limits: RebuildLimits,
) -> Result<RebuildReport, RebuildError>
where
    C: ConnectionLike + Clone + Send,
{
    // A connection of its own holds the lock for the whole replay; closing it (also by a
    // crash) releases the lock.
    let mut lock = pool.acquire().await?.detach();
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(sql::PROJECTION_LOCK)
        .execute(&mut lock)
        .await?;
    let replayed = replay(pool, cache, redis, limits).await;
    let unlocked = sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(sql::PROJECTION_LOCK)
        .execute(&mut lock)
        .await;
    if let Err(error) = unlocked {
        tracing::warn!(error = %error, "could not release the rebuild lock; closing its connection");
    }
    if let Err(error) = lock.close().await {
        tracing::warn!(error = %error, "rebuild lock connection not closed cleanly");
    }
    let (events, cleared_documents, replay_duration) = replayed?;

    let started = Instant::now();
    let rows = cache::refill(pool, cache, redis).await?;
    let report = RebuildReport {
        events,
        rows,
        cleared_documents,
        replay_duration,
        cache_duration: started.elapsed(),
    };
    tracing::info!(
        rebuild.events = report.events,
        rebuild.rows = report.rows,
        rebuild.events_per_second = report.events_per_second() as u64,
        "users projection rebuilt"
    );
    Ok(report)
}

/// Truncates, clears Redis and replays every user event; under the exclusive lock.
async fn replay<C>(
    pool: &PgPool,
    cache: &UserCache,
    redis: &C,
    limits: RebuildLimits,
) -> Result<(u64, u64, Duration), RebuildError>
where
    C: ConnectionLike + Clone + Send,
{
    sqlx::query("TRUNCATE users_view").execute(pool).await?;
    let cleared = cache::clear(cache, &mut redis.clone()).await?;
    let started = Instant::now();
    let mut conn = pool.acquire().await?;
    let batch_size = limits.batch_size.max(1);
    let mut states = States::default();
    let mut position = 0;
    let mut events = 0;
    loop {
        let batch = sql::load_events_after(&mut conn, STREAM_TYPE, position, batch_size).await?;
        let Some(last) = batch.last() else {
            break;
        };
        position = last.position;
        states.apply(&mut conn, &batch).await?;
        events += batch.len() as u64;
        if states.rows.len() >= limits.users_in_memory {
            states.flush(&mut conn, batch_size).await?;
        }
        if (batch.len() as i64) < batch_size {
            break;
        }
    }
    states.flush(&mut conn, batch_size).await?;
    Ok((events, cleared, started.elapsed()))
}

/// The rows being rebuilt, in memory.
#[derive(Default)]
struct States {
    rows: HashMap<Uuid, Option<UserRow>>,
    /// Whether anything was flushed: until then the truncated table has no row to load.
    flushed: bool,
}

impl States {
    /// Applies a batch of events in position order over the rows they touch.
    async fn apply(&mut self, conn: &mut PgConnection, events: &[EventEnvelope]) -> Result<(), RebuildError> {
        if self.flushed {
            let mut unknown: Vec<Uuid> = events
                .iter()
                .map(|event| event.stream_id)
                .filter(|id| !self.rows.contains_key(id))
                .collect();
            unknown.sort_unstable();
            unknown.dedup();
            for row in sql::load_rows(conn, &unknown).await? {
                self.rows.insert(row.id, Some(row));
            }
        }
        for event in events {
            let state = self.rows.entry(event.stream_id).or_default();
            let version = state.as_ref().map_or(0, |row| row.version);
            if event.stream_version <= version {
                continue;
            }
            if event.stream_version > version + 1 {
                // Earlier events of this stream committed after the scan passed them.
                let missing =
                    sql::load_stream_range(conn, event.stream_id, version, event.stream_version - 1).await?;
                *state = missing.iter().fold(state.take(), evolve);
            }
            *state = evolve(state.take(), event);
        }
        Ok(())
    }

    /// Writes every row held, `chunk` rows per transaction, and forgets them.
    async fn flush(&mut self, conn: &mut PgConnection, chunk: i64) -> Result<(), RebuildError> {
        let rows: Vec<&UserRow> = self.rows.values().filter_map(Option::as_ref).collect();
        for part in rows.chunks(usize::try_from(chunk).unwrap_or(1)) {
            let mut tx = conn.begin().await?;
            sql::upsert_rows(&mut tx, part).await?;
            tx.commit().await?;
        }
        self.rows.clear();
        self.flushed = true;
        Ok(())
    }
}
