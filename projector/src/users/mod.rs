//! The users projection: `users_view` in Postgres and one Redis document per user, built
//! from the `user` stream.

pub mod cache;
pub(crate) mod row;
pub mod sql;

use crate::ProjectionError;
use crate::consumer::{LiveProjection, redis_write};
use crate::heal::RedisDebt;
use crate::model::{self, ReadModel};
use eventstore::EventEnvelope;
use readmodels::users::UserCache;
use runtime::RedisHandle;
use sqlx::{PgConnection, PgPool};
use std::sync::Arc;
use uuid::Uuid;

pub use crate::model::{Outcome, Projected};
pub use row::{ROW_COLUMNS, STREAM_TYPE, UserRow, evolve};

/// Durable JetStream consumer of the users projection, shared by every replica.
pub const CONSUMER: &str = "projector-users";

/// Name of the projection in `GET /api/v1/projections`.
pub const NAME: &str = "users";

/// The `users_view` read model.
pub struct Users;

impl ReadModel for Users {
    type Row = UserRow;
    const STREAM_TYPE: &'static str = STREAM_TYPE;
    const TABLES: &'static [&'static str] = &["users_view"];

    fn id(row: &UserRow) -> Uuid {
        row.id
    }

    fn version(row: &UserRow) -> i64 {
        row.version
    }

    fn evolve(state: Option<UserRow>, envelope: &EventEnvelope) -> Option<UserRow> {
        evolve(state, envelope)
    }

    async fn lock_row(conn: &mut PgConnection, id: Uuid) -> Result<Option<UserRow>, sqlx::Error> {
        sql::lock_row(conn, id).await
    }

    async fn insert_row(conn: &mut PgConnection, row: &mut UserRow) -> Result<bool, sqlx::Error> {
        sql::insert_row(conn, row).await
    }

    async fn update_row(
        conn: &mut PgConnection,
        _before: &UserRow,
        after: &UserRow,
    ) -> Result<(), sqlx::Error> {
        sql::update_row(conn, after).await
    }

    async fn load_rows(conn: &mut PgConnection, ids: &[Uuid]) -> Result<Vec<UserRow>, sqlx::Error> {
        sql::load_rows(conn, ids).await
    }

    async fn upsert_rows(conn: &mut PgConnection, rows: &[&UserRow]) -> Result<(), sqlx::Error> {
        sql::upsert_rows(conn, rows).await
    }
}

/// Projects one event of a user stream in its own transaction.
pub async fn project_event(
    pool: &PgPool,
    envelope: &EventEnvelope,
) -> Result<Projected<UserRow>, ProjectionError> {
    model::project_event::<Users>(pool, envelope).await
}

/// The live users projection: after each commit the user's Redis document is written
/// (each write keeps the higher version, see `UserCache`).
pub struct UsersProjection {
    redis: RedisHandle,
    cache: UserCache,
    debt: Arc<RedisDebt>,
}

impl UsersProjection {
    /// Writes documents through `redis` under `cache`'s keys; a document not written is
    /// owed to `debt`.
    pub fn new(redis: RedisHandle, cache: UserCache, debt: Arc<RedisDebt>) -> Self {
        Self { redis, cache, debt }
    }
}

impl LiveProjection for UsersProjection {
    type Model = Users;
    const NAME: &'static str = NAME;
    const CONSUMER: &'static str = CONSUMER;

    async fn after_commit(&self, _envelope: &EventEnvelope, projected: &Projected<UserRow>) {
        let Some(row) = &projected.row else {
            return;
        };
        let Some(mut conn) = self.redis.get() else {
            tracing::warn!(user.id = %row.id, "redis not connected; user document not written");
            self.debt.user(row.id);
            return;
        };
        if !redis_write("user document", cache::write_row(&self.cache, &mut conn, row)).await {
            self.debt.user(row.id);
        }
    }
}
