//! What every projection reads from the event store (the source of truth), and the
//! advisory lock that keeps live projection and rebuild apart.

use crate::ProjectionError;
use eventstore::EventEnvelope;
use sqlx::PgConnection;
use uuid::Uuid;

/// Advisory lock key of the projector: live transactions hold it shared, a rebuild holds
/// it exclusively, so a rebuild never interleaves with live writes of any projection.
pub const PROJECTION_LOCK: i64 = 0x7573_6572_735f_7631;

const EVENT_COLUMNS: &str = "id, event_type, schema_version, stream_type, stream_id, stream_version, \
     position, occurred_at, correlation_id, causation_id, actor_id, data";

/// Waits until no rebuild holds the lock (a swap of generations takes it exclusively),
/// then keeps it out until the transaction ends; the Redis key space of the live
/// generation, whose tables this transaction then writes.
pub async fn share_projection_lock(conn: &mut PgConnection) -> Result<i64, sqlx::Error> {
    sqlx::query("SELECT pg_advisory_xact_lock_shared($1)")
        .bind(PROJECTION_LOCK)
        .execute(&mut *conn)
        .await?;
    // A statement of its own, after the lock: under READ COMMITTED its snapshot sees a
    // swap that committed while the lock was awaited.
    live_keyspace(conn).await
}

/// The Redis key space of the live read-model generation.
pub async fn live_keyspace<'c, E>(conn: E) -> Result<i64, sqlx::Error>
where
    E: sqlx::PgExecutor<'c>,
{
    let keyspace: Option<i64> =
        sqlx::query_scalar("SELECT keyspace FROM read_model_generations WHERE state = 'live'")
            .fetch_optional(conn)
            .await?;
    Ok(keyspace.unwrap_or(readmodels::cache::Keyspace::FIRST))
}

/// Every event of one stream after version `after` in the store, in order (none when
/// the stream has no later event).
pub async fn load_stream_after(
    conn: &mut PgConnection,
    stream_id: Uuid,
    after: i64,
) -> Result<Vec<EventEnvelope>, sqlx::Error> {
    let sql = format!(
        "SELECT {EVENT_COLUMNS} FROM events WHERE stream_id = $1 AND stream_version > $2 ORDER BY stream_version"
    );
    sqlx::query_as::<_, EventEnvelope>(&sql)
        .bind(stream_id)
        .bind(after)
        .fetch_all(conn)
        .await
}

/// The events of one stream with `after < version <= upto` from the store, in order.
/// Every one of them committed before the event at `upto` was appended, so a hole means
/// the store is inconsistent: an error, never a silent skip.
pub async fn load_stream_range(
    conn: &mut PgConnection,
    stream_id: Uuid,
    after: i64,
    upto: i64,
) -> Result<Vec<EventEnvelope>, ProjectionError> {
    let sql = format!(
        "SELECT {EVENT_COLUMNS} FROM events
         WHERE stream_id = $1 AND stream_version > $2 AND stream_version <= $3
         ORDER BY stream_version"
    );
    let events = sqlx::query_as::<_, EventEnvelope>(&sql)
        .bind(stream_id)
        .bind(after)
        .bind(upto)
        .fetch_all(conn)
        .await?;
    let contiguous = events
        .iter()
        .zip(after + 1..)
        .all(|(event, expected)| event.stream_version == expected);
    if !contiguous || events.len() as i64 != upto - after {
        return Err(ProjectionError::MissingEvents {
            stream_id,
            after,
            upto,
        });
    }
    Ok(events)
}

/// Whether the store holds an event with this id.
pub async fn event_exists(conn: &mut PgConnection, id: Uuid) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM events WHERE id = $1)")
        .bind(id)
        .fetch_one(conn)
        .await
}

/// Events of one stream type after `position`, in position order.
pub async fn load_events_after(
    conn: &mut PgConnection,
    stream_type: &str,
    position: i64,
    limit: i64,
) -> Result<Vec<EventEnvelope>, sqlx::Error> {
    let sql = format!(
        "SELECT {EVENT_COLUMNS} FROM events WHERE stream_type = $1 AND position > $2
         ORDER BY position LIMIT $3"
    );
    sqlx::query_as::<_, EventEnvelope>(&sql)
        .bind(stream_type)
        .bind(position)
        .bind(limit)
        .fetch_all(conn)
        .await
}

/// A label for the log of an event this code cannot read; the decoder's own message may
/// quote personal data.
pub fn unreadable_reason(error: &domain::EventDecodeError) -> &'static str {
    match error {
        domain::EventDecodeError::UnknownType(_) => "unknown event type",
        domain::EventDecodeError::UnsupportedVersion { .. } => "unsupported schema version",
        domain::EventDecodeError::Malformed { .. } => "malformed payload",
    }
}

/// Logs an event that cannot be read: its version is advanced without changes, and a later
/// `projector rebuild` with upgraded code picks it up.
pub fn log_unreadable(envelope: &EventEnvelope, error: &domain::EventDecodeError) {
    let _event = envelope.log_span().entered();
    tracing::warn!(
        event.schema_version = envelope.schema_version,
        stream.id = %envelope.stream_id,
        stream.version = envelope.stream_version,
        reason = unreadable_reason(error),
        "event not understood; version advanced without changes"
    );
}

/// Logs an event that comes before the stream's creation and therefore creates nothing.
pub fn log_before_creation(envelope: &EventEnvelope) {
    let _event = envelope.log_span().entered();
    tracing::warn!(
        stream.id = %envelope.stream_id,
        "event of a stream that was never created ignored"
    );
}
