//! The order aggregate: placed with its lines priced at that moment, cancellable while
//! placed. Its stock effects are product events appended in the same transaction.

mod decider;
mod events;
mod placement;

pub use decider::{
    MAX_LINES, MAX_QUANTITY, Order, OrderCommand, OrderError, OrderLine, OrderState, OrderStatus, decide,
    evolve,
};
pub use events::OrderEvent;
pub use placement::{
    Canceller, Item, LineFault, LinesError, OrderAggregate, PlacementError, StockMove, cancel, check_items,
    place, products_of, visible_to,
};
