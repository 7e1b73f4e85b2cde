//! The products projection: `products_view` in Postgres, built from the `product` stream.
//! Its `units_sold` column belongs to the orders projection (see [`sql`]); once a row is
//! created, its best-seller score in Redis is written too, and after every change its
//! Redis document.

mod row;
pub mod sql;

use crate::consumer::{Delivered, LiveProjection, keyspace_of};
use crate::model::ReadModel;
use crate::registry::Services;
use eventstore::EventEnvelope;
use sqlx::PgConnection;
use uuid::Uuid;

pub use row::{ProductRow, ROW_COLUMNS, STREAM_TYPE, evolve};

/// Durable JetStream consumer of the products projection, shared by every replica.
pub const CONSUMER: &str = "projector-products";

/// Name of the projection in `GET /api/v1/projections`.
pub const NAME: &str = "products";

/// The `products_view` read model.
pub struct Products;

impl ReadModel for Products {
    type Row = ProductRow;
    const STREAM_TYPE: &'static str = STREAM_TYPE;
    const TABLES: &'static [&'static str] = &["products_view"];

    fn id(row: &ProductRow) -> Uuid {
        row.id
    }

    fn version(row: &ProductRow) -> i64 {
        row.version
    }

    fn evolve(state: Option<ProductRow>, envelope: &EventEnvelope) -> Option<ProductRow> {
        evolve(state, envelope)
    }

    async fn lock_rows(conn: &mut PgConnection, ids: &[Uuid]) -> Result<Vec<ProductRow>, sqlx::Error> {
        sql::lock_rows(conn, ids).await
    }

    async fn insert_row(conn: &mut PgConnection, row: &mut ProductRow) -> Result<bool, sqlx::Error> {
        sql::insert_row(conn, row).await
    }

    async fn update_rows(
        conn: &mut PgConnection,
        changes: &[(&ProductRow, &ProductRow)],
    ) -> Result<(), sqlx::Error> {
        for (_, after) in changes {
            sql::update_row(conn, after).await?;
        }
        Ok(())
    }

    async fn load_rows(conn: &mut PgConnection, ids: &[Uuid]) -> Result<Vec<ProductRow>, sqlx::Error> {
        sql::load_rows(conn, ids).await
    }

    async fn upsert_rows(conn: &mut PgConnection, rows: &[&ProductRow]) -> Result<(), sqlx::Error> {
        sql::upsert_rows(conn, rows).await
    }
}

/// The live products projection: after each commit the products' Redis documents are
/// written as Postgres has them (with their review statistics). A product's creation may
/// bring units sold by orders projected before it, so its best-seller score is written
/// then (and again when the creation is redelivered, which heals a write lost to a crash).
pub struct ProductsProjection {
    services: Services,
}

impl LiveProjection for ProductsProjection {
    type Model = Products;
    const NAME: &'static str = NAME;
    const CONSUMER: &'static str = CONSUMER;

    fn build(services: &Services) -> Self {
        Self {
            services: services.clone(),
        }
    }

    async fn after_commit(&self, batch: &[Delivered<'_, ProductRow>]) {
        let changed = batch
            .iter()
            .filter_map(|delivered| delivered.projected.row.as_ref())
            .map(|row| row.id);
        let documents = &self.services.documents.products.at(keyspace_of(batch));
        self.services.refresh_documents(documents, changed).await;
        let mut created: Vec<Uuid> = batch
            .iter()
            .filter(|delivered| {
                let projected = delivered.projected;
                projected.created || (delivered.envelope.stream_version == 1 && projected.row.is_some())
            })
            .map(|delivered| delivered.envelope.stream_id)
            .collect();
        created.sort_unstable();
        created.dedup();
        self.services
            .top
            .sync(&self.services.pool, &self.services.redis, &created)
            .await;
    }
}
