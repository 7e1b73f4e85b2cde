//! The durable JetStream pull consumers that feed the side effects, one per effect and
//! event type ([`crate::registry::Subscription`]), each shared by every workers replica
//! (competing consumers), with graceful shutdown.

use crate::delivery::{Delivery, Outcome};
use crate::registry::Subscription;
use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, PullConsumer, pull};
use async_nats::jetstream::{self, AckKind};
use eventstore::{StreamSettings, ensure_stream};
use futures::StreamExt;
use futures::future::BoxFuture;
use runtime::backoff::Policy;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// How long JetStream waits for an ack before redelivering.
pub const ACK_WAIT: Duration = Duration::from_secs(60);

/// While a message is being handled, JetStream is told every this often that work goes on.
const PROGRESS_EVERY: Duration = Duration::from_secs(20);

/// How long a consumer waits before subscribing again while the stream is unreachable.
pub const RESUBSCRIBE: Policy = Policy::new(Duration::from_millis(100), Duration::from_secs(5));

/// The consumer configuration of `subscription`: one filter subject (NATS 2.9), explicit
/// acks, unlimited deliveries (the workers dead-letter by themselves).
pub fn consumer_config(stream: &StreamSettings, subscription: &Subscription) -> pull::Config {
    pull::Config {
        durable_name: Some(subscription.consumer.clone()),
        description: Some(format!(
            "workers: {} on {}",
            subscription.effect, subscription.event_type
        )),
        filter_subject: stream.subject(subscription.event_type),
        deliver_policy: DeliverPolicy::All,
        ack_policy: AckPolicy::Explicit,
        ack_wait: ACK_WAIT,
        max_deliver: -1,
        ..Default::default()
    }
}

/// What a consumer does with each message it reads: a side effect's [`Delivery`], or
/// the webhook fan-out.
pub trait Handler: Send + Sync + 'static {
    /// The `effect` label of `side_effects_total`.
    fn name(&self) -> &'static str;

    /// Handles one raw message; `attempt` is its delivery count (from 1).
    fn handle<'a>(&'a self, subject: &'a str, payload: &'a [u8], attempt: u32) -> BoxFuture<'a, Outcome>;
}

impl Handler for Delivery {
    fn name(&self) -> &'static str {
        self.effect_name()
    }

    fn handle<'a>(&'a self, subject: &'a str, payload: &'a [u8], attempt: u32) -> BoxFuture<'a, Outcome> {
        Box::pin(Delivery::handle(self, subject, payload, attempt))
    }
}

/// Pulls messages and hands them to a [`Handler`].
pub struct ConsumerWorker {
    jetstream: jetstream::Context,
    stream: StreamSettings,
    config: pull::Config,
    delivery: Arc<dyn Handler>,
    permits: Arc<Semaphore>,
    batch: usize,
}

impl ConsumerWorker {
    /// A worker for the consumer `config` on `stream`. Each message it handles holds one
    /// of `permits`, which the workers of one process share, so that the process handles
    /// at most that many messages at once whatever consumer they come from. It pulls
    /// `batch` messages at a time.
    pub fn new(
        jetstream: jetstream::Context,
        stream: StreamSettings,
        config: pull::Config,
        delivery: impl Handler,
        permits: Arc<Semaphore>,
        batch: usize,
    ) -> Self {
        Self {
            jetstream,
            stream,
            config,
            delivery: Arc::new(delivery),
            permits,
            batch: batch.max(1),
        }
    }

    /// The durable name of its consumer.
    pub fn consumer(&self) -> &str {
        self.config.durable_name.as_deref().unwrap_or("")
    }

    /// Consumes until `shutdown` is cancelled, then lets the messages in flight finish.
    /// Messages received but not started are not acked; JetStream redelivers them.
    pub async fn run(self, shutdown: CancellationToken) {
        let permits = self.permits.clone();
        let mut tasks = JoinSet::new();
        let mut backoff = RESUBSCRIBE.start();
        'subscribe: while !shutdown.is_cancelled() {
            let mut messages = match self.subscribe().await {
                Ok(messages) => messages,
                Err(error) => {
                    tracing::warn!(
                        error = %error,
                        stream = %self.stream.name,
                        consumer = self.consumer(),
                        "events stream not reachable yet"
                    );
                    if backoff.wait(&shutdown).await {
                        break;
                    }
                    continue;
                }
            };
            loop {
                let next = tokio::select! {
                    biased;
                    _ = shutdown.cancelled() => break 'subscribe,
                    next = messages.next() => next,
                };
                match next {
                    Some(Ok(message)) => {
                        backoff.reset();
                        // The permit is taken once a message is here: an idle consumer
                        // must not hold one that another consumer of the process needs.
                        let permit = tokio::select! {
                            biased;
                            _ = shutdown.cancelled() => break 'subscribe,
                            permit = permits.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
                        };
                        let delivery = self.delivery.clone();
                        tasks.spawn(async move {
                            settle(delivery.as_ref(), message).await;
                            drop(permit);
                        });
                    }
                    Some(Err(error)) => {
                        tracing::warn!(error = %error, consumer = self.consumer(), "consumer stream failed; subscribing again");
                        if backoff.wait(&shutdown).await {
                            break 'subscribe;
                        }
                        continue 'subscribe;
                    }
                    None => continue 'subscribe,
                }
                while let Some(finished) = tasks.try_join_next() {
                    log_panic(finished);
                }
            }
        }
        while let Some(finished) = tasks.join_next().await {
            log_panic(finished);
        }
        tracing::info!(consumer = self.consumer(), "consumer stopped");
    }

    async fn subscribe(&self) -> Result<pull::Stream, async_nats::Error> {
        let stream = ensure_stream(&self.jetstream, &self.stream).await?;
        let consumer: PullConsumer = stream.create_consumer(self.config.clone()).await?;
        let messages = consumer
            .stream()
            .max_messages_per_batch(self.batch)
            .messages()
            .await?;
        Ok(messages)
    }
}

/// Handles one message and acks or NAKs it, telling JetStream about progress meanwhile.
async fn settle(delivery: &dyn Handler, message: jetstream::Message) {
    let info = message.info().ok();
    let attempt = info.as_ref().map_or(1, |i| i.delivered.max(1) as u32);
    let sequence = info.as_ref().map_or(0, |i| i.stream_sequence);
    let span = tracing::info_span!("delivery", nats.stream_sequence = sequence, attempt);
    async {
        let work = delivery.handle(message.subject.as_str(), &message.payload, attempt);
        tokio::pin!(work);
        let mut progress =
            tokio::time::interval_at(tokio::time::Instant::now() + PROGRESS_EVERY, PROGRESS_EVERY);
        let outcome = loop {
            tokio::select! {
                outcome = &mut work => break outcome,
                _ = progress.tick() => {
                    if let Err(error) = message.ack_with(AckKind::Progress).await {
                        tracing::warn!(error = %error, "could not extend the ack deadline");
                    }
                }
            }
        };
        metrics::counter!(
            "side_effects_total",
            "effect" => delivery.name(),
            "outcome" => outcome.label()
        )
        .increment(1);
        let reply = match outcome {
            Outcome::Retry(delay) => AckKind::Nak(Some(delay)),
            _ => AckKind::Ack,
        };
        if let Err(error) = message.ack_with(reply).await {
            tracing::warn!(error = %error, "could not settle the message; JetStream will redeliver it");
        }
    }
    .instrument(span)
    .await;
}

fn log_panic(finished: Result<(), tokio::task::JoinError>) {
    if let Err(error) = finished {
        tracing::error!(error = %error, "message handler panicked; JetStream will redeliver the message");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_consumer_filters_on_the_one_subject_of_its_event_type() {
        let stream = StreamSettings {
            name: "EVENTS".into(),
            subject_prefix: "events".into(),
            duplicate_window: Duration::from_secs(120),
        };
        let subscription = Subscription {
            consumer: "workers-order-confirmation".into(),
            event_type: "order.placed",
            effect: "order_confirmation",
        };
        let config = consumer_config(&stream, &subscription);
        assert_eq!(config.durable_name.as_deref(), Some("workers-order-confirmation"));
        assert_eq!(config.filter_subject, "events.order.placed");
        assert_eq!(config.ack_policy, AckPolicy::Explicit);
        assert_eq!(config.max_deliver, -1);
    }

    #[test]
    fn resubscribing_backs_off_from_a_tenth_of_a_second_up_to_five_seconds() {
        let mut backoff = RESUBSCRIBE.start();
        let first = backoff.next_delay();
        assert!(first >= Duration::from_millis(100) && first < Duration::from_millis(200));
        assert!((0..20).all(|_| backoff.next_delay() <= Duration::from_secs(5)));
        assert!(backoff.next_delay() >= Duration::from_secs(5) / 2);
    }
}
