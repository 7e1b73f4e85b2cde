//! Loading streams and appending to them inside one Postgres transaction.

use crate::{EventEnvelope, EventMetadata, StoreError};
use chrono::Utc;
use domain::DomainEvent;
use sqlx::{PgConnection, PgPool, Postgres, Transaction};
use std::sync::Arc;
use tokio::sync::Notify;
use uuid::Uuid;

/// One stream's events by the stream's own index alone, checked against the schema at
/// compile time like every static query here. The stream type is checked on the rows,
/// not in the query: `stream_type = $2` let the planner AND in the `(stream_type,
/// position)` index, whose scan grows with every event of the type.
macro_rules! load_stream {
    ($stream_id:expr) => {
        sqlx::query_as!(
            EventEnvelope,
            "SELECT id, event_type, schema_version, stream_type, stream_id, stream_version,
                    position, occurred_at, correlation_id, causation_id, actor_id, data
             FROM events WHERE stream_id = $1 ORDER BY stream_version",
            $stream_id
        )
    };
}

fn fold<E: DomainEvent, S>(
    rows: Vec<EventEnvelope>,
    initial: S,
    evolve: impl Fn(S, &E) -> S,
) -> Result<(S, i64), StoreError> {
    let mut state = initial;
    let mut version = 0;
    for envelope in rows.into_iter().filter(|e| e.stream_type == E::STREAM_TYPE) {
        let event = E::from_stored(&envelope.event_type, envelope.schema_version, &envelope.data)?;
        state = evolve(state, &event);
        version = envelope.stream_version;
    }
    Ok((state, version))
}

/// Handle to the event store. Cheap to clone.
#[derive(Clone)]
pub struct EventStore {
    pool: PgPool,
    appended: Arc<Notify>,
}

impl EventStore {
    /// A store over a migrated database.
    pub fn new(pool: PgPool) -> Self {
        Self {
            pool,
            appended: Arc::new(Notify::new()),
        }
    }

    /// The connection pool.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Signalled after every commit that appended events, so an in-process relay can
    /// publish at once instead of waiting for its next poll.
    pub fn appended_signal(&self) -> Arc<Notify> {
        self.appended.clone()
    }

    /// Every event of one stream, in version order.
    pub async fn load(&self, stream_id: Uuid) -> Result<Vec<EventEnvelope>, StoreError> {
        Ok(load_stream!(stream_id).fetch_all(&self.pool).await?)
    }

    /// Folds a stream into aggregate state; returns the state and the stream version.
    /// Only events of this aggregate's type count: an id of another kind reads as a new
    /// stream.
    pub async fn load_aggregate<E: DomainEvent, S>(
        &self,
        stream_id: Uuid,
        initial: S,
        evolve: impl Fn(S, &E) -> S,
    ) -> Result<(S, i64), StoreError> {
        let rows = load_stream!(stream_id).fetch_all(&self.pool).await?;
        fold(rows, initial, evolve)
    }

    /// Opens a unit of work.
    pub async fn begin(&self) -> Result<UnitOfWork, StoreError> {
        Ok(UnitOfWork {
            tx: self.pool.begin().await?,
            appended: self.appended.clone(),
            wrote_events: false,
        })
    }
}

/// Events committed after `position`, in position order, for rebuilding projections
/// from the source of truth. Only safe when no writer is active, or when the caller
/// tolerates re-application (projections check stream versions).
pub async fn read_events_after(
    pool: &PgPool,
    position: i64,
    limit: i64,
) -> Result<Vec<EventEnvelope>, StoreError> {
    Ok(sqlx::query_as!(
        EventEnvelope,
        "SELECT id, event_type, schema_version, stream_type, stream_id, stream_version,
                position, occurred_at, correlation_id, causation_id, actor_id, data
         FROM events WHERE position > $1 ORDER BY position LIMIT $2",
        position,
        limit
    )
    .fetch_all(pool)
    .await?)
}

/// One Postgres transaction of appends, for fixtures and tools (services commit through
/// `Engine`, whose group-commit writer also takes claims and idempotent answers).
/// Dropping it without [`UnitOfWork::commit`] rolls everything back.
pub struct UnitOfWork {
    tx: Transaction<'static, Postgres>,
    appended: Arc<Notify>,
    wrote_events: bool,
}

impl UnitOfWork {
    /// Appends events to a stream that must be at `expected_version` (0 for a new
    /// stream) and queues them in the outbox. A concurrent append to the same stream
    /// makes this fail with [`StoreError::VersionConflict`].
    pub async fn append<E: DomainEvent>(
        &mut self,
        stream_id: Uuid,
        expected_version: i64,
        events: &[E],
        metadata: &EventMetadata,
    ) -> Result<Vec<EventEnvelope>, StoreError> {
        let mut stored = Vec::with_capacity(events.len());
        let occurred_at = Utc::now();
        for (offset, event) in events.iter().enumerate() {
            let result = sqlx::query_as!(
                EventEnvelope,
                "INSERT INTO events (id, stream_type, stream_id, stream_version, event_type, schema_version,
                                     data, occurred_at, correlation_id, causation_id, actor_id)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
                 RETURNING id, event_type, schema_version, stream_type, stream_id, stream_version,
                           position, occurred_at, correlation_id, causation_id, actor_id, data",
                Uuid::now_v7(),
                E::STREAM_TYPE,
                stream_id,
                expected_version + offset as i64 + 1,
                event.event_type(),
                event.schema_version(),
                event.to_data(),
                occurred_at,
                metadata.correlation_id.as_deref(),
                metadata.causation_id.as_deref(),
                metadata.actor_id
            )
            .fetch_one(&mut *self.tx)
            .await;
            let envelope = match result {
                Ok(envelope) => envelope,
                Err(e) if StoreError::violated_constraint(&e) == Some("events_stream_version_key") => {
                    return Err(StoreError::VersionConflict {
                        stream_id,
                        expected: expected_version,
                    });
                }
                Err(e) => return Err(e.into()),
            };
            sqlx::query!("INSERT INTO outbox (position) VALUES ($1)", envelope.position)
                .execute(&mut *self.tx)
                .await?;
            stored.push(envelope);
        }
        self.wrote_events |= !stored.is_empty();
        Ok(stored)
    }

    /// Serialises writers of one stream until this transaction ends (a transaction-scoped
    /// advisory lock). Take locks in a consistent order (e.g. sorted ids) when a unit of
    /// work writes several streams, so that concurrent units cannot deadlock.
    pub async fn lock_stream(&mut self, stream_id: Uuid) -> Result<(), StoreError> {
        sqlx::query!(
            "SELECT pg_advisory_xact_lock(hashtextextended($1::text, 7301))",
            stream_id.to_string()
        )
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Folds a stream into aggregate state inside this transaction (after
    /// [`UnitOfWork::lock_stream`], the state cannot change before commit).
    pub async fn load_aggregate<E: DomainEvent, S>(
        &mut self,
        stream_id: Uuid,
        initial: S,
        evolve: impl Fn(S, &E) -> S,
    ) -> Result<(S, i64), StoreError> {
        let rows = load_stream!(stream_id).fetch_all(&mut *self.tx).await?;
        fold(rows, initial, evolve)
    }

    /// The transaction's connection, for write-side tables that must change with the
    /// events (credentials, tokens).
    pub fn connection(&mut self) -> &mut PgConnection {
        &mut self.tx
    }

    /// Commits, then wakes the in-process outbox relay.
    pub async fn commit(self) -> Result<(), StoreError> {
        self.tx.commit().await?;
        if self.wrote_events {
            self.appended.notify_one();
        }
        Ok(())
    }
}
