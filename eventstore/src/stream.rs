//! The JetStream stream that carries every event.

use async_nats::jetstream::{self, stream};
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

/// Creates the stream if it does not exist (file storage, duplicate window) and returns it.
pub async fn ensure_stream(
    js: &jetstream::Context,
    settings: &StreamSettings,
) -> Result<stream::Stream, async_nats::Error> {
    let config = stream::Config {
        name: settings.name.clone(),
        subjects: vec![format!("{}.>", settings.subject_prefix)],
        storage: stream::StorageType::File,
        duplicate_window: settings.duplicate_window,
        ..Default::default()
    };
    Ok(js.get_or_create_stream(config).await?)
}
