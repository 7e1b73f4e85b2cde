//! Where the events travel on NATS: the JetStream stream and its subjects.

use std::time::Duration;

/// Name and subjects of the events stream.
#[derive(Debug, Clone)]
pub struct StreamSettings {
    /// Stream name (`EVENTS`).
    pub name: String,
    /// Subject prefix (`events`): subjects are `<prefix>.<streamType>.<eventName>`.
    pub subject_prefix: String,
    /// Window in which JetStream drops a second publish of the same event id.
    pub duplicate_window: Duration,
}

impl StreamSettings {
    /// The filter subject for every event of one stream type, e.g. `events.user.>`.
    pub fn stream_type_filter(&self, stream_type: &str) -> String {
        format!("{}.{stream_type}.>", self.subject_prefix)
    }

    /// The subject of one event type, e.g. `events.user.registered`.
    pub fn subject(&self, event_type: &str) -> String {
        format!("{}.{event_type}", self.subject_prefix)
    }
}
