//! Fixtures shared by the projector's unit tests.

use chrono::Utc;
use eventstore::EventEnvelope;
use serde_json::Value;
use uuid::Uuid;

/// An envelope at `version` of the nil stream; the stream type is the event type's prefix.
pub fn envelope(version: i64, event_type: &str, data: Value) -> EventEnvelope {
    EventEnvelope {
        id: Uuid::now_v7(),
        event_type: event_type.into(),
        schema_version: 1,
        stream_type: event_type.split('.').next().unwrap_or_default().into(),
        stream_id: Uuid::nil(),
        stream_version: version,
        position: version,
        occurred_at: Utc::now(),
        correlation_id: None,
        causation_id: None,
        actor_id: None,
        data,
    }
}
