//! The users projection: `users_view` in Postgres and one Redis document per user, built
//! from the `user` stream.

pub mod cache;
pub(crate) mod row;
pub mod sql;

use crate::ProjectionError;
use crate::consumer::{Delivered, LiveProjection, redis_write};
use crate::heal::RedisDebt;
use crate::model::{self, ReadModel};
use crate::registry::Services;
use eventstore::EventEnvelope;
use readmodels::users::UserCache;
use runtime::RedisHandle;
use sqlx::{PgConnection, PgPool};
use std::collections::HashMap;
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

    async fn lock_rows(conn: &mut PgConnection, ids: &[Uuid]) -> Result<Vec<UserRow>, sqlx::Error> {
        sql::lock_rows(conn, ids).await
    }

    async fn insert_row(conn: &mut PgConnection, row: &mut UserRow) -> Result<bool, sqlx::Error> {
        sql::insert_row(conn, row).await
    }

    async fn update_rows(
        conn: &mut PgConnection,
        changes: &[(&UserRow, &UserRow)],
    ) -> Result<(), sqlx::Error> {
        let rows: Vec<&UserRow> = changes.iter().map(|(_, after)| *after).collect();
        sql::update_rows(conn, &rows).await
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

    fn build(services: &Services) -> Self {
        Self::new(
            services.redis.clone(),
            services.users.clone(),
            services.debt.clone(),
        )
    }

    /// Writes the document of each user of the batch once, at its row after the commit;
    /// the writes go out together over the multiplexed connection.
    async fn after_commit(&self, batch: &[Delivered<'_, UserRow>]) {
        let rows: HashMap<Uuid, &UserRow> = batch
            .iter()
            .filter_map(|delivered| delivered.projected.row.as_ref())
            .map(|row| (row.id, row))
            .collect();
        if rows.is_empty() {
            return;
        }
        let Some(conn) = self.redis.get() else {
            tracing::warn!(
                users = rows.len(),
                "redis not connected; user documents not written"
            );
            rows.keys().for_each(|id| self.debt.user(*id));
            return;
        };
        let writes = rows.values().map(|row| {
            let mut conn = conn.clone();
            async move {
                let written =
                    redis_write("user document", cache::write_row(&self.cache, &mut conn, row)).await;
                (row.id, written)
            }
        });
        for (id, written) in futures::future::join_all(writes).await {
            if !written {
                self.debt.user(id);
            }
        }
    }
}
