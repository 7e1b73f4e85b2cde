//! The orders read model: tables `orders_view` and `order_lines_view` as the projector
//! writes them ([`OrderRow`], [`OrderLineRow`]) and an order as its owner reads it
//! ([`OrderView`], [`OrderLineView`]).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
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
