//! The order aggregate: placed with its lines priced at that moment, cancellable while
//! placed. Its stock effects are product events appended in the same transaction.

mod decider;
mod events;

pub use decider::{
    MAX_LINES, MAX_QUANTITY, Order, OrderCommand, OrderError, OrderLine, OrderState, OrderStatus, decide,
    evolve,
};
pub use events::OrderEvent;
