//! The JetStream stream that carries every event.

use async_nats::jetstream::{self, stream};

pub use runtime::StreamSettings;

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
