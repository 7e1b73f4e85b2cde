//! The user aggregate: registration, profile, role, password and deletion.

mod decider;
mod events;
mod values;

pub use decider::{UserCommand, UserError, UserState, decide, evolve};
pub use events::UserEvent;
pub use values::{Email, Password, Role, UserName, ValueError};
