//! Rebuilding every registered projection (see [`crate::registry`]) from the event store
//! (`projector rebuild`): users, products, orders with their lines, `units_sold`, and the
//! Redis user documents and best-seller set.
//!
//! The rebuild holds the projector's advisory lock exclusively while it replaces the
//! tables; live projector transactions take the same lock shared, so they simply wait
//! (their messages are redelivered if the wait outlasts the ack wait, and then skipped as
//! duplicates). Stopping the live projectors first is still the cleaner operation: while
//! the rebuild runs, the tables are truncated and refilled batch by batch, so readers see
//! them partly filled.
//!
//! Per stream type, events are read in position order, several thousand per query,
//! applied in memory with the same fold as the live projection, and written with bulk
//! upserts of several thousand rows per transaction whenever
//! [`RebuildLimits::users_in_memory`] rows are held in memory, and at the end. `units_sold`
//! is then computed from all orders in one statement (each projection's
//! `ReadModel::after_replay`), and the best-seller set replaced.
//! An event whose transaction commits while the scan runs may be passed over by the scan
//! (positions are handed out before commit): a later event of its stream fills it in from
//! the store, and otherwise the live consumer delivers it once the lock is released.
//! Redis user documents are cleared first (so no document of a vanished row survives) and
//! refilled from Postgres at the end.

use crate::documents::Documents;
use crate::model::ReadModel;
use crate::registry::{self, PROJECTIONS};
use crate::top::TopSellers;
use crate::{RebuildError, orders, products, store};
use eventstore::EventEnvelope;
use redis::aio::ConnectionLike;
use sqlx::{Connection, PgConnection, PgPool};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// How much a rebuild reads and holds at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RebuildLimits {
    /// Events read per query, and rows written per transaction.
    pub batch_size: i64,
    /// Rows (users, products or orders) held in memory before they are written. Each row is
    /// written once per flush however many of its events were replayed, which is what
    /// makes a rebuild fast.
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
    /// Events replayed from the store (all stream types).
    pub events: u64,
    /// Rows in `users_view` afterwards (tombstones included), each written to Redis too.
    pub rows: u64,
    /// Rows in `products_view` afterwards.
    pub products: u64,
    /// Rows in `orders_view` afterwards.
    pub orders: u64,
    /// Members of the best-seller set afterwards (products with units sold).
    pub top_sellers: u64,
    /// Redis documents (users, products, orders) removed before the replay.
    pub cleared_documents: u64,
    /// Redis documents written after the replay, of each kind.
    pub documents: crate::documents::Counts,
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

/// Rebuilds every read model, their Redis documents and the best-seller set (under the
/// documents' key prefix) from the event store.
pub async fn rebuild<C>(
    pool: &PgPool,
    documents: &Documents,
    redis: &C,
    limits: RebuildLimits,
) -> Result<RebuildReport, RebuildError>
where
    C: ConnectionLike + Clone + Send + Sync,
{
    let running: Option<uuid::Uuid> = sqlx::query_scalar(
        "SELECT id FROM projection_rebuilds
         WHERE status = 'running' AND updated_at > now() - make_interval(secs => $1)",
    )
    .bind(crate::generations::ABANDONED_AFTER.as_secs_f64())
    .fetch_optional(pool)
    .await?;
    if let Some(running) = running {
        return Err(RebuildError::Check(format!(
            "rebuild {running} (without downtime) is running; wait for it to end"
        )));
    }
    // A connection of its own holds the lock for the whole replay; closing it (also by a
    // crash) releases the lock.
    let mut lock = pool.acquire().await?.detach();
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(store::PROJECTION_LOCK)
        .execute(&mut lock)
        .await?;
    // The documents of the live generation (see `crate::generations`), read under the
    // lock, so no swap moves it meanwhile.
    let documents = &documents.at(store::live_keyspace(&mut lock).await?);
    let replayed = replay(pool, documents, redis, limits).await;
    let unlocked = sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(store::PROJECTION_LOCK)
        .execute(&mut lock)
        .await;
    if let Err(error) = unlocked {
        tracing::warn!(error = %error, "could not release the rebuild lock; closing its connection");
    }
    if let Err(error) = lock.close().await {
        tracing::warn!(error = %error, "rebuild lock connection not closed cleanly");
    }
    let mut report = replayed?;

    // Documents keep the newer write, so live writes may resume meanwhile.
    let started = Instant::now();
    report.documents = documents.refill(pool, redis).await?;
    report.rows = report.documents.users;
    report.cache_duration += started.elapsed();
    tracing::info!(
        rebuild.events = report.events,
        rebuild.users = report.rows,
        rebuild.products = report.products,
        rebuild.orders = report.orders,
        rebuild.events_per_second = report.events_per_second() as u64,
        "projections rebuilt"
    );
    Ok(report)
}

/// Truncates, clears Redis and replays every event; under the exclusive lock, which also
/// keeps live best-seller writes out while the set is replaced.
async fn replay<C>(
    pool: &PgPool,
    documents: &Documents,
    redis: &C,
    limits: RebuildLimits,
) -> Result<RebuildReport, RebuildError>
where
    C: ConnectionLike + Clone + Send + Sync,
{
    let tables: Vec<&str> = PROJECTIONS
        .iter()
        .flat_map(|projection| projection.tables())
        .copied()
        .collect();
    sqlx::query(&format!("TRUNCATE {}", tables.join(", ")))
        .execute(pool)
        .await?;
    let cleared_documents = documents.clear(&mut redis.clone()).await?.total();
    let started = Instant::now();
    // A connection of its own, closed when the replay ends: its statements (a whole
    // store's derived values recomputed at once) may outlast the pool's statement
    // timeout, which is there for requests.
    let mut conn = pool.acquire().await?.detach();
    sqlx::query("SET statement_timeout = 0")
        .execute(&mut conn)
        .await?;
    let mut events = 0;
    let progress = AtomicU64::new(0);
    for projection in PROJECTIONS {
        let from = Resume::Empty;
        events += projection
            .replay(&mut conn, limits, from, &progress)
            .await?
            .events;
    }
    for projection in PROJECTIONS {
        projection.after_replay(&mut conn).await?;
    }
    let rows = registry::count_rows(&mut conn).await?;
    let rows_of = |name: &str| {
        let index = PROJECTIONS
            .iter()
            .position(|projection| projection.name() == name);
        index
            .and_then(|index| rows.get(index))
            .and_then(|rows| u64::try_from(*rows).ok())
            .unwrap_or_default()
    };
    let replay_duration = started.elapsed();

    let started = Instant::now();
    let top_sellers = TopSellers::new(documents.prefix())
        .refill(&mut conn, &mut redis.clone())
        .await?;
    Ok(RebuildReport {
        events,
        rows: 0,
        products: rows_of(products::NAME),
        orders: rows_of(orders::NAME),
        top_sellers,
        cleared_documents,
        documents: Default::default(),
        replay_duration,
        cache_duration: started.elapsed(),
    })
}

/// Where a replay starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resume {
    /// From the first event, into empty tables.
    Empty,
    /// After this event-store position, over tables that hold rows already (their rows
    /// are loaded as their streams come up; events they reflect are skipped).
    After(i64),
}

/// What a replay read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Replayed {
    /// Events read from the store.
    pub events: u64,
    /// Events that changed a row (the others were already reflected).
    pub applied: u64,
    /// Position of the last event read (the start when none was).
    pub position: i64,
    /// The streams whose rows changed, when resumed over rows (a replay from the
    /// first event changes every row and does not list them).
    pub touched: Vec<Uuid>,
}

/// Replays the events of `M`'s stream type from `from` into its tables, adding each
/// batch's events to `progress` as it goes.
pub(crate) async fn replay_model<M: ReadModel>(
    conn: &mut PgConnection,
    limits: RebuildLimits,
    from: Resume,
    progress: &AtomicU64,
) -> Result<Replayed, RebuildError> {
    let batch_size = limits.batch_size.max(1);
    let mut states = States::<M>::default();
    let mut replayed = Replayed::default();
    if let Resume::After(position) = from {
        states.flushed = true;
        states.touched = Some(HashSet::new());
        replayed.position = position;
    }
    loop {
        let batch = store::load_events_after(conn, M::STREAM_TYPE, replayed.position, batch_size).await?;
        let Some(last) = batch.last() else {
            break;
        };
        replayed.position = last.position;
        replayed.applied += states.apply(conn, &batch).await?;
        replayed.events += batch.len() as u64;
        progress.fetch_add(batch.len() as u64, Ordering::Relaxed);
        if states.rows.len() >= limits.users_in_memory {
            states.flush(conn, batch_size).await?;
        }
        if (batch.len() as i64) < batch_size {
            break;
        }
    }
    states.flush(conn, batch_size).await?;
    replayed.touched = states
        .touched
        .take()
        .map(|ids| ids.into_iter().collect())
        .unwrap_or_default();
    Ok(replayed)
}

/// Brings the rows of `ids` (streams of `M`) up to the newest events in the store, over
/// tables that hold rows already; how many events changed a row.
pub(crate) async fn catch_up_streams<M: ReadModel>(
    conn: &mut PgConnection,
    limits: RebuildLimits,
    ids: &[Uuid],
) -> Result<u64, RebuildError> {
    let mut applied = 0;
    for chunk in ids.chunks(usize::try_from(limits.batch_size.max(1)).unwrap_or(1)) {
        let mut states = States::<M> {
            rows: M::load_rows(conn, chunk)
                .await?
                .into_iter()
                .map(|row| (M::id(&row), Some(row)))
                .collect(),
            flushed: true,
            touched: None,
        };
        let mut events = Vec::new();
        for id in chunk {
            let version = states.rows.get(id).and_then(Option::as_ref).map_or(0, M::version);
            events.extend(store::load_stream_after(conn, *id, version).await?);
        }
        applied += states.apply(conn, &events).await?;
        states.flush(conn, limits.batch_size.max(1)).await?;
    }
    Ok(applied)
}

/// The rows being rebuilt, in memory.
struct States<M: ReadModel> {
    rows: HashMap<Uuid, Option<M::Row>>,
    /// Whether anything was flushed: until then the truncated table has no row to load.
    flushed: bool,
    /// The streams whose rows changed, when asked for.
    touched: Option<HashSet<Uuid>>,
}

impl<M: ReadModel> Default for States<M> {
    fn default() -> Self {
        Self {
            rows: HashMap::new(),
            flushed: false,
            touched: None,
        }
    }
}

impl<M: ReadModel> States<M> {
    /// Applies a batch of events in position order over the rows they touch; how many
    /// changed a row (those already reflected are skipped).
    async fn apply(
        &mut self,
        conn: &mut PgConnection,
        events: &[EventEnvelope],
    ) -> Result<u64, RebuildError> {
        if self.flushed {
            let mut unknown: Vec<Uuid> = events
                .iter()
                .map(|event| event.stream_id)
                .filter(|id| !self.rows.contains_key(id))
                .collect();
            unknown.sort_unstable();
            unknown.dedup();
            for row in M::load_rows(conn, &unknown).await? {
                self.rows.insert(M::id(&row), Some(row));
            }
        }
        let mut applied = 0;
        for event in events {
            let state = self.rows.entry(event.stream_id).or_default();
            let version = state.as_ref().map_or(0, M::version);
            if event.stream_version <= version {
                continue;
            }
            applied += 1;
            if let Some(touched) = self.touched.as_mut() {
                touched.insert(event.stream_id);
            }
            if event.stream_version > version + 1 {
                // Earlier events of this stream committed after the scan passed them.
                let missing =
                    store::load_stream_range(conn, event.stream_id, version, event.stream_version - 1)
                        .await?;
                *state = missing.iter().fold(state.take(), M::evolve);
            }
            *state = M::evolve(state.take(), event);
        }
        Ok(applied)
    }

    /// Writes every row held, `chunk` rows per transaction, and forgets them.
    async fn flush(&mut self, conn: &mut PgConnection, chunk: i64) -> Result<(), RebuildError> {
        let rows: Vec<&M::Row> = self.rows.values().filter_map(Option::as_ref).collect();
        for part in rows.chunks(usize::try_from(chunk).unwrap_or(1)) {
            let mut tx = conn.begin().await?;
            M::upsert_rows(&mut tx, part).await?;
            tx.commit().await?;
        }
        self.rows.clear();
        self.flushed = true;
        Ok(())
    }
}
