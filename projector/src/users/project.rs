//! Projecting one delivered event exactly once, in stream order (DESIGN.md guarantee 3).
//!
//! Everything happens in one Postgres transaction: the user's row is locked, the event is
//! compared with the row's version (the checkpoint), and the row and its version change
//! together. The message is acknowledged only after the commit, so a crash at any point
//! either leaves no trace (redelivered, applied then) or a committed row (redelivered,
//! recognised as a duplicate). A delivery that is ahead of the row (the relay may publish
//! out of order) first applies the missing events from the event store.

use super::row::{UserRow, evolve};
use super::sql;
use crate::ProjectionError;
use eventstore::EventEnvelope;
use sqlx::{PgConnection, PgPool};

/// How often the transaction is retried when a concurrent replica inserted the row first.
const INSERT_RACE_ATTEMPTS: usize = 5;

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
pub struct Projected {
    /// What happened.
    pub outcome: Outcome,
    /// The user's row after the commit (`None` if the stream has no registration yet),
    /// for refreshing Redis.
    pub row: Option<UserRow>,
}

/// Projects one event of a user stream in its own transaction.
pub async fn project_event(pool: &PgPool, envelope: &EventEnvelope) -> Result<Projected, ProjectionError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let mut tx = pool.begin().await?;
        sql::share_projection_lock(&mut tx).await?;
        let current = sql::lock_row(&mut tx, envelope.stream_id).await?;
        let version = current.as_ref().map_or(0, |row| row.version);
        if envelope.stream_version <= version {
            tx.rollback().await?;
            return Ok(Projected {
                outcome: Outcome::Duplicate,
                row: current,
            });
        }
        let loaded;
        let events: &[EventEnvelope] = if envelope.stream_version == version + 1 {
            std::slice::from_ref(envelope)
        } else {
            loaded = load_gap(&mut tx, envelope, version).await?;
            &loaded
        };
        let next = events.iter().fold(current.clone(), evolve);
        match (&current, &next) {
            (None, Some(row)) => {
                if !sql::insert_row(&mut tx, row).await? {
                    tx.rollback().await?;
                    if attempt >= INSERT_RACE_ATTEMPTS {
                        return Err(ProjectionError::Contended(envelope.stream_id));
                    }
                    continue;
                }
            }
            (Some(_), Some(row)) => sql::update_row(&mut tx, row).await?,
            // Events before a registration create nothing (logged by `evolve`).
            (_, None) => {}
        }
        tx.commit().await?;
        return Ok(Projected {
            outcome: Outcome::Applied {
                gap_filled: events.len() - 1,
            },
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
    match sql::load_stream_range(conn, envelope.stream_id, version, envelope.stream_version).await {
        Err(ProjectionError::MissingEvents { .. }) if !sql::event_exists(conn, envelope.id).await? => {
            Err(ProjectionError::NotInStore(envelope.id))
        }
        other => other,
    }
}
