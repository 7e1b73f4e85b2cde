//! The JetStream side of the live projections: per projection a durable pull consumer
//! shared by every replica, messages projected in batches (one Postgres transaction per
//! batch), acknowledged only after their commit.
//!
//! * a batch is what arrived: up to [`Batching::size`] messages, gathered for at most
//!   [`BATCH_LINGER`] after the first, so a lone event is not kept waiting;
//! * a message that is not an envelope of the projection's stream type, or an event ahead
//!   of its row that the event store does not hold, is poison: logged and acknowledged;
//! * a delivery that fails alone (its gap is not in the store yet) is negatively
//!   acknowledged with a growing delay, and the rest of its batch commits;
//! * when the batch's transaction fails, nothing of it was written: if Postgres is away
//!   every message is negatively acknowledged with a delay, otherwise the batch is
//!   projected again one message per transaction so that one bad message cannot hold
//!   the others back; this replica slows down while failures repeat;
//! * Redis is written after the commit and before the acks; a Redis failure is logged and
//!   owed to the healer (see `heal`), it does not stop the projection.

use crate::ProjectionError;
use crate::model::{self, Delivery, Outcome, Projected, ReadModel};
use crate::retry::{RECONNECT, SLOWDOWN, nak_delay};
use async_nats::jetstream::{self, AckKind, consumer::pull};
use eventstore::{EventEnvelope, StreamSettings};
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use runtime::backoff::{Backoff, sleep_or_cancelled};
use sqlx::PgPool;
use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// How long JetStream waits for an ack before redelivering.
pub const ACK_WAIT: Duration = Duration::from_secs(30);

/// Messages delivered and not yet acknowledged, at most, for a consumer this projector
/// creates: well above what one replica pulls at once, so the messages a crashed replica
/// held (redelivered after [`ACK_WAIT`]) do not hold the others back meanwhile.
pub const MAX_ACK_PENDING: i64 = 20_000;

/// How long a batch waits for more messages after its first one.
pub const BATCH_LINGER: Duration = Duration::from_millis(1);

/// The row type of a live projection.
pub type RowOf<P> = <<P as LiveProjection>::Model as ReadModel>::Row;

/// One delivery of a committed batch, as the projection sees it after the commit.
#[derive(Debug)]
pub struct Delivered<'a, R> {
    /// The event delivered.
    pub envelope: &'a EventEnvelope,
    /// What projecting it did, with its stream's row after the commit.
    pub projected: &'a Projected<R>,
}

/// The Redis key space the documents of a batch go to: that of the generation its
/// transaction wrote (one transaction per batch).
pub fn keyspace_of<R>(batch: &[Delivered<'_, R>]) -> i64 {
    batch
        .first()
        .map_or(readmodels::cache::Keyspace::FIRST, |delivered| {
            delivered.projected.keyspace
        })
}

/// A projection as the live consumer runs it: its read model, its durable consumer, and
/// what it refreshes in Redis after each commit. Registered once, in [`crate::registry`].
pub trait LiveProjection: Send + Sync + 'static {
    /// The Postgres read model.
    type Model: ReadModel;
    /// Name in logs and in `GET /api/v1/projections`.
    const NAME: &'static str;
    /// Durable JetStream consumer, shared by every replica.
    const CONSUMER: &'static str;

    /// The projection, from what every projection may use.
    fn build(services: &crate::registry::Services) -> Self;

    /// Refreshes Redis after a batch was committed, duplicates included (which heals a
    /// write lost to a crash between commit and ack). Failures are logged and owed, never
    /// returned: Redis can always be rebuilt from Postgres.
    fn after_commit(&self, batch: &[Delivered<'_, RowOf<Self>>]) -> impl Future<Output = ()> + Send;
}

/// How the live consumers gather and run their batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Batching {
    /// Messages per batch at most.
    pub size: usize,
    /// Batches in flight at once per consumer.
    pub in_flight: usize,
}

/// The live consumer of one projection.
pub struct Consumer<P> {
    pool: PgPool,
    jetstream: jetstream::Context,
    stream: StreamSettings,
    projection: P,
    batching: Batching,
    /// The pauses of a run of failed batches, to slow down while Postgres is away.
    slowdown: Mutex<Backoff>,
}

impl<P: LiveProjection> Consumer<P> {
    /// A consumer of `stream` writing to Postgres and, through the projection, to Redis.
    pub fn new(
        pool: PgPool,
        jetstream: jetstream::Context,
        stream: StreamSettings,
        projection: P,
        batching: Batching,
    ) -> Self {
        Self {
            pool,
            jetstream,
            stream,
            projection,
            batching: Batching {
                size: batching.size.max(1),
                in_flight: batching.in_flight.max(1),
            },
            slowdown: Mutex::new(SLOWDOWN.start()),
        }
    }

    /// The durable consumer's configuration.
    pub fn consumer_config(stream: &StreamSettings) -> pull::Config {
        pull::Config {
            durable_name: Some(P::CONSUMER.to_owned()),
            filter_subject: stream.stream_type_filter(P::Model::STREAM_TYPE),
            ack_policy: jetstream::consumer::AckPolicy::Explicit,
            ack_wait: ACK_WAIT,
            max_ack_pending: MAX_ACK_PENDING,
            deliver_policy: jetstream::consumer::DeliverPolicy::All,
            ..Default::default()
        }
    }

    /// Projects until `shutdown` is cancelled, then finishes the batches in flight.
    pub async fn run(&self, shutdown: CancellationToken) {
        let mut backoff = RECONNECT.start();
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
                    backoff.wait(&shutdown).await;
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
            .max_messages_per_batch(self.batching.size)
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
                next = messages.next(), if in_flight.len() < self.batching.in_flight => match next {
                    Some(Ok(first)) => {
                        let (batch, broken) = self.gather(first, &mut messages).await;
                        in_flight.push(self.handle(batch, shutdown));
                        if let Some(error) = broken {
                            break Err(error);
                        }
                    }
                    Some(Err(error)) => break Err(error.into()),
                    None => break Ok(()),
                },
            }
        };
        while in_flight.next().await.is_some() {}
        result
    }

    /// The batch that starts with `first`: what else arrives within the linger, up to the
    /// batch size; and the error, if the message stream broke meanwhile.
    async fn gather(
        &self,
        first: jetstream::Message,
        messages: &mut pull::Stream,
    ) -> (Vec<jetstream::Message>, Option<async_nats::Error>) {
        let mut batch = vec![first];
        let deadline = tokio::time::Instant::now() + BATCH_LINGER;
        while batch.len() < self.batching.size {
            match tokio::time::timeout_at(deadline, messages.next()).await {
                Ok(Some(Ok(message))) => batch.push(message),
                Ok(Some(Err(error))) => return (batch, Some(error.into())),
                Ok(None) | Err(_) => break,
            }
        }
        (batch, None)
    }

    /// Projects one batch: poison acknowledged, the rest in one transaction.
    async fn handle(&self, batch: Vec<jetstream::Message>, shutdown: &CancellationToken) {
        let mut messages = Vec::with_capacity(batch.len());
        let mut envelopes = Vec::with_capacity(batch.len());
        for message in batch {
            match decode(&message.payload, P::Model::STREAM_TYPE) {
                Ok(envelope) => {
                    messages.push(message);
                    envelopes.push(envelope);
                }
                Err(reason) => {
                    tracing::warn!(nats.subject = %message.subject, reason, "poison message acknowledged");
                    acknowledge(&message, AckKind::Ack).await;
                }
            }
        }
        if envelopes.is_empty() {
            return;
        }
        let span = tracing::info_span!("project", projection = P::NAME, batch.size = envelopes.len());
        self.project(&messages, &envelopes, shutdown)
            .instrument(span)
            .await;
    }

    async fn project(
        &self,
        messages: &[jetstream::Message],
        envelopes: &[EventEnvelope],
        shutdown: &CancellationToken,
    ) {
        let error = match model::project_batch::<P::Model>(&self.pool, envelopes).await {
            Ok(results) => return self.settle(messages, envelopes, results, shutdown).await,
            Err(error) => error,
        };
        if unavailable(&error) || envelopes.len() == 1 {
            tracing::warn!(error = %error, "batch not projected; will retry");
            for message in messages {
                nak(message).await;
            }
            self.slow_down(shutdown).await;
            return;
        }
        tracing::warn!(error = %error, "batch not projected; projecting its messages one by one");
        for (message, envelope) in messages.iter().zip(envelopes) {
            let result = model::project_event::<P::Model>(&self.pool, envelope).await;
            self.settle(
                std::slice::from_ref(message),
                std::slice::from_ref(envelope),
                vec![result],
                shutdown,
            )
            .await;
        }
    }

    /// After a commit: Redis, then an ack for every delivery projected or poison, and a
    /// delayed redelivery for every one that failed.
    async fn settle(
        &self,
        messages: &[jetstream::Message],
        envelopes: &[EventEnvelope],
        results: Vec<Delivery<RowOf<P>>>,
        shutdown: &CancellationToken,
    ) {
        let delivered: Vec<Delivered<'_, RowOf<P>>> = envelopes
            .iter()
            .zip(&results)
            .filter_map(|(envelope, result)| {
                let projected = result.as_ref().ok()?;
                log_outcome(envelope, &projected.outcome);
                Some(Delivered { envelope, projected })
            })
            .collect();
        if !delivered.is_empty() {
            self.projection.after_commit(&delivered).await;
        }
        let applied = delivered.iter().filter_map(|d| match d.projected.outcome {
            Outcome::Applied { gap_filled } => Some((gap_filled as u64 + 1, d.envelope.occurred_at)),
            Outcome::Duplicate => None,
        });
        let (count, newest) = applied.fold((0, None), |(count, newest), (events, at)| {
            (count + events, newest.max(Some(at)))
        });
        crate::progress::applied(P::NAME, count, newest);
        if let Some(oldest) = envelopes.iter().map(|e| e.occurred_at).min() {
            tracing::debug!(
                projection = P::NAME,
                batch.size = envelopes.len(),
                lag_ms = eventstore::lag_ms(oldest),
                "batch projected"
            );
        }
        let mut failed = false;
        let mut gap = false;
        for ((message, envelope), result) in messages.iter().zip(envelopes).zip(&results) {
            match result {
                Ok(_) => acknowledge(message, AckKind::Ack).await,
                Err(error @ ProjectionError::NotInStore(_)) => {
                    envelope
                        .log_span()
                        .in_scope(|| tracing::warn!(error = %error, "poison message acknowledged"));
                    acknowledge(message, AckKind::Ack).await;
                }
                Err(error) => {
                    if let ProjectionError::MissingEvents {
                        stream_id,
                        after,
                        upto,
                    } = error
                    {
                        crate::progress::held_at_gap(P::NAME, *stream_id, *after, *upto);
                        gap = true;
                    }
                    envelope.log_span().in_scope(|| {
                        tracing::warn!(
                            error = %error,
                            stream.id = %envelope.stream_id,
                            stream.version = envelope.stream_version,
                            "event not projected; will retry"
                        );
                    });
                    nak(message).await;
                    failed = true;
                }
            }
        }
        if !gap {
            crate::progress::gap_closed(P::NAME);
        }
        if failed {
            self.slow_down(shutdown).await;
        } else {
            self.slowdown().reset();
        }
    }

    /// Pauses this replica, longer while failures repeat, instead of spinning.
    async fn slow_down(&self, shutdown: &CancellationToken) {
        let pause = self.slowdown().next_delay();
        sleep_or_cancelled(pause, shutdown).await;
    }

    fn slowdown(&self) -> std::sync::MutexGuard<'_, Backoff> {
        self.slowdown.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Whether a failed transaction says Postgres is away (rather than something in the batch).
fn unavailable(error: &sqlx::Error) -> bool {
    matches!(
        error,
        sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Protocol(_)
            | sqlx::Error::WorkerCrashed
    )
}

fn log_outcome(envelope: &EventEnvelope, outcome: &Outcome) {
    let _event = envelope.log_span().entered();
    match outcome {
        Outcome::Applied { gap_filled } if *gap_filled > 0 => tracing::info!(
            gap_filled,
            stream.id = %envelope.stream_id,
            "missing events applied from the store first"
        ),
        Outcome::Applied { .. } => tracing::debug!("event applied"),
        Outcome::Duplicate => tracing::debug!("duplicate event skipped"),
    }
}

/// Runs one Redis write after a commit (bounded by the Redis handle's call deadline);
/// whether it was written. A failure is logged as leaving `what` stale until healed.
pub async fn redis_write<T>(what: &'static str, write: impl Future<Output = redis::RedisResult<T>>) -> bool {
    match write.await {
        Ok(_) => true,
        Err(error) => {
            tracing::warn!(error = %error, redis.target = what, "redis write failed; stale until healed");
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

/// Asks for a redelivery after a delay that grows with the message's deliveries.
async fn nak(message: &jetstream::Message) {
    let delivered = message.info().map(|info| info.delivered).unwrap_or(1);
    acknowledge(message, AckKind::Nak(Some(nak_delay(delivered)))).await;
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

    #[test]
    fn only_connection_failures_count_as_postgres_away() {
        assert!(unavailable(&sqlx::Error::PoolTimedOut));
        assert!(!unavailable(&sqlx::Error::RowNotFound));
    }
}
