//! The product aggregate: catalogue data, price and stock. Stock is taken and given
//! back by orders through `Reserve` and `Release`, in the same transaction as the order.

mod decider;
mod events;
mod values;

pub use decider::{MAX_STOCK, Product, ProductCommand, ProductError, ProductState, decide, evolve};
pub use events::ProductEvent;
pub use values::{Description, ProductName, Sku};
