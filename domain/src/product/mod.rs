//! The product aggregate: catalogue data, price and stock. Stock is taken and given
//! back by orders through `Reserve` and `Release`, in the same transaction as the order.

mod decider;
mod events;
mod values;

pub use decider::{MAX_STOCK, Product, ProductCommand, ProductError, ProductState, decide, evolve};
pub use events::ProductEvent;
pub use values::{Description, ProductName, Sku};

/// The product aggregate as a [`crate::Decider`].
pub struct ProductAggregate;

impl crate::Decider for ProductAggregate {
    type State = ProductState;
    type Command = ProductCommand;
    type Event = ProductEvent;
    type Error = ProductError;

    fn decide(command: &ProductCommand, state: &ProductState) -> Result<Vec<ProductEvent>, ProductError> {
        decide(command, state)
    }

    fn evolve(state: ProductState, event: &ProductEvent) -> ProductState {
        evolve(state, event)
    }

    fn is_live(state: &Self::State) -> bool {
        matches!(state, ProductState::Existing(_))
    }
}

/// The stock range a product may hold (0..=[`MAX_STOCK`]); the decider applies it, and
/// callers may check a requested stock first to name the field at fault.
pub fn stock_in_range(stock: i64) -> bool {
    (0..=MAX_STOCK).contains(&stock)
}

/// The units one restock may add (1..=[`MAX_STOCK`]); the decider also refuses a restock
/// that would take the stock past [`MAX_STOCK`].
pub fn restock_in_range(quantity: i64) -> bool {
    (1..=MAX_STOCK).contains(&quantity)
}
