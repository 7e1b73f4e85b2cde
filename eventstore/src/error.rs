//! Errors of the event store, typed so callers can map conflicts to HTTP answers.

use uuid::Uuid;

/// What can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another writer appended to the stream since it was read.
    #[error("stream {stream_id} is not at version {expected}")]
    VersionConflict {
        /// The stream.
        stream_id: Uuid,
        /// The version the writer expected.
        expected: i64,
    },
    /// A unique value is already claimed by another owner.
    #[error("{kind} is already taken")]
    AlreadyClaimed {
        /// The kind of claim, e.g. `user.email`.
        kind: String,
    },
    /// A concurrent request stored an answer for the same idempotency key first.
    #[error("idempotency key already used")]
    IdempotencyKeyTaken,
    /// A stored event could not be decoded.
    #[error(transparent)]
    Decode(#[from] domain::EventDecodeError),
    /// Anything else from Postgres.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// The shared transaction of a group commit failed: nothing of this unit committed.
    #[error("database error: {0}")]
    Shared(#[source] std::sync::Arc<sqlx::Error>),
    /// The writer tasks are gone (the runtime is shutting down).
    #[error("the event store writer stopped")]
    WriterStopped,
}

impl StoreError {
    /// Trying the whole command again (reload, decide, append) can succeed: another
    /// writer won the stream version, or Postgres chose this transaction as a deadlock
    /// or serialization victim.
    pub fn is_retryable(&self) -> bool {
        let database = match self {
            StoreError::VersionConflict { .. } => return true,
            StoreError::Database(error) => error,
            StoreError::Shared(error) => error.as_ref(),
            _ => return false,
        };
        matches!(database, sqlx::Error::Database(db) if matches!(db.code().as_deref(), Some("40P01" | "40001")))
    }

    /// The name of the unique constraint a database error violated, if any.
    pub fn violated_constraint(error: &sqlx::Error) -> Option<&str> {
        match error {
            sqlx::Error::Database(db) if db.code().as_deref() == Some("23505") => db.constraint(),
            _ => None,
        }
    }
}
