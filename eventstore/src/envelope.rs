//! The event envelope: the same JSON in Postgres, on NATS and for subscribers.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

impl EventEnvelope {
    /// The span of the work done for this event: every line logged in it carries
    /// `eventId`, `eventType` and `correlationId`, so one request can be followed from its
    /// HTTP line to the projection and the side effects it caused. At `ERROR` level so
    /// that it is kept whenever any line is (a span's level only decides its filtering).
    pub fn log_span(&self) -> tracing::Span {
        tracing::error_span!(
            "event",
            eventId = %self.id,
            eventType = %self.event_type,
            correlationId = self.correlation_id.as_deref().unwrap_or_default(),
        )
    }
}

/// One stored event with its metadata (DESIGN.md, "Events").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct EventEnvelope {
    /// Event id (UUID v7), also the JetStream `Nats-Msg-Id`.
    pub id: Uuid,
    /// Event type, `<streamType>.<eventName>`.
    #[serde(rename = "type")]
    pub event_type: String,
    /// Version of the `data` schema.
    pub schema_version: i32,
    /// Aggregate type, e.g. `user`.
    pub stream_type: String,
    /// Aggregate id.
    pub stream_id: Uuid,
    /// Version of the aggregate after this event (1 for the first).
    pub stream_version: i64,
    /// Global position in the store.
    pub position: i64,
    /// When the event was recorded.
    pub occurred_at: DateTime<Utc>,
    /// Request id of the HTTP request (or job) that caused it.
    pub correlation_id: Option<String>,
    /// Id of the request or event that directly caused it.
    pub causation_id: Option<String>,
    /// User who caused it, if any.
    pub actor_id: Option<Uuid>,
    /// The payload.
    pub data: Value,
}

impl EventEnvelope {
    /// The NATS subject: `<prefix>.<streamType>.<eventName>`.
    pub fn subject(&self, prefix: &str) -> String {
        format!("{prefix}.{}", self.event_type)
    }
}

/// Milliseconds from `occurred_at` (an event's commit) until now, for the lag the relay
/// and the projector log.
pub fn lag_ms(occurred_at: DateTime<Utc>) -> f64 {
    (Utc::now() - occurred_at).num_microseconds().unwrap_or(0) as f64 / 1000.0
}

/// Who and what caused the events of one append.
#[derive(Debug, Clone, Default)]
pub struct EventMetadata {
    /// Request id.
    pub correlation_id: Option<String>,
    /// Causing request or event id.
    pub causation_id: Option<String>,
    /// Acting user.
    pub actor_id: Option<Uuid>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn envelope_serialises_to_the_documented_camel_case_shape() {
        let id = Uuid::now_v7();
        let stream = Uuid::new_v4();
        let envelope = EventEnvelope {
            id,
            event_type: "user.registered".into(),
            schema_version: 1,
            stream_type: "user".into(),
            stream_id: stream,
            stream_version: 1,
            position: 7,
            occurred_at: DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
                .expect("date")
                .to_utc(),
            correlation_id: Some("req-1".into()),
            causation_id: Some("req-1".into()),
            actor_id: None,
            data: json!({"name": "Ada"}),
        };
        let value = serde_json::to_value(&envelope).expect("serialises");
        assert_eq!(
            value,
            json!({
                "id": id, "type": "user.registered", "schemaVersion": 1, "streamType": "user",
                "streamId": stream, "streamVersion": 1, "position": 7,
                "occurredAt": "2026-01-01T00:00:00Z", "correlationId": "req-1",
                "causationId": "req-1", "actorId": null, "data": {"name": "Ada"}
            })
        );
        assert_eq!(envelope.subject("events"), "events.user.registered");
    }
}
