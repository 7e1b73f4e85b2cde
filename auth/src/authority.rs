//! What a user may do now: the write side's `user_authority` row (present while the user
//! exists, with their current role). Access tokens only prove who the caller is; every
//! write, and every read that needs admin powers, asks this table, so a deleted or
//! demoted admin loses their powers at once instead of when their token expires.
//!
//! The command API changes a row in the same transaction as the user event that causes
//! the change ([`record_role`], [`remove`]); everyone reads it by primary key
//! ([`Authority::current_role`]).

use domain::user::Role;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

/// Reads users' current standing. Cheap to clone (a pool handle).
#[derive(Clone)]
pub struct Authority {
    pool: PgPool,
}

impl Authority {
    /// Reads from the database behind `pool`.
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// The user's current role, or `None` when the user does not exist (any more).
    /// One primary-key lookup.
    pub async fn current_role(&self, user_id: Uuid) -> Result<Option<Role>, sqlx::Error> {
        let role = sqlx::query_scalar!("SELECT role FROM user_authority WHERE user_id = $1", user_id)
            .fetch_optional(&self.pool)
            .await?;
        // The column's CHECK allows only the two wire names.
        Ok(role.and_then(|r| Role::parse(&r).ok()))
    }
}

/// Records a user's role (on registration and on every role change), in the caller's
/// transaction.
pub async fn record_role(conn: &mut PgConnection, user_id: Uuid, role: Role) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "INSERT INTO user_authority (user_id, role) VALUES ($1, $2)
         ON CONFLICT (user_id) DO UPDATE SET role = EXCLUDED.role, updated_at = now()",
        user_id,
        role.as_str()
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Forgets a deleted user, in the caller's transaction: from its commit on, their
/// tokens authorise nothing.
pub async fn remove(conn: &mut PgConnection, user_id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query!("DELETE FROM user_authority WHERE user_id = $1", user_id)
        .execute(conn)
        .await?;
    Ok(())
}
