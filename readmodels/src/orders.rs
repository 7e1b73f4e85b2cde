//! The orders read model: tables `orders_view` and `order_lines_view` as the projector
//! writes them ([`OrderRow`], [`OrderLineRow`]) and an order as its owner reads it
//! ([`OrderView`], [`OrderLineView`]), and its Redis document (`<prefix>:order:<id>`, see
//! [`crate::cache`]).

use crate::cache::{Cached, DocumentCache, Entry, Version};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgPool};
use std::collections::HashMap;
use uuid::Uuid;

/// `status` of a placed order.
pub const PLACED: &str = "placed";
/// `status` of a cancelled order.
pub const CANCELLED: &str = "cancelled";

/// An order as stored in `orders_view`, with its lines.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct OrderRow {
    /// Order id (the stream id).
    pub id: Uuid,
    /// The owner.
    pub user_id: Uuid,
    /// `placed` or `cancelled`.
    pub status: String,
    /// Sum of the line totals, minor units.
    pub total_cents: i64,
    /// ISO 4217 currency of every line.
    pub currency: String,
    /// Number of lines.
    pub line_count: i32,
    /// Stream version of the last event applied: the projection's checkpoint for this order.
    pub version: i64,
    /// When it was placed.
    pub placed_at: DateTime<Utc>,
    /// When the last applied event occurred.
    pub updated_at: DateTime<Utc>,
    /// When it was cancelled.
    pub cancelled_at: Option<DateTime<Utc>>,
    /// Its lines in order (written once, with the order).
    #[sqlx(skip)]
    pub lines: Vec<OrderLineRow>,
}

/// One line of `order_lines_view`: the product as it was when the order was placed.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct OrderLineRow {
    /// Index of the line in the `order.placed` event, from 0.
    pub line_no: i32,
    /// The product.
    pub product_id: Uuid,
    /// Its SKU then.
    pub sku: String,
    /// Its name then.
    pub name: String,
    /// Units.
    pub quantity: i64,
    /// Unit price then, minor units.
    pub unit_price_cents: i64,
    /// `quantity × unit_price_cents`.
    pub line_total_cents: i64,
}

/// The tables a list of orders is read from (for the query API's page cache).
pub const TABLES: &[&str] = &["orders_view", "order_lines_view"];

/// Columns of `orders_view` in [`OrderRow`] order (without the lines).
pub const ROW_COLUMNS: &str = "id, user_id, status, total_cents, currency, line_count, version, \
     placed_at, updated_at, cancelled_at";

/// Columns of `order_lines_view` in [`OrderLineRow`] order (without the order id).
pub const LINE_COLUMNS: &str = "line_no, product_id, sku, name, quantity, unit_price_cents, line_total_cents";

impl OrderRow {
    /// Units this order counts towards each product's `units_sold`: its lines while placed,
    /// nothing once cancelled.
    pub fn units(&self) -> impl Iterator<Item = (Uuid, i64)> + '_ {
        let counted = self.status == PLACED;
        self.lines
            .iter()
            .filter(move |_| counted)
            .map(|line| (line.product_id, line.quantity))
    }

    /// The product ids of its lines.
    pub fn product_ids(&self) -> Vec<Uuid> {
        self.lines.iter().map(|line| line.product_id).collect()
    }

    /// The order as its owner reads it.
    pub fn view(&self) -> OrderView {
        OrderView {
            order_id: self.id,
            user_id: self.user_id,
            status: self.status.clone(),
            total_cents: self.total_cents,
            currency: self.currency.clone(),
            placed_at: self.placed_at,
            cancelled_at: self.cancelled_at,
            version: self.version,
            lines: self.lines.iter().map(OrderLineRow::view).collect(),
        }
    }
}

impl OrderLineRow {
    /// The line as readers see it.
    pub fn view(&self) -> OrderLineView {
        OrderLineView {
            product_id: self.product_id,
            sku: self.sku.clone(),
            name: self.name.clone(),
            quantity: self.quantity,
            unit_price_cents: self.unit_price_cents,
            line_total_cents: self.line_total_cents,
        }
    }
}

/// The rows of some orders with their lines; `tail` ends the orders' query (an `ORDER BY`
/// with `FOR UPDATE` to lock them). Two queries, the second only when an order was found.
pub async fn load_rows(
    conn: &mut PgConnection,
    ids: &[Uuid],
    tail: &str,
) -> Result<Vec<OrderRow>, sqlx::Error> {
    let sql = format!("SELECT {ROW_COLUMNS} FROM orders_view WHERE id = ANY($1) {tail}");
    let mut rows: Vec<OrderRow> = sqlx::query_as(&sql).bind(ids).fetch_all(&mut *conn).await?;
    if rows.is_empty() {
        return Ok(rows);
    }
    let sql = format!(
        "SELECT order_id, {LINE_COLUMNS} FROM order_lines_view WHERE order_id = ANY($1)
         ORDER BY order_id, line_no"
    );
    let lines = sqlx::query_as::<_, LineOf>(&sql)
        .bind(ids)
        .fetch_all(conn)
        .await?;
    let mut by_order: HashMap<Uuid, Vec<OrderLineRow>> = HashMap::new();
    for LineOf { order_id, line } in lines {
        by_order.entry(order_id).or_default().push(line);
    }
    for row in &mut rows {
        row.lines = by_order.remove(&row.id).unwrap_or_default();
    }
    Ok(rows)
}

/// A line with the order it belongs to.
#[derive(sqlx::FromRow)]
struct LineOf {
    order_id: Uuid,
    #[sqlx(flatten)]
    line: OrderLineRow,
}

/// The Redis documents of orders.
pub type OrderCache = DocumentCache<OrderView>;

impl Cached for OrderView {
    const KIND: &'static str = "order";
    const TABLE: &'static str = "orders_view";

    fn id(&self) -> Uuid {
        self.order_id
    }

    fn version(&self) -> Version {
        Version::of_stream(self.version)
    }

    async fn load(pool: &PgPool, ids: &[Uuid]) -> Result<Vec<Entry<Self>>, sqlx::Error> {
        let mut conn = pool.acquire().await?;
        let rows = load_rows(&mut conn, ids, "").await?;
        Ok(rows.iter().map(|row| Entry::Live(row.view())).collect())
    }
}

/// An order with its lines.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderView {
    /// Order id (`id` on the wire, like every other resource).
    #[serde(rename = "id")]
    pub order_id: Uuid,
    /// The user who placed it.
    pub user_id: Uuid,
    /// `placed` or `cancelled`.
    pub status: String,
    /// Sum of the line totals, in minor units of `currency`.
    pub total_cents: i64,
    /// ISO 4217 currency code.
    pub currency: String,
    /// When it was placed.
    pub placed_at: DateTime<Utc>,
    /// When it was cancelled, if it was.
    pub cancelled_at: Option<DateTime<Utc>>,
    /// Stream version this view reflects (also the `ETag`).
    pub version: i64,
    /// The lines, in the order they were placed.
    pub lines: Vec<OrderLineView>,
}

/// One line of an order, with the product's SKU, name and price as they were when the
/// order was placed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderLineView {
    /// The product.
    pub product_id: Uuid,
    /// Its SKU then.
    pub sku: String,
    /// Its name then.
    pub name: String,
    /// Units ordered.
    pub quantity: i64,
    /// Price per unit then, in minor units.
    pub unit_price_cents: i64,
    /// `quantity × unitPriceCents`.
    pub line_total_cents: i64,
}
