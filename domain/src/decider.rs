//! The shape every aggregate has: a decider. The engine (`eventstore::Engine`) loads a
//! stream by folding its events with [`Decider::evolve`], asks [`Decider::decide`] what a
//! command causes, and appends the answer with the version it read. Every business rule
//! lives in `decide`; nothing outside a decider refuses a command for a business reason.

use crate::event::DomainEvent;

/// One aggregate type: its commands, events, state and the two pure functions over them.
pub trait Decider: 'static {
    /// What the decider knows about one stream. `Default` is the state before any event.
    type State: Default + Clone + Send + Sync + 'static;
    /// What a caller asks.
    type Command;
    /// What happened; its `STREAM_TYPE` names the stream type of this aggregate.
    type Event: DomainEvent + Send + Sync + 'static;
    /// Why a command was refused.
    type Error;

    /// The events a command causes in a state (none when it changes nothing).
    fn decide(command: &Self::Command, state: &Self::State) -> Result<Vec<Self::Event>, Self::Error>;

    /// The state after one event. Matches every event exhaustively: a new event type does
    /// not compile until each aggregate says what it does.
    fn evolve(state: Self::State, event: &Self::Event) -> Self::State;

    /// Whether the stream exists for commands (an `If-Match` version is checked against
    /// it). A stream that never existed or was deleted answers with the decider's own
    /// error (not found) instead of a stale version.
    fn is_live(_state: &Self::State) -> bool {
        true
    }

    /// The stream type, the first part of every event type and subject (`user`).
    fn stream_type() -> &'static str {
        <Self::Event as DomainEvent>::STREAM_TYPE
    }

    /// The state after a sequence of events.
    fn fold<'a>(state: Self::State, events: impl IntoIterator<Item = &'a Self::Event>) -> Self::State {
        events.into_iter().fold(state, Self::evolve)
    }
}
