//! Errors of the projector library. Projection errors are transient by nature (the
//! message is negatively acknowledged and retried later); messages that can never be
//! projected are not errors but poison, acknowledged where they are read.

use uuid::Uuid;

/// Why one event could not be projected now.
#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    /// Postgres failed or is unreachable.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// The store lacks events a delivered event comes after; retried in case it is a
    /// read-your-writes delay, reported loudly because it should never happen.
    #[error("event store has no contiguous events {after}<v<={upto} for stream {stream_id}")]
    MissingEvents {
        /// The stream.
        stream_id: Uuid,
        /// Last version the row reflects.
        after: i64,
        /// Version of the delivered event.
        upto: i64,
    },
    /// The delivered event is ahead of the row and is not in the event store: it did not
    /// come from this store, so it can never be applied (poison).
    #[error("event {0} is not in the event store")]
    NotInStore(Uuid),
    /// Other replicas kept inserting the same new row first.
    #[error("row of stream {0} kept changing under concurrent replicas")]
    Contended(Uuid),
}

/// Why a rebuild stopped.
#[derive(Debug, thiserror::Error)]
pub enum RebuildError {
    /// Postgres failed.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// Replaying the store failed.
    #[error(transparent)]
    Projection(#[from] ProjectionError),
    /// The new generation's counts did not add up (nothing was swapped).
    #[error("{0}")]
    Check(String),
    /// Redis failed; Postgres may already be rebuilt: run the rebuild again.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
}
