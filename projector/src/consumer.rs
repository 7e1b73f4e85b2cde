//! The JetStream side of the live projection: a durable pull consumer shared by every
//! replica, messages projected a few at a time, acknowledged only after their commit.
//!
//! * a message that is not a user event envelope, or an event ahead of its row that the
//!   event store does not hold, is poison: logged and acknowledged;
//! * a transient failure (Postgres down) is negatively acknowledged with an exponential,
//!   jittered delay, and this replica slows down while failures repeat;
//! * Redis is written after the commit and before the ack; a Redis failure is logged and
//!   does not stop the projection (a redelivery, or a rebuild, heals the document).

use crate::ProjectionError;
use crate::users::{self, Outcome, UserRow};
use async_nats::jetstream::{self, AckKind, consumer::pull};
use eventstore::{EventEnvelope, StreamSettings};
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use rand::Rng;
use readmodels::users::UserCache;
use runtime::RedisHandle;
use sqlx::PgPool;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// How long JetStream waits for an ack before redelivering.
pub const ACK_WAIT: Duration = Duration::from_secs(30);
const REDIS_TIMEOUT: Duration = Duration::from_secs(2);

/// The live users projection.
pub struct UsersConsumer {
    pool: PgPool,
    jetstream: jetstream::Context,
    stream: StreamSettings,
    redis: RedisHandle,
    cache: UserCache,
    /// Messages in flight at once.
    concurrency: usize,
    /// Failures in a row, to slow down while Postgres is away.
    failures: AtomicU32,
}

impl UsersConsumer {
    /// A consumer of `stream` writing to Postgres and, when reachable, Redis.
    pub fn new(
        pool: PgPool,
        jetstream: jetstream::Context,
        stream: StreamSettings,
        redis: RedisHandle,
        cache: UserCache,
        concurrency: usize,
    ) -> Self {
        Self {
            pool,
            jetstream,
            stream,
            redis,
            cache,
            concurrency: concurrency.max(1),
            failures: AtomicU32::new(0),
        }
    }

    /// The durable consumer's configuration.
    pub fn consumer_config(stream: &StreamSettings) -> pull::Config {
        pull::Config {
            durable_name: Some(users::CONSUMER.to_owned()),
            filter_subject: stream.stream_type_filter(users::STREAM_TYPE),
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
                    tracing::warn!(error = %error, stream = %self.stream.name, "events consumer unavailable; retrying");
                    tokio::select! {
                        _ = shutdown.cancelled() => {}
                        _ = tokio::time::sleep(backoff.next()) => {}
                    }
                }
            }
        }
        tracing::info!("users projection stopped");
    }

    /// One subscription: returns when cancelled or when the message stream breaks.
    async fn consume(&self, shutdown: &CancellationToken) -> Result<(), async_nats::Error> {
        let stream = eventstore::ensure_stream(&self.jetstream, &self.stream).await?;
        let consumer = stream
            .get_or_create_consumer(users::CONSUMER, Self::consumer_config(&self.stream))
            .await?;
        let mut messages = consumer
            .stream()
            .max_messages_per_batch(self.concurrency * 4)
            .heartbeat(Duration::from_secs(5))
            .messages()
            .await?;
        tracing::info!(consumer = users::CONSUMER, "users projection consuming");
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
        let envelope = match decode(&message.payload) {
            Ok(envelope) => envelope,
            Err(reason) => {
                tracing::warn!(nats.subject = %message.subject, reason, "poison message acknowledged");
                acknowledge(&message, AckKind::Ack).await;
                return;
            }
        };
        let span = tracing::info_span!(
            "project",
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
        match users::project_event(&self.pool, envelope).await {
            Ok(projected) => {
                self.failures.store(0, Ordering::Relaxed);
                match projected.outcome {
                    Outcome::Applied { gap_filled } if gap_filled > 0 => {
                        tracing::info!(gap_filled, "missing events applied from the store first");
                    }
                    Outcome::Applied { .. } => tracing::debug!("event applied"),
                    Outcome::Duplicate => tracing::debug!("duplicate event skipped"),
                }
                if let Some(row) = &projected.row {
                    self.write_cache(row).await;
                }
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

    async fn write_cache(&self, row: &UserRow) {
        let Some(mut conn) = self.redis.get() else {
            tracing::warn!("redis not connected; user document not written");
            return;
        };
        match tokio::time::timeout(
            REDIS_TIMEOUT,
            users::cache::write_row(&self.cache, &mut conn, row),
        )
        .await
        {
            Ok(Ok(_)) => {}
            Ok(Err(error)) => tracing::warn!(error = %error, "redis write failed; user document stale"),
            Err(_) => tracing::warn!("redis write timed out; user document stale"),
        }
    }
}

/// Reads a message as a user event envelope, or says why it is poison.
fn decode(payload: &[u8]) -> Result<EventEnvelope, &'static str> {
    let envelope: EventEnvelope = serde_json::from_slice(payload).map_err(|_| "not an event envelope")?;
    if envelope.stream_type != users::STREAM_TYPE {
        return Err("not a user event");
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

/// Delay before redelivering a message that failed `delivered` times: exponential from
/// 100 ms, capped at 30 s, with ±20 % jitter so replicas do not retry in lockstep.
fn nak_delay(delivered: i64) -> Duration {
    let exponent = delivered.clamp(1, 20) as u32 - 1;
    let base = Duration::from_millis(100).saturating_mul(1 << exponent.min(9));
    let capped = base.min(Duration::from_secs(30));
    capped.mul_f64(rand::rng().random_range(0.8..1.2))
}

/// Exponential backoff for reconnecting.
struct Backoff {
    first: Duration,
    max: Duration,
    current: Duration,
}

impl Backoff {
    fn new(first: Duration, max: Duration) -> Self {
        Self {
            first,
            max,
            current: first,
        }
    }

    fn next(&mut self) -> Duration {
        let delay = self.current;
        self.current = (self.current * 2).min(self.max);
        delay
    }

    fn reset(&mut self) {
        self.current = self.first;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delays_grow_and_stay_bounded() {
        assert!(nak_delay(1) <= Duration::from_millis(120));
        assert!(nak_delay(4) >= Duration::from_millis(640));
        assert!(nak_delay(1000) <= Duration::from_secs(36));
    }

    #[test]
    fn messages_that_are_not_user_envelopes_are_poison() {
        assert!(decode(b"not json").is_err());
        assert!(decode(br#"{"id": 1}"#).is_err());
    }
}
