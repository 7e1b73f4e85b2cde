//! What every domain event can say about itself, so the event store can persist it
//! and read it back without knowing the concrete type.

use serde_json::Value;

/// A domain event that can be written to and read from the event store.
pub trait DomainEvent: Sized {
    /// The stream type this event belongs to (`user`), the first part of its subject.
    const STREAM_TYPE: &'static str;

    /// Public event type, e.g. `user.registered`.
    fn event_type(&self) -> &'static str;

    /// Schema version of the payload this code writes.
    fn schema_version(&self) -> i32;

    /// The `data` part of the envelope.
    fn to_data(&self) -> Value;

    /// Reads a stored payload, upcasting older schema versions to the current type.
    fn from_stored(event_type: &str, schema_version: i32, data: &Value) -> Result<Self, EventDecodeError>;
}

/// A stored event that this code cannot read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EventDecodeError {
    /// The event type is not one this aggregate knows.
    #[error("unknown event type {0}")]
    UnknownType(String),
    /// The schema version is newer than this code, or was never defined.
    #[error("unsupported schema version {version} for {event_type}")]
    UnsupportedVersion {
        /// Event type.
        event_type: String,
        /// Schema version found in the store.
        version: i32,
    },
    /// The payload does not match the schema of its version.
    #[error("malformed {event_type} payload: {reason}")]
    Malformed {
        /// Event type.
        event_type: String,
        /// What serde said.
        reason: String,
    },
}

/// The upcaster of a stream whose every event type is at its first schema version: any
/// other version is refused.
pub fn current_only(event_type: &str, version: i32, _data: &Value) -> Result<Value, EventDecodeError> {
    Err(EventDecodeError::UnsupportedVersion {
        event_type: event_type.to_owned(),
        version,
    })
}

/// Every event type of every aggregate with its current schema version, by stream type:
/// the one list the published catalogue (AsyncAPI) and the schema checks are built from.
pub fn catalogue() -> Vec<(&'static str, &'static str, i32)> {
    use crate::order::OrderEvent;
    use crate::product::ProductEvent;
    use crate::review::ReviewEvent;
    use crate::user::UserEvent;
    let streams: [(&'static str, &'static [(&'static str, i32)]); 4] = [
        (UserEvent::STREAM_TYPE, UserEvent::TYPES),
        (ProductEvent::STREAM_TYPE, ProductEvent::TYPES),
        (OrderEvent::STREAM_TYPE, OrderEvent::TYPES),
        (ReviewEvent::STREAM_TYPE, ReviewEvent::TYPES),
    ];
    streams
        .into_iter()
        .flat_map(|(stream, types)| {
            types
                .iter()
                .map(move |(event_type, version)| (stream, *event_type, *version))
        })
        .collect()
}
