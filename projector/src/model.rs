//! Projecting one delivered event exactly once, in stream order (DESIGN.md guarantee 3),
//! for any read model with one row per stream.
//!
//! Everything happens in one Postgres transaction: the stream's row is locked, the event is
//! compared with the row's version (the checkpoint), and the row, its version and whatever
//! else the read model derives from it change together. The message is acknowledged only
//! after the commit, so a crash at any point either leaves no trace (redelivered, applied
//! then) or a committed row (redelivered, recognised as a duplicate). A delivery that is
//! ahead of the row (the relay may publish out of order) first applies the missing events
//! from the event store.

use crate::{ProjectionError, store};
use eventstore::EventEnvelope;
use sqlx::{PgConnection, PgPool};
use std::future::Future;
use uuid::Uuid;

/// How often the transaction is retried when a concurrent replica inserted the row first.
const INSERT_RACE_ATTEMPTS: usize = 5;

/// A read model with one row per stream of one stream type, versioned by stream version.
/// The same pure fold serves the live projection and the rebuild, so both produce the
/// same tables.
pub trait ReadModel: Send + Sync + 'static {
    /// One row, as held in memory.
    type Row: Clone + Send + Sync + std::fmt::Debug;
    /// The stream type it reads, e.g. `user`.
    const STREAM_TYPE: &'static str;
    /// Its tables, truncated together by a rebuild.
    const TABLES: &'static [&'static str];

    /// The stream id of a row.
    fn id(row: &Self::Row) -> Uuid;
    /// The stream version a row reflects: the projection's checkpoint for its stream.
    fn version(row: &Self::Row) -> i64;
    /// Applies the next event of a stream (its version is the row's + 1; the caller
    /// checks). `None` while the stream has no creation event.
    fn evolve(state: Option<Self::Row>, envelope: &EventEnvelope) -> Option<Self::Row>;

    /// The row of a stream, locked until the transaction ends.
    fn lock_row(
        conn: &mut PgConnection,
        id: Uuid,
    ) -> impl Future<Output = Result<Option<Self::Row>, sqlx::Error>> + Send;
    /// Inserts a new row with everything derived from it; `false` (and nothing written)
    /// when a concurrent replica inserted it first. May complete the row with columns
    /// computed in SQL.
    fn insert_row(
        conn: &mut PgConnection,
        row: &mut Self::Row,
    ) -> impl Future<Output = Result<bool, sqlx::Error>> + Send;
    /// Overwrites a locked row, adjusting whatever is derived from the difference.
    fn update_row(
        conn: &mut PgConnection,
        before: &Self::Row,
        after: &Self::Row,
    ) -> impl Future<Output = Result<(), sqlx::Error>> + Send;

    /// The rows of several streams (not locked), for a rebuild that flushed already.
    fn load_rows(
        conn: &mut PgConnection,
        ids: &[Uuid],
    ) -> impl Future<Output = Result<Vec<Self::Row>, sqlx::Error>> + Send;
    /// Writes many rows at once for a rebuild, keeping any row that is already newer.
    /// Values derived across read models are recomputed at the end of the rebuild.
    fn upsert_rows(
        conn: &mut PgConnection,
        rows: &[&Self::Row],
    ) -> impl Future<Output = Result<(), sqlx::Error>> + Send;
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
    /// Whether this delivery created the row.
    pub created: bool,
}

/// Projects one event of a stream of `M` in its own transaction.
pub async fn project_event<M: ReadModel>(
    pool: &PgPool,
    envelope: &EventEnvelope,
) -> Result<Projected<M::Row>, ProjectionError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let mut tx = pool.begin().await?;
        store::share_projection_lock(&mut tx).await?;
        let current = M::lock_row(&mut tx, envelope.stream_id).await?;
        let version = current.as_ref().map_or(0, M::version);
        if envelope.stream_version <= version {
            tx.rollback().await?;
            return Ok(Projected {
                outcome: Outcome::Duplicate,
                row: current,
                created: false,
            });
        }
        let loaded;
        let events: &[EventEnvelope] = if envelope.stream_version == version + 1 {
            std::slice::from_ref(envelope)
        } else {
            loaded = load_gap(&mut tx, envelope, version).await?;
            &loaded
        };
        let mut next = events.iter().fold(current.clone(), M::evolve);
        match (&current, &mut next) {
            (None, Some(row)) => {
                if !M::insert_row(&mut tx, row).await? {
                    tx.rollback().await?;
                    if attempt >= INSERT_RACE_ATTEMPTS {
                        return Err(ProjectionError::Contended(envelope.stream_id));
                    }
                    continue;
                }
            }
            (Some(before), Some(row)) => M::update_row(&mut tx, before, row).await?,
            // Events before a creation create nothing (logged by `evolve`).
            (_, None) => {}
        }
        tx.commit().await?;
        return Ok(Projected {
            outcome: Outcome::Applied {
                gap_filled: events.len() - 1,
            },
            created: current.is_none() && next.is_some(),
            row: next,
        });
    }
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
