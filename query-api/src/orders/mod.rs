//! Orders as their owners (and administrators) read them, from the `orders_view` and
//! `order_lines_view` read models (filled by the projector): one user's orders, newest
//! first ([`params`], [`sql`]), and single orders, each with its lines as ordered.

pub mod params;
pub mod sql;

use crate::cursor::CursorScope;
use crate::pagination::{SortKey, SortOrder, Window};
use domain::order::OrderStatus;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use params::ListOrdersParams;
pub use readmodels::orders::{OrderLineView, OrderView};
pub use sql::list_orders;

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
