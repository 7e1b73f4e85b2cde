//! The pure domain: commands, events and the deciders that hold every business rule.
//!
//! Nothing here performs I/O, awaits, or knows about HTTP, SQL or NATS. A decider is
//! `decide(&command, &state) -> Result<Vec<Event>, Error>` plus
//! `evolve(state, &event) -> state`; storage and transport live in other crates.

pub mod decider;
mod declare;
pub mod event;
pub mod user;

pub use decider::Decider;
pub use event::{DomainEvent, EventDecodeError};
pub mod money;
pub mod order;
pub mod product;
pub mod review;
