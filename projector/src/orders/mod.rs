//! The orders projection: `orders_view` and `order_lines_view` in Postgres, built from the
//! `order` stream, together with the `units_sold` of the ordered products (in the same
//! transaction), and the orders' Redis documents and their products' best-seller scores
//! (after the commit).

mod row;
pub mod sql;

use crate::consumer::{Delivered, LiveProjection, keyspace_of};
use crate::model::ReadModel;
use crate::registry::Services;
use eventstore::EventEnvelope;
use readmodels::cache::Entry;
use readmodels::orders::OrderView;
use sqlx::PgConnection;
use std::collections::BTreeMap;
use uuid::Uuid;

pub use row::{
    CANCELLED, LINE_COLUMNS, OrderLineRow, OrderRow, PLACED, ROW_COLUMNS, STREAM_TYPE, evolve, units_delta,
};

/// Durable JetStream consumer of the orders projection, shared by every replica.
pub const CONSUMER: &str = "projector-orders";

/// Name of the projection in `GET /api/v1/projections`.
pub const NAME: &str = "orders";

/// The `orders_view` and `order_lines_view` read model.
pub struct Orders;

impl ReadModel for Orders {
    type Row = OrderRow;
    const STREAM_TYPE: &'static str = STREAM_TYPE;
    const TABLES: &'static [&'static str] = &["orders_view", "order_lines_view"];

    fn id(row: &OrderRow) -> Uuid {
        row.id
    }

    fn version(row: &OrderRow) -> i64 {
        row.version
    }

    fn evolve(state: Option<OrderRow>, envelope: &EventEnvelope) -> Option<OrderRow> {
        evolve(state, envelope)
    }

    async fn lock_rows(conn: &mut PgConnection, ids: &[Uuid]) -> Result<Vec<OrderRow>, sqlx::Error> {
        sql::lock_rows(conn, ids).await
    }

    async fn before_writes(conn: &mut PgConnection, rows: &[&OrderRow]) -> Result<(), sqlx::Error> {
        sql::lock_products_of(conn, rows).await
    }

    async fn insert_row(conn: &mut PgConnection, row: &mut OrderRow) -> Result<bool, sqlx::Error> {
        sql::insert_row(conn, row).await
    }

    async fn update_rows(
        conn: &mut PgConnection,
        changes: &[(&OrderRow, &OrderRow)],
    ) -> Result<(), sqlx::Error> {
        sql::update_rows(conn, changes).await
    }

    async fn load_rows(conn: &mut PgConnection, ids: &[Uuid]) -> Result<Vec<OrderRow>, sqlx::Error> {
        sql::load_rows(conn, ids).await
    }

    async fn upsert_rows(conn: &mut PgConnection, rows: &[&OrderRow]) -> Result<(), sqlx::Error> {
        sql::upsert_rows(conn, rows).await
    }

    /// `units_sold` belongs to this projection: recomputed from every order.
    async fn after_replay(conn: &mut PgConnection) -> Result<(), sqlx::Error> {
        crate::products::sql::recompute_units_sold(conn).await.map(|_| ())
    }
}

/// The live orders projection: after each batch of order events (duplicates included,
/// which heals a write lost to a crash), the orders' Redis documents are written from
/// their rows, and the best-seller scores of their products as Postgres has them.
pub struct OrdersProjection {
    services: Services,
}

impl LiveProjection for OrdersProjection {
    type Model = Orders;
    const NAME: &'static str = NAME;
    const CONSUMER: &'static str = CONSUMER;

    fn build(services: &Services) -> Self {
        Self {
            services: services.clone(),
        }
    }

    /// Each order's document once, at its row after the commit; then one write of the
    /// scores of every product of the batch's orders.
    async fn after_commit(&self, batch: &[Delivered<'_, OrderRow>]) {
        let rows: BTreeMap<Uuid, &OrderRow> = batch
            .iter()
            .filter_map(|delivered| delivered.projected.row.as_ref())
            .map(|row| (row.id, row))
            .collect();
        let entries: Vec<Entry<OrderView>> = rows.values().map(|row| Entry::Live(row.view())).collect();
        self.services
            .write_documents(&self.services.documents.orders.at(keyspace_of(batch)), &entries)
            .await;
        let mut products: Vec<Uuid> = rows.values().flat_map(|row| row.product_ids()).collect();
        products.sort_unstable();
        products.dedup();
        self.services
            .top
            .sync(&self.services.pool, &self.services.redis, &products)
            .await;
    }
}
