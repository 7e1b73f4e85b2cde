//! Orders as their owners (and administrators) read them, from the `orders_view` and
//! `order_lines_view` read models (filled by the projector): one user's orders, newest
//! first ([`params`], [`sql`]), and single orders, each with its lines as ordered.

pub mod params;
pub mod sql;

use crate::cursor::CursorScope;
use crate::pagination::{SortKey, SortOrder, Window};
use chrono::{DateTime, Utc};
use domain::order::OrderStatus;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use params::ListOrdersParams;
pub use sql::{find_order, list_orders};

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

/// The only sort of the order list.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum OrderSort {
    /// When the order was placed.
    #[default]
    PlacedAt,
}

/// Whose orders, which ones and in which order: everything a cursor is bound to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderScope {
    /// The owner.
    pub user_id: Uuid,
    /// Only orders with this status.
    pub status: Option<OrderStatus>,
    /// Sort field; ties are broken by id in the same direction.
    pub sort: OrderSort,
    /// Sort direction (newest first by default).
    pub order: SortOrder,
}

impl CursorScope for OrderScope {
    const LIST: &'static str = "orders";

    fn fits(&self, key: &SortKey) -> bool {
        matches!((key, self.sort), (SortKey::Time(_), OrderSort::PlacedAt))
    }
}

/// A validated order list request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderListRequest {
    /// Owner, filters and order.
    pub scope: OrderScope,
    /// Which slice.
    pub window: Window,
}
