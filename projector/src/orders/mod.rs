//! The orders projection: `orders_view` and `order_lines_view` in Postgres, built from the
//! `order` stream, together with the `units_sold` of the ordered products (in the same
//! transaction) and their best-seller scores in Redis (after the commit).

mod row;
pub mod sql;

use crate::consumer::{Delivered, LiveProjection};
use crate::model::ReadModel;
use crate::registry::Services;
use crate::top::TopSellers;
use eventstore::EventEnvelope;
use runtime::RedisHandle;
use sqlx::{PgConnection, PgPool};
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

/// The live orders projection: after each batch of order events (duplicates included, which heals a
/// write lost to a crash), the best-seller scores of the order's products are written as
/// Postgres has them.
pub struct OrdersProjection {
    pool: PgPool,
    redis: RedisHandle,
    top: TopSellers,
}

impl OrdersProjection {
    /// Writes scores through `redis` into `top`, reading them from `pool`.
    pub fn new(pool: PgPool, redis: RedisHandle, top: TopSellers) -> Self {
        Self { pool, redis, top }
    }
}

impl LiveProjection for OrdersProjection {
    type Model = Orders;
    const NAME: &'static str = NAME;
    const CONSUMER: &'static str = CONSUMER;

    fn build(services: &Services) -> Self {
        Self::new(
            services.pool.clone(),
            services.redis.clone(),
            services.top.clone(),
        )
    }

    /// One write of the scores of every product of the batch's orders.
    async fn after_commit(&self, batch: &[Delivered<'_, OrderRow>]) {
        let mut products: Vec<Uuid> = batch
            .iter()
            .filter_map(|delivered| delivered.projected.row.as_ref())
            .flat_map(OrderRow::product_ids)
            .collect();
        products.sort_unstable();
        products.dedup();
        self.top.sync(&self.pool, &self.redis, &products).await;
    }
}
