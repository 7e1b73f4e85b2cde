//! The users projection: `users_view` in Postgres and one Redis document per user, built
//! from the `user` stream.

pub(crate) mod row;
pub mod sql;

use crate::ProjectionError;
use crate::consumer::{Delivered, LiveProjection, keyspace_of};
use crate::model::{self, ReadModel};
use crate::registry::Services;
use eventstore::EventEnvelope;
use sqlx::{PgConnection, PgPool};
use std::collections::HashMap;
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

/// The live users projection: after each commit the users' Redis documents are written
/// from their rows (a tombstone once deleted; each write keeps the newer document).
pub struct UsersProjection {
    services: Services,
}

impl LiveProjection for UsersProjection {
    type Model = Users;
    const NAME: &'static str = NAME;
    const CONSUMER: &'static str = CONSUMER;

    fn build(services: &Services) -> Self {
        Self {
            services: services.clone(),
        }
    }

    /// Writes the document of each user of the batch once, at its row after the commit;
    /// the writes go out together over the multiplexed connection.
    async fn after_commit(&self, batch: &[Delivered<'_, UserRow>]) {
        let rows: HashMap<Uuid, &UserRow> = batch
            .iter()
            .filter_map(|delivered| delivered.projected.row.as_ref())
            .map(|row| (row.id, row))
            .collect();
        let entries: Vec<_> = rows.values().map(|row| row.entry()).collect();
        self.services
            .write_documents(&self.services.documents.users.at(keyspace_of(batch)), &entries)
            .await;
    }
}
