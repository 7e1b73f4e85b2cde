//! Projecting delivered events exactly once, in stream order (DESIGN.md guarantee 3), for
//! any read model with one row per stream, a batch of deliveries per transaction.
//!
//! Everything a batch does happens in one Postgres transaction: the rows of its streams are
//! locked (in id order, so concurrent replicas cannot deadlock), each delivery is compared
//! with its stream's version (the checkpoint) and folded in memory in delivery order, and
//! the rows, their versions and whatever else the read model derives from them are written
//! together. The messages are acknowledged only after the commit, so a crash at any point
//! either leaves no trace (redelivered, applied then) or committed rows (redelivered,
//! recognised as duplicates, also when a redelivery lands in the same batch as the first
//! delivery). A delivery that is ahead of its row (the relay may publish out of order)
//! first applies the missing events from the event store.
//!
//! A delivery that cannot be applied now for a reason of its own (its gap is not in the
//! store yet, it is not in the store at all, its row is contended) fails alone: the rest
//! of the batch commits. A database error fails the whole batch, which then changed
//! nothing.

use crate::{ProjectionError, store};
use eventstore::EventEnvelope;
use sqlx::{PgConnection, PgPool};
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use uuid::Uuid;

mod batch;

pub use batch::project_batch;

/// How often a stream's step is retried when a concurrent replica inserted its row first.
const INSERT_RACE_ATTEMPTS: usize = 5;

/// A read model with one row per stream of one stream type, versioned by stream version.
/// The same pure fold serves the live projection and the rebuild, so both produce the
/// same tables.
pub trait ReadModel: Send + Sync + 'static {
    /// One row, as held in memory.
    type Row: Clone + Send + Sync + std::fmt::Debug;
    /// The stream type it reads, e.g. `user`.
    const STREAM_TYPE: &'static str;
    /// Its tables, truncated together by a rebuild; the first is counted as its rows in
    /// `GET /api/v1/projections`.
    const TABLES: &'static [&'static str];

    /// The stream id of a row.
    fn id(row: &Self::Row) -> Uuid;
    /// The stream version a row reflects: the projection's checkpoint for its stream.
    fn version(row: &Self::Row) -> i64;
    /// Applies the next event of a stream (its version is the row's + 1; the caller
    /// checks). `None` while the stream has no creation event.
    fn evolve(state: Option<Self::Row>, envelope: &EventEnvelope) -> Option<Self::Row>;

    /// The rows of some streams (ids sorted), locked until the transaction ends.
    fn lock_rows(
        conn: &mut PgConnection,
        ids: &[Uuid],
    ) -> impl Future<Output = Result<Vec<Self::Row>, sqlx::Error>> + Send;
    /// Takes whatever other locks writing these rows needs, once per batch before any
    /// write (each row as it will be written). Nothing by default.
    fn before_writes(
        conn: &mut PgConnection,
        rows: &[&Self::Row],
    ) -> impl Future<Output = Result<(), sqlx::Error>> + Send {
        let _ = (conn, rows);
        async { Ok(()) }
    }
    /// Inserts a new row with everything derived from it; `false` (and nothing written)
    /// when a concurrent replica inserted it first. May complete the row with columns
    /// computed in SQL.
    fn insert_row(
        conn: &mut PgConnection,
        row: &mut Self::Row,
    ) -> impl Future<Output = Result<bool, sqlx::Error>> + Send;
    /// Overwrites locked rows (`(before, after)` pairs), adjusting whatever is derived from
    /// the difference.
    fn update_rows(
        conn: &mut PgConnection,
        changes: &[(&Self::Row, &Self::Row)],
    ) -> impl Future<Output = Result<(), sqlx::Error>> + Send;

    /// The rows of several streams (not locked), for a rebuild that flushed already.
    fn load_rows(
        conn: &mut PgConnection,
        ids: &[Uuid],
    ) -> impl Future<Output = Result<Vec<Self::Row>, sqlx::Error>> + Send;
    /// Writes many rows at once for a rebuild, keeping any row that is already newer.
    /// Values derived across read models are recomputed by [`ReadModel::after_replay`].
    fn upsert_rows(
        conn: &mut PgConnection,
        rows: &[&Self::Row],
    ) -> impl Future<Output = Result<(), sqlx::Error>> + Send;
    /// Recomputes what this model derives in other models' rows, once every model of a
    /// rebuild is replayed. Nothing by default.
    fn after_replay(conn: &mut PgConnection) -> impl Future<Output = Result<(), sqlx::Error>> + Send {
        let _ = conn;
        async { Ok(()) }
    }
}

/// What projecting one delivery did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The event (and `gap_filled` missing events before it) was applied.
    Applied {
        /// Events loaded from the store because their deliveries had not been seen yet.
        gap_filled: usize,
    },
    /// The row already reflects this event: a redelivery or a replay.
    Duplicate,
}

/// The result of projecting one delivery.
#[derive(Debug, Clone)]
pub struct Projected<R> {
    /// What happened.
    pub outcome: Outcome,
    /// The stream's row after the commit (`None` if the stream has no creation event yet),
    /// for refreshing Redis.
    pub row: Option<R>,
    /// Whether the transaction of this delivery created the row.
    pub created: bool,
    /// The Redis key space of the generation whose tables the transaction wrote: where
    /// the row's document goes.
    pub keyspace: i64,
}

/// What became of one delivery: projected, or why not now.
pub type Delivery<R> = Result<Projected<R>, ProjectionError>;

/// Projects one event of a stream of `M` in its own transaction.
pub async fn project_event<M: ReadModel>(
    pool: &PgPool,
    envelope: &EventEnvelope,
) -> Result<Projected<M::Row>, ProjectionError> {
    project_batch::<M>(pool, std::slice::from_ref(envelope))
        .await?
        .pop()
        .unwrap_or(Err(ProjectionError::Contended(envelope.stream_id)))
}

/// The deliveries of a batch per stream, streams in id order (the lock order), each
/// stream's deliveries in delivery order.
fn by_stream(events: &[EventEnvelope]) -> BTreeMap<Uuid, Vec<usize>> {
    let mut streams: BTreeMap<Uuid, Vec<usize>> = BTreeMap::new();
    for (index, event) in events.iter().enumerate() {
        streams.entry(event.stream_id).or_default().push(index);
    }
    streams
}

/// The locked rows by stream id.
fn keyed<M: ReadModel>(rows: Vec<M::Row>) -> HashMap<Uuid, M::Row> {
    rows.into_iter().map(|row| (M::id(&row), row)).collect()
}

/// The events after `version` up to the delivered one, from the store. A delivered event
/// the store does not hold at all did not come from it and can never be applied.
async fn load_gap(
    conn: &mut PgConnection,
    envelope: &EventEnvelope,
    version: i64,
) -> Result<Vec<EventEnvelope>, ProjectionError> {
    match store::load_stream_range(conn, envelope.stream_id, version, envelope.stream_version).await {
        Err(ProjectionError::MissingEvents { .. }) if !store::event_exists(conn, envelope.id).await? => {
            Err(ProjectionError::NotInStore(envelope.id))
        }
        other => other,
    }
}
