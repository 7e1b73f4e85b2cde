//! The SQL of the users projection: rows of `users_view`, events of one stream from the
//! store, and the advisory lock that keeps live projection and rebuild apart.

use super::row::{ROW_COLUMNS, UserRow};
use crate::ProjectionError;
use eventstore::EventEnvelope;
use sqlx::postgres::PgArguments;
use sqlx::query::Query;
use sqlx::{PgConnection, Postgres};
use uuid::Uuid;

/// Advisory lock key of the users projection: live transactions hold it shared, a rebuild
/// holds it exclusively, so a rebuild never interleaves with live writes.
pub const PROJECTION_LOCK: i64 = 0x7573_6572_735f_7631;

const EVENT_COLUMNS: &str = "id, event_type, schema_version, stream_type, stream_id, stream_version, \
     position, occurred_at, correlation_id, causation_id, actor_id, data";

/// Waits until no rebuild runs, then keeps rebuilds out until the transaction ends.
pub async fn share_projection_lock(conn: &mut PgConnection) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_advisory_xact_lock_shared($1)")
        .bind(PROJECTION_LOCK)
        .execute(conn)
        .await
        .map(|_| ())
}

/// The user's row, locked until the transaction ends.
pub async fn lock_row(conn: &mut PgConnection, id: Uuid) -> Result<Option<UserRow>, sqlx::Error> {
    let sql = format!("SELECT {ROW_COLUMNS} FROM users_view WHERE id = $1 FOR UPDATE");
    sqlx::query_as::<_, UserRow>(&sql)
        .bind(id)
        .fetch_optional(conn)
        .await
}

/// The rows of several users (not locked).
pub async fn load_rows(conn: &mut PgConnection, ids: &[Uuid]) -> Result<Vec<UserRow>, sqlx::Error> {
    let sql = format!("SELECT {ROW_COLUMNS} FROM users_view WHERE id = ANY($1)");
    sqlx::query_as::<_, UserRow>(&sql).bind(ids).fetch_all(conn).await
}

/// Inserts a new row; `false` when a concurrent replica inserted it first.
pub async fn insert_row(conn: &mut PgConnection, row: &UserRow) -> Result<bool, sqlx::Error> {
    let sql = format!(
        "INSERT INTO users_view ({ROW_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (id) DO NOTHING"
    );
    let done = bind_row(&sql, row).execute(conn).await?;
    Ok(done.rows_affected() == 1)
}

/// Overwrites a row the transaction has locked.
pub async fn update_row(conn: &mut PgConnection, row: &UserRow) -> Result<(), sqlx::Error> {
    let sql = "UPDATE users_view SET email = $2, name = $3, role = $4, version = $5, created_at = $6,
                      updated_at = $7, deleted_at = $8
               WHERE id = $1";
    bind_row(sql, row).execute(conn).await.map(|_| ())
}

/// A statement with the row's columns bound as `$1..$8` in [`ROW_COLUMNS`] order.
fn bind_row<'q>(sql: &'q str, row: &'q UserRow) -> Query<'q, Postgres, PgArguments> {
    sqlx::query(sql)
        .bind(row.id)
        .bind(&row.email)
        .bind(&row.name)
        .bind(&row.role)
        .bind(row.version)
        .bind(row.created_at)
        .bind(row.updated_at)
        .bind(row.deleted_at)
}

/// Writes many rows in one statement, keeping any row that is already newer.
pub async fn upsert_rows(conn: &mut PgConnection, rows: &[&UserRow]) -> Result<(), sqlx::Error> {
    let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
    let emails: Vec<Option<&str>> = rows.iter().map(|r| r.email.as_deref()).collect();
    let names: Vec<Option<&str>> = rows.iter().map(|r| r.name.as_deref()).collect();
    let roles: Vec<&str> = rows.iter().map(|r| r.role.as_str()).collect();
    let versions: Vec<i64> = rows.iter().map(|r| r.version).collect();
    let created: Vec<_> = rows.iter().map(|r| r.created_at).collect();
    let updated: Vec<_> = rows.iter().map(|r| r.updated_at).collect();
    let deleted: Vec<_> = rows.iter().map(|r| r.deleted_at).collect();
    sqlx::query(
        "INSERT INTO users_view (id, email, name, role, version, created_at, updated_at, deleted_at)
         SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::text[], $5::int8[],
                              $6::timestamptz[], $7::timestamptz[], $8::timestamptz[])
         ON CONFLICT (id) DO UPDATE SET email = EXCLUDED.email, name = EXCLUDED.name,
                role = EXCLUDED.role, version = EXCLUDED.version, created_at = EXCLUDED.created_at,
                updated_at = EXCLUDED.updated_at, deleted_at = EXCLUDED.deleted_at
         WHERE users_view.version < EXCLUDED.version",
    )
    .bind(ids)
    .bind(emails)
    .bind(names)
    .bind(roles)
    .bind(versions)
    .bind(created)
    .bind(updated)
    .bind(deleted)
    .execute(conn)
    .await
    .map(|_| ())
}

/// The events of one stream with `after < version <= upto` from the store (the source of
/// truth), in order. Every one of them committed before the event at `upto` was appended,
/// so a hole means the store is inconsistent: an error, never a silent skip.
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
