//! Order events: a public contract (JSON Schemas in `schemas/events/`).

use super::decider::OrderLine;
use crate::money::Currency;
use uuid::Uuid;

crate::events! {
    /// Something that happened to an order.
    pub enum OrderEvent in "order", upcast = crate::event::current_only {
        /// `order.placed` v1.
        Placed = "order.placed" version 1 {
            /// The owner.
            user_id: Uuid,
            /// Lines as ordered.
            lines: Vec<OrderLine>,
            /// Sum of the line totals, in minor units.
            total_cents: i64,
            /// Currency of every line.
            currency: Currency,
        },
        /// `order.cancelled` v1: the stock went back.
        Cancelled = "order.cancelled" version 1 {},
    }
}
