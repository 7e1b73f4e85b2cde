//! The user aggregate: registration, profile, role, password and deletion.

mod decider;
mod events;
mod values;

pub use decider::{UserCommand, UserError, UserState, decide, evolve};
pub use events::UserEvent;
pub use values::{Email, Password, Role, UserName, ValueError};

/// The user aggregate as a [`crate::Decider`].
pub struct UserAggregate;

impl crate::Decider for UserAggregate {
    type State = UserState;
    type Command = UserCommand;
    type Event = UserEvent;
    type Error = UserError;

    fn decide(command: &UserCommand, state: &UserState) -> Result<Vec<UserEvent>, UserError> {
        decide(command, state)
    }

    fn evolve(state: UserState, event: &UserEvent) -> UserState {
        evolve(state, event)
    }

    fn is_live(state: &Self::State) -> bool {
        matches!(state, UserState::Active { .. })
    }
}
