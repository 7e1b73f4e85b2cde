//! The SQL of the users projection: rows of `users_view`.

use super::row::{ROW_COLUMNS, UserRow};
use sqlx::postgres::PgArguments;
use sqlx::query::Query;
use sqlx::{PgConnection, Postgres};
use uuid::Uuid;

/// The rows of some users (ids sorted), locked in id order until the transaction ends.
pub async fn lock_rows(conn: &mut PgConnection, ids: &[Uuid]) -> Result<Vec<UserRow>, sqlx::Error> {
    let sql = format!("SELECT {ROW_COLUMNS} FROM users_view WHERE id = ANY($1) ORDER BY id FOR UPDATE");
    sqlx::query_as::<_, UserRow>(&sql).bind(ids).fetch_all(conn).await
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

/// Overwrites rows the transaction has locked, in one statement.
pub async fn update_rows(conn: &mut PgConnection, rows: &[&UserRow]) -> Result<(), sqlx::Error> {
    bind_rows(
        "UPDATE users_view v SET email = d.email, name = d.name, role = d.role, version = d.version,
                created_at = d.created_at, updated_at = d.updated_at, deleted_at = d.deleted_at
         FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::text[], $5::int8[],
                     $6::timestamptz[], $7::timestamptz[], $8::timestamptz[])
              AS d(id, email, name, role, version, created_at, updated_at, deleted_at)
         WHERE v.id = d.id",
        rows,
    )
    .execute(conn)
    .await
    .map(|_| ())
}

/// Writes many rows in one statement, keeping any row that is already newer.
pub async fn upsert_rows(conn: &mut PgConnection, rows: &[&UserRow]) -> Result<(), sqlx::Error> {
    bind_rows(
        "INSERT INTO users_view (id, email, name, role, version, created_at, updated_at, deleted_at)
         SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::text[], $5::int8[],
                              $6::timestamptz[], $7::timestamptz[], $8::timestamptz[])
         ON CONFLICT (id) DO UPDATE SET email = EXCLUDED.email, name = EXCLUDED.name,
                role = EXCLUDED.role, version = EXCLUDED.version, created_at = EXCLUDED.created_at,
                updated_at = EXCLUDED.updated_at, deleted_at = EXCLUDED.deleted_at
         WHERE users_view.version < EXCLUDED.version",
        rows,
    )
    .execute(conn)
    .await
    .map(|_| ())
}

/// A statement with the columns of many rows bound as arrays `$1..$8` in [`ROW_COLUMNS`]
/// order.
fn bind_rows<'q>(sql: &'q str, rows: &[&'q UserRow]) -> Query<'q, Postgres, PgArguments> {
    sqlx::query(sql)
        .bind(rows.iter().map(|r| r.id).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.email.as_deref()).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.name.as_deref()).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.role.as_str()).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.version).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.created_at).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.updated_at).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.deleted_at).collect::<Vec<_>>())
}
