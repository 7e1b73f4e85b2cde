//! The order decider.

use super::events::OrderEvent;
use crate::money::Currency;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use uuid::Uuid;

/// Most lines in one order.
pub const MAX_LINES: usize = 50;
/// Most units of one product in one order.
pub const MAX_QUANTITY: i64 = 1000;

/// One line, priced when the order was placed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OrderLine {
    /// The product.
    pub product_id: Uuid,
    /// Its SKU at that moment.
    pub sku: String,
    /// Its name at that moment.
    pub name: String,
    /// Units.
    pub quantity: i64,
    /// Unit price at that moment, minor units.
    pub unit_price_cents: i64,
    /// `quantity × unitPriceCents`.
    pub line_total_cents: i64,
}

/// Where an order is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OrderStatus {
    /// Stock taken.
    Placed,
    /// Stock given back.
    Cancelled,
}

/// An order that exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    /// Owner.
    pub user_id: Uuid,
    /// Lines.
    pub lines: Vec<OrderLine>,
    /// Total.
    pub total_cents: i64,
    /// Currency.
    pub currency: Currency,
    /// Status.
    pub status: OrderStatus,
}

/// Everything the decider knows about one order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum OrderState {
    /// No event yet.
    #[default]
    New,
    /// Placed or cancelled.
    Existing(Order),
}

/// What a caller asks of an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrderCommand {
    /// Place it: lines already priced from the products, one currency.
    Place {
        /// Owner.
        user_id: Uuid,
        /// Lines (each with `line_total_cents` computed by the caller or here).
        lines: Vec<OrderLine>,
        /// Currency of every product.
        currency: Currency,
    },
    /// Cancel it.
    Cancel,
}

/// Why an order command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrderError {
    /// Place on an id that has events.
    #[error("order already exists")]
    AlreadyExists,
    /// Cancel of an unknown order.
    #[error("order not found")]
    NotFound,
    /// No lines, or more than 50.
    #[error("an order has 1 to 50 lines")]
    LineCount,
    /// A quantity outside 1..=1000.
    #[error("quantity must be 1 to 1000")]
    Quantity,
    /// The same product twice.
    #[error("duplicate product line")]
    DuplicateProduct,
    /// Cancel of an order that is not placed.
    #[error("only placed orders can be cancelled")]
    NotCancellable,
}

/// Decides which events a command causes.
pub fn decide(command: &OrderCommand, state: &OrderState) -> Result<Vec<OrderEvent>, OrderError> {
    match (command, state) {
        (
            OrderCommand::Place {
                user_id,
                lines,
                currency,
            },
            OrderState::New,
        ) => {
            if lines.is_empty() || lines.len() > MAX_LINES {
                return Err(OrderError::LineCount);
            }
            if lines.iter().any(|l| !(1..=MAX_QUANTITY).contains(&l.quantity)) {
                return Err(OrderError::Quantity);
            }
            let mut seen = HashSet::new();
            if !lines.iter().all(|l| seen.insert(l.product_id)) {
                return Err(OrderError::DuplicateProduct);
            }
            let lines: Vec<OrderLine> = lines
                .iter()
                .map(|l| OrderLine {
                    line_total_cents: l.quantity * l.unit_price_cents,
                    ..l.clone()
                })
                .collect();
            let total_cents = lines.iter().map(|l| l.line_total_cents).sum();
            Ok(vec![OrderEvent::Placed {
                user_id: *user_id,
                lines,
                total_cents,
                currency: *currency,
            }])
        }
        (OrderCommand::Place { .. }, OrderState::Existing(_)) => Err(OrderError::AlreadyExists),
        (OrderCommand::Cancel, OrderState::New) => Err(OrderError::NotFound),
        (OrderCommand::Cancel, OrderState::Existing(order)) => match order.status {
            OrderStatus::Placed => Ok(vec![OrderEvent::Cancelled {}]),
            OrderStatus::Cancelled => Err(OrderError::NotCancellable),
        },
    }
}

/// Applies one event.
pub fn evolve(state: OrderState, event: &OrderEvent) -> OrderState {
    match (state, event) {
        (
            _,
            OrderEvent::Placed {
                user_id,
                lines,
                total_cents,
                currency,
            },
        ) => OrderState::Existing(Order {
            user_id: *user_id,
            lines: lines.clone(),
            total_cents: *total_cents,
            currency: *currency,
            status: OrderStatus::Placed,
        }),
        (OrderState::Existing(mut order), OrderEvent::Cancelled {}) => {
            order.status = OrderStatus::Cancelled;
            OrderState::Existing(order)
        }
        (OrderState::New, OrderEvent::Cancelled {}) => OrderState::New,
    }
}
