//! The durable JetStream pull consumer that feeds the welcome email, shared by every
//! workers replica (competing consumers), with graceful shutdown.

use crate::delivery::{Delivery, Outcome};
use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, PullConsumer, pull};
use async_nats::jetstream::{self, AckKind};
use eventstore::{StreamSettings, ensure_stream};
use futures::StreamExt;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// Durable name of the welcome-email consumer.
pub const WELCOME_CONSUMER: &str = "workers-welcome-email";

/// Every consumer the workers own, for the operator endpoint.
pub const OWNED_CONSUMERS: [&str; 1] = [WELCOME_CONSUMER];

/// How long JetStream waits for an ack before redelivering.
pub const ACK_WAIT: Duration = Duration::from_secs(60);

/// While a message is being handled, JetStream is told every this often that work goes on.
const PROGRESS_EVERY: Duration = Duration::from_secs(20);

/// The consumer configuration: one filter subject (NATS 2.9), explicit acks, unlimited
/// deliveries (the workers dead-letter by themselves).
pub fn consumer_config(stream: &StreamSettings, event_type: &str) -> pull::Config {
    pull::Config {
        durable_name: Some(WELCOME_CONSUMER.to_owned()),
        description: Some("workers: welcome email on user.registered".to_owned()),
        filter_subject: stream.subject(event_type),
        deliver_policy: DeliverPolicy::All,
        ack_policy: AckPolicy::Explicit,
        ack_wait: ACK_WAIT,
        max_deliver: -1,
        ..Default::default()
    }
}

/// Pulls messages and hands them to a [`Delivery`].
pub struct ConsumerWorker {
    jetstream: jetstream::Context,
    stream: StreamSettings,
    config: pull::Config,
    delivery: Arc<Delivery>,
    concurrency: usize,
}

impl ConsumerWorker {
    /// A worker for the consumer `config` on `stream`, handling up to `concurrency`
    /// messages at once.
    pub fn new(
        jetstream: jetstream::Context,
        stream: StreamSettings,
        config: pull::Config,
        delivery: Delivery,
        concurrency: usize,
    ) -> Self {
        Self {
            jetstream,
            stream,
            config,
            delivery: Arc::new(delivery),
            concurrency: concurrency.max(1),
        }
    }

    /// Consumes until `shutdown` is cancelled, then lets the messages in flight finish.
    /// Messages received but not started are not acked; JetStream redelivers them.
    pub async fn run(self, shutdown: CancellationToken) {
        let permits = Arc::new(Semaphore::new(self.concurrency));
        let mut tasks = JoinSet::new();
        let mut backoff = Duration::from_millis(100);
        'subscribe: while !shutdown.is_cancelled() {
            let mut messages = match self.subscribe().await {
                Ok(messages) => messages,
                Err(error) => {
                    tracing::warn!(error = %error, stream = %self.stream.name, "events stream not reachable yet");
                    if sleep_or_shutdown(backoff, &shutdown).await {
                        break;
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    continue;
                }
            };
            loop {
                let permit = tokio::select! {
                    biased;
                    _ = shutdown.cancelled() => break 'subscribe,
                    permit = permits.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
                };
                let next = tokio::select! {
                    biased;
                    _ = shutdown.cancelled() => break 'subscribe,
                    next = messages.next() => next,
                };
                match next {
                    Some(Ok(message)) => {
                        backoff = Duration::from_millis(100);
                        let delivery = self.delivery.clone();
                        tasks.spawn(async move {
                            settle(&delivery, message).await;
                            drop(permit);
                        });
                    }
                    Some(Err(error)) => {
                        tracing::warn!(error = %error, "consumer stream failed; subscribing again");
                        if sleep_or_shutdown(backoff, &shutdown).await {
                            break 'subscribe;
                        }
                        backoff = (backoff * 2).min(Duration::from_secs(5));
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
        tracing::info!(consumer = WELCOME_CONSUMER, "consumer stopped");
    }

    async fn subscribe(&self) -> Result<pull::Stream, async_nats::Error> {
        let stream = ensure_stream(&self.jetstream, &self.stream).await?;
        let consumer: PullConsumer = stream.create_consumer(self.config.clone()).await?;
        let messages = consumer
            .stream()
            .max_messages_per_batch(self.concurrency)
            .messages()
            .await?;
        Ok(messages)
    }
}

/// Handles one message and acks or NAKs it, telling JetStream about progress meanwhile.
async fn settle(delivery: &Delivery, message: jetstream::Message) {
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

async fn sleep_or_shutdown(duration: Duration, shutdown: &CancellationToken) -> bool {
    tokio::select! {
        _ = shutdown.cancelled() => true,
        _ = tokio::time::sleep(duration) => false,
    }
}
