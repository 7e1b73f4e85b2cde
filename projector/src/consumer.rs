//! The JetStream side of the live projections: per projection a durable pull consumer
//! shared by every replica, messages projected a few at a time, acknowledged only after
//! their commit.
//!
//! * a message that is not an envelope of the projection's stream type, or an event ahead
//!   of its row that the event store does not hold, is poison: logged and acknowledged;
//! * a transient failure (Postgres down) is negatively acknowledged with an exponential,
//!   jittered delay, and this replica slows down while failures repeat;
//! * Redis is written after the commit and before the ack; a Redis failure is logged and
//!   does not stop the projection (a redelivery, or a rebuild, heals it).

use crate::ProjectionError;
use crate::model::{self, Outcome, Projected, ReadModel};
use crate::retry::{Backoff, nak_delay};
use async_nats::jetstream::{self, AckKind, consumer::pull};
use eventstore::{EventEnvelope, StreamSettings};
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use sqlx::PgPool;
use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// How long JetStream waits for an ack before redelivering.
pub const ACK_WAIT: Duration = Duration::from_secs(30);
/// How long one Redis write after a commit may take before it is given up.
pub const REDIS_TIMEOUT: Duration = Duration::from_secs(2);

/// The row type of a live projection.
pub type RowOf<P> = <<P as LiveProjection>::Model as ReadModel>::Row;

/// A projection as the live consumer runs it: its read model, its durable consumer, and
/// what it refreshes in Redis after each commit.
pub trait LiveProjection: Send + Sync + 'static {
    /// The Postgres read model.
    type Model: ReadModel;
    /// Name in logs and in `GET /api/v1/projections`.
    const NAME: &'static str;
    /// Durable JetStream consumer, shared by every replica.
    const CONSUMER: &'static str;

    /// Refreshes Redis after an event was projected, also after a duplicate (which heals a
    /// write lost to a crash between commit and ack). Failures are logged, never returned:
    /// Redis can always be rebuilt from Postgres.
    fn after_commit(
        &self,
        envelope: &EventEnvelope,
        projected: &Projected<RowOf<Self>>,
    ) -> impl Future<Output = ()> + Send;
}

/// The live consumer of one projection.
pub struct Consumer<P> {
    pool: PgPool,
    jetstream: jetstream::Context,
    stream: StreamSettings,
    projection: P,
    /// Messages in flight at once.
    concurrency: usize,
    /// Failures in a row, to slow down while Postgres is away.
    failures: AtomicU32,
}

impl<P: LiveProjection> Consumer<P> {
    /// A consumer of `stream` writing to Postgres and, through the projection, to Redis.
    pub fn new(
        pool: PgPool,
        jetstream: jetstream::Context,
        stream: StreamSettings,
        projection: P,
        concurrency: usize,
    ) -> Self {
        Self {
            pool,
            jetstream,
            stream,
            projection,
            concurrency: concurrency.max(1),
            failures: AtomicU32::new(0),
        }
    }

    /// The durable consumer's configuration.
    pub fn consumer_config(stream: &StreamSettings) -> pull::Config {
        pull::Config {
            durable_name: Some(P::CONSUMER.to_owned()),
            filter_subject: stream.stream_type_filter(P::Model::STREAM_TYPE),
            ack_policy: jetstream::consumer::AckPolicy::Explicit,
            ack_wait: ACK_WAIT,
            deliver_policy: jetstream::consumer::DeliverPolicy::All,
            ..Default::default()
        }
    }

    /// Projects until `shutdown` is cancelled, then finishes the messages in flight.
    pub async fn run(&self, shutdown: CancellationToken) {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
        while !shutdown.is_cancelled() {
            match self.consume(&shutdown).await {
                Ok(()) => backoff.reset(),
                Err(error) => {
                    tracing::warn!(
                        error = %error,
                        stream = %self.stream.name,
                        projection = P::NAME,
                        "events consumer unavailable; retrying"
                    );
                    tokio::select! {
                        _ = shutdown.cancelled() => {}
                        _ = tokio::time::sleep(backoff.next()) => {}
                    }
                }
            }
        }
        tracing::info!(projection = P::NAME, "projection stopped");
    }

    /// One subscription: returns when cancelled or when the message stream breaks.
    async fn consume(&self, shutdown: &CancellationToken) -> Result<(), async_nats::Error> {
        let stream = eventstore::ensure_stream(&self.jetstream, &self.stream).await?;
        let consumer = stream
            .get_or_create_consumer(P::CONSUMER, Self::consumer_config(&self.stream))
            .await?;
        let mut messages = consumer
            .stream()
            .max_messages_per_batch(self.concurrency * 4)
            .heartbeat(Duration::from_secs(5))
            .messages()
            .await?;
        tracing::info!(
            consumer = P::CONSUMER,
            projection = P::NAME,
            "projection consuming"
        );
        let mut in_flight = FuturesUnordered::new();
        let result = loop {
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break Ok(()),
                Some(()) = in_flight.next(), if !in_flight.is_empty() => {}
                next = messages.next(), if in_flight.len() < self.concurrency => match next {
                    Some(Ok(message)) => in_flight.push(self.handle(message, shutdown)),
                    Some(Err(error)) => break Err(error.into()),
                    None => break Ok(()),
                },
            }
        };
        while in_flight.next().await.is_some() {}
        result
    }

    async fn handle(&self, message: jetstream::Message, shutdown: &CancellationToken) {
        let envelope = match decode(&message.payload, P::Model::STREAM_TYPE) {
            Ok(envelope) => envelope,
            Err(reason) => {
                tracing::warn!(nats.subject = %message.subject, reason, "poison message acknowledged");
                acknowledge(&message, AckKind::Ack).await;
                return;
            }
        };
        let span = tracing::info_span!(
            "project",
            projection = P::NAME,
            event.id = %envelope.id,
            event.type = %envelope.event_type,
            stream.id = %envelope.stream_id,
            stream.version = envelope.stream_version,
        );
        self.project(&message, &envelope, shutdown).instrument(span).await;
    }

    async fn project(
        &self,
        message: &jetstream::Message,
        envelope: &EventEnvelope,
        shutdown: &CancellationToken,
    ) {
        match model::project_event::<P::Model>(&self.pool, envelope).await {
            Ok(projected) => {
                self.failures.store(0, Ordering::Relaxed);
                match projected.outcome {
                    Outcome::Applied { gap_filled } if gap_filled > 0 => {
                        tracing::info!(gap_filled, "missing events applied from the store first");
                    }
                    Outcome::Applied { .. } => tracing::debug!("event applied"),
                    Outcome::Duplicate => tracing::debug!("duplicate event skipped"),
                }
                self.projection.after_commit(envelope, &projected).await;
                acknowledge(message, AckKind::Ack).await;
            }
            Err(error @ ProjectionError::NotInStore(_)) => {
                tracing::warn!(error = %error, "poison message acknowledged");
                acknowledge(message, AckKind::Ack).await;
            }
            Err(error) => {
                let delivered = message.info().map(|info| info.delivered).unwrap_or(1);
                let delay = nak_delay(delivered);
                tracing::warn!(
                    error = %error,
                    delivery = delivered,
                    retry_in_ms = delay.as_millis() as u64,
                    "projection failed; will retry"
                );
                acknowledge(message, AckKind::Nak(Some(delay))).await;
                // Slow this replica down while failures repeat instead of spinning.
                let failures = self.failures.fetch_add(1, Ordering::Relaxed).min(7);
                let pause = Duration::from_millis(50 << failures);
                tokio::select! {
                    _ = shutdown.cancelled() => {}
                    _ = tokio::time::sleep(pause) => {}
                }
            }
        }
    }
}

/// Runs one Redis write after a commit, bounded by [`REDIS_TIMEOUT`]; a failure is
/// logged as leaving `what` stale.
pub async fn redis_write<T>(what: &'static str, write: impl Future<Output = redis::RedisResult<T>>) -> bool {
    match tokio::time::timeout(REDIS_TIMEOUT, write).await {
        Ok(Ok(_)) => true,
        Ok(Err(error)) => {
            tracing::warn!(error = %error, redis.target = what, "redis write failed; stale until healed");
            false
        }
        Err(_) => {
            tracing::warn!(redis.target = what, "redis write timed out; stale until healed");
            false
        }
    }
}

/// Reads a message as an event envelope of `stream_type`, or says why it is poison.
fn decode(payload: &[u8], stream_type: &str) -> Result<EventEnvelope, &'static str> {
    let envelope: EventEnvelope = serde_json::from_slice(payload).map_err(|_| "not an event envelope")?;
    if envelope.stream_type != stream_type {
        return Err("not an event of this projection's stream type");
    }
    if envelope.stream_version < 1 {
        return Err("stream version below 1");
    }
    Ok(envelope)
}

async fn acknowledge(message: &jetstream::Message, kind: AckKind) {
    if let Err(error) = message.ack_with(kind).await {
        // The message comes back after the ack wait and is then recognised as a duplicate.
        tracing::warn!(error = %error, "acknowledgement not sent");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_that_are_not_envelopes_of_the_stream_type_are_poison() {
        assert!(decode(b"not json", "user").is_err());
        assert!(decode(br#"{"id": 1}"#, "user").is_err());
        let envelope = serde_json::json!({
            "id": uuid::Uuid::now_v7(), "type": "order.cancelled", "schemaVersion": 1,
            "streamType": "order", "streamId": uuid::Uuid::now_v7(), "streamVersion": 2,
            "position": 7, "occurredAt": "2026-01-01T00:00:00Z", "data": {}
        });
        let payload = serde_json::to_vec(&envelope).expect("json");
        assert!(decode(&payload, "order").is_ok());
        assert_eq!(
            decode(&payload, "user"),
            Err("not an event of this projection's stream type")
        );
    }
}
