//! Webhook deliveries, in two parts that never wait for each other or for the emails:
//!
//! * [`FanOut`]: a durable consumer of every event (`workers-webhooks`, on
//!   `<prefix>.>`) that turns each event into one pending delivery per endpoint that
//!   takes it, in one statement, and wakes the dispatcher.
//! * [`Dispatcher`]: claims due deliveries from Postgres (so every replica shares the
//!   work, and a delivery survives a restart), POSTs each signed
//!   ([`webhooks::signing`]) with a deadline, and records the attempt: delivered, tried
//!   again after a jittered backoff, or dead after the last attempt; an endpoint that
//!   keeps failing is disabled with the reason. At most `WEBHOOK_PER_ENDPOINT` attempts
//!   to one endpoint are in flight per process, so a slow or failing endpoint cannot
//!   hold up the others.
//!
//! Deliveries only go to public addresses unless `WEBHOOK_ALLOW_PRIVATE_NETWORKS` is
//! set ([`crate::egress`]); a refused one is a failed attempt (`address not allowed: …`).
//!
//! Deliveries are at least once: a worker that dies after the endpoint answered and
//! before the attempt is recorded leaves it to be sent again when its claim runs out.
//! `Webhook-Id` (the event id) lets receivers drop the copy.

use crate::consumer::Handler;
use crate::delivery::Outcome;
use crate::egress;
use crate::retry::RetryPolicy;
use crate::settings::WebhookSettings;
use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, pull};
use chrono::Utc;
use eventstore::{EventEnvelope, StreamSettings};
use futures::future::BoxFuture;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use uuid::Uuid;
use webhooks::signing;
use webhooks::{AttemptResult, Claimed, Recorded, Webhooks};

/// The durable consumer that fans events out into deliveries.
pub const CONSUMER: &str = "workers-webhooks";

/// How long an attempt's outcome is recorded again while Postgres is away, before the
/// claim is left to run out (and the delivery made again).
const RECORD_WAIT: Duration = Duration::from_secs(30);

/// The consumer of every event for the fan-out: all subjects under the prefix, from the
/// start of the stream (only endpoints registered before an event take it).
pub fn consumer_config(stream: &StreamSettings) -> pull::Config {
    pull::Config {
        durable_name: Some(CONSUMER.to_owned()),
        description: Some("workers: webhook deliveries of every event".to_owned()),
        filter_subject: format!("{}.>", stream.subject_prefix),
        deliver_policy: DeliverPolicy::All,
        ack_policy: AckPolicy::Explicit,
        ack_wait: crate::consumer::ACK_WAIT,
        max_deliver: -1,
        ..Default::default()
    }
}

/// Turns each event into pending deliveries.
pub struct FanOut {
    webhooks: Webhooks,
    retry: RetryPolicy,
    wake: Arc<Notify>,
}

impl FanOut {
    /// Writes deliveries into `webhooks`, waking `wake` when it made some; Postgres
    /// away is retried after `retry`'s backoff, never given up.
    pub fn new(webhooks: Webhooks, retry: RetryPolicy, wake: Arc<Notify>) -> Self {
        Self {
            webhooks,
            retry,
            wake,
        }
    }

    async fn fan_out(&self, payload: &[u8], attempt: u32) -> Outcome {
        let Ok(event) = serde_json::from_slice::<EventEnvelope>(payload) else {
            tracing::warn!("message is not an event envelope; no webhook deliveries for it");
            return Outcome::Dropped;
        };
        match self.webhooks.fan_out(&event).await {
            Ok(0) => Outcome::Done,
            Ok(made) => {
                tracing::debug!(event.id = %event.id, deliveries = made, "webhook deliveries queued");
                self.wake.notify_one();
                Outcome::Done
            }
            Err(error) => {
                tracing::warn!(error = %error, event.id = %event.id, "webhook deliveries not queued yet; will retry");
                Outcome::Retry(self.retry.delay(attempt))
            }
        }
    }
}

impl Handler for FanOut {
    fn name(&self) -> &'static str {
        "webhooks"
    }

    fn handle<'a>(&'a self, _subject: &'a str, payload: &'a [u8], attempt: u32) -> BoxFuture<'a, Outcome> {
        Box::pin(self.fan_out(payload, attempt))
    }
}

/// Sends due deliveries.
pub struct Dispatcher {
    webhooks: Webhooks,
    client: reqwest::Client,
    settings: WebhookSettings,
    wake: Arc<Notify>,
}

impl Dispatcher {
    /// A dispatcher over `webhooks`, woken early by `wake`, connecting only where
    /// `settings.networks` allows ([`crate::egress`]).
    pub fn new(webhooks: Webhooks, settings: WebhookSettings, wake: Arc<Notify>) -> reqwest::Result<Self> {
        let client = egress::client(settings.networks, settings.timeout)?;
        Ok(Self {
            webhooks,
            client,
            settings,
            wake,
        })
    }

    /// How long a claim lasts: an attempt's deadline and the time to record it.
    fn lease(&self) -> Duration {
        self.settings.timeout + RECORD_WAIT + Duration::from_secs(5)
    }

    /// Claims and sends until `shutdown` is cancelled; attempts in flight then finish
    /// (each within its deadline).
    pub async fn run(self, shutdown: CancellationToken) {
        let this = Arc::new(self);
        let mut tasks: JoinSet<Uuid> = JoinSet::new();
        let mut in_flight: HashMap<Uuid, u32> = HashMap::new();
        let mut backoff = crate::consumer::RESUBSCRIBE.start();
        let capacity = this.settings.concurrency.max(1) as usize;
        while !shutdown.is_cancelled() {
            let free = capacity.saturating_sub(tasks.len());
            let mut claimed_any = false;
            if free > 0 {
                let running: Vec<(Uuid, u32)> = in_flight.iter().map(|(id, count)| (*id, *count)).collect();
                match this
                    .webhooks
                    .claim(free as u32, this.settings.per_endpoint, &running, this.lease())
                    .await
                {
                    Ok(claimed) => {
                        backoff.reset();
                        claimed_any = claimed.len() == free;
                        for delivery in claimed {
                            *in_flight.entry(delivery.webhook_id).or_default() += 1;
                            let this = this.clone();
                            tasks.spawn(async move {
                                let webhook_id = delivery.webhook_id;
                                this.attempt(delivery).await;
                                webhook_id
                            });
                        }
                    }
                    Err(error) => {
                        tracing::warn!(error = %error, "webhook deliveries not claimed; trying again shortly");
                        if backoff.wait(&shutdown).await {
                            break;
                        }
                        continue;
                    }
                }
            }
            if claimed_any {
                // There may be more due right now: claim again once a slot frees.
                if let Some(done) = tasks.join_next().await {
                    settle(&mut in_flight, done);
                }
                continue;
            }
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                Some(done) = tasks.join_next(), if !tasks.is_empty() => settle(&mut in_flight, done),
                _ = this.wake.notified() => {}
                _ = tokio::time::sleep(this.settings.poll) => {}
            }
        }
        while let Some(done) = tasks.join_next().await {
            settle(&mut in_flight, done);
        }
        tracing::info!("webhook dispatcher stopped");
    }

    /// One attempt of one delivery, recorded, in a span naming the event and its
    /// correlation id.
    async fn attempt(&self, claimed: Claimed) {
        let span = tracing::info_span!(
            "webhook_delivery",
            webhook.id = %claimed.webhook_id,
            delivery.id = %claimed.delivery_id,
            attempt = claimed.attempt,
            eventId = claimed.event.as_ref().map(|e| e.id.to_string()),
            correlationId = claimed.event.as_ref().and_then(|e| e.correlation_id.clone()),
        );
        self.attempt_once(claimed).instrument(span).await
    }

    async fn attempt_once(&self, claimed: Claimed) {
        let result = match &claimed.event {
            Some(event) => self.send(&claimed, event).await,
            None => AttemptResult {
                started_at: Utc::now(),
                duration: Duration::ZERO,
                status_code: None,
                error: Some("the event is not in the event store".to_owned()),
                retry_after: None,
            },
        };
        metrics::histogram!("webhook_delivery_duration_seconds").record(result.duration.as_secs_f64());
        let outcome = self.record(&claimed, &result).await;
        let label = match &outcome {
            Some(recorded) => match recorded.recorded {
                Recorded::Delivered => "delivered",
                Recorded::Retrying(_) => "retry",
                Recorded::Dead => "dead",
                Recorded::Superseded => "superseded",
            },
            None => "unrecorded",
        };
        metrics::counter!("webhook_deliveries_total", "outcome" => label).increment(1);
        let Some(outcome) = outcome else {
            tracing::error!(
                "webhook attempt not recorded; the delivery will be made again when its claim runs out"
            );
            return;
        };
        match outcome.recorded {
            Recorded::Delivered => tracing::info!(
                status = result.status_code,
                duration_ms = result.duration.as_millis() as u64,
                "webhook delivered"
            ),
            Recorded::Retrying(delay) => tracing::info!(
                error = result.error.as_deref(),
                retry.delay_ms = delay.as_millis() as u64,
                "webhook delivery failed; will retry"
            ),
            Recorded::Dead => tracing::warn!(
                error = result.error.as_deref(),
                "webhook delivery failed on its last attempt; it is dead now"
            ),
            Recorded::Superseded => {
                tracing::info!("webhook delivery changed meanwhile; this attempt is not counted")
            }
        }
        if let Some(reason) = outcome.disabled {
            tracing::warn!(reason, "webhook endpoint disabled");
        }
    }

    /// POSTs the event, signed, within the deadline.
    async fn send(&self, claimed: &Claimed, event: &EventEnvelope) -> AttemptResult {
        let started_at = Utc::now();
        let clock = Instant::now();
        let body = match serde_json::to_vec(event) {
            Ok(body) => body,
            Err(_) => {
                return AttemptResult {
                    started_at,
                    duration: clock.elapsed(),
                    status_code: None,
                    error: Some("the event cannot be serialised".to_owned()),
                    retry_after: None,
                };
            }
        };
        if let Err(refused) = egress::check_url(self.settings.networks, &claimed.url) {
            return AttemptResult {
                started_at,
                duration: clock.elapsed(),
                status_code: None,
                error: Some(refused.to_string()),
                retry_after: None,
            };
        }
        let timestamp = started_at.timestamp();
        let signature = signing::signature_header(&claimed.secret, timestamp, &body);
        let sent = self
            .client
            .post(&claimed.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(signing::ID_HEADER, event.id.to_string())
            .header(signing::DELIVERY_HEADER, claimed.delivery_id.to_string())
            .header(signing::EVENT_TYPE_HEADER, event.event_type.as_str())
            .header(signing::TIMESTAMP_HEADER, timestamp.to_string())
            .header(signing::SIGNATURE_HEADER, signature)
            .body(body)
            .send()
            .await;
        let (status_code, error, retry_after) = match sent {
            Ok(response) => {
                let status = response.status();
                let retry_after = retry_after(&response);
                // Drain a little of the body so the connection can be reused; what the
                // receiver says is not kept.
                let _ = tokio::time::timeout(Duration::from_secs(1), response.bytes()).await;
                let error = (!status.is_success()).then(|| {
                    format!(
                        "HTTP {} {}",
                        status.as_u16(),
                        status.canonical_reason().unwrap_or("")
                    )
                    .trim_end()
                    .to_owned()
                });
                (Some(status.as_u16()), error, retry_after)
            }
            Err(error) => (None, Some(describe(&error, self.settings.timeout)), None),
        };
        AttemptResult {
            started_at,
            duration: clock.elapsed(),
            status_code,
            error,
            retry_after,
        }
    }

    /// Records the attempt, again and again while Postgres is away (for a while).
    async fn record(&self, claimed: &Claimed, result: &AttemptResult) -> Option<webhooks::RecordOutcome> {
        let deadline = tokio::time::Instant::now() + RECORD_WAIT;
        loop {
            match self.webhooks.record(claimed, result, &self.settings.policy).await {
                Ok(outcome) => return Some(outcome),
                Err(error) if tokio::time::Instant::now() < deadline => {
                    tracing::debug!(error = %error, "webhook attempt not recorded yet; trying again");
                    tokio::time::sleep(crate::ledger::RECORD_POLL).await;
                }
                Err(error) => {
                    tracing::warn!(error = %error, "webhook attempt not recorded");
                    return None;
                }
            }
        }
    }
}

/// Reads the pending and dead deliveries into `webhook_deliveries_pending` and
/// `webhook_deliveries_dead` at scrape.
pub fn collector(webhooks: Webhooks) -> web::metrics::Collector {
    web::metrics::collector(move || {
        let webhooks = webhooks.clone();
        async move {
            match webhooks.counts().await {
                Ok((pending, dead)) => {
                    metrics::gauge!("webhook_deliveries_pending").set(pending as f64);
                    metrics::gauge!("webhook_deliveries_dead").set(dead as f64);
                }
                Err(error) => tracing::warn!(error = %error, "webhook deliveries not counted for /metrics"),
            }
        }
    })
}

fn settle(in_flight: &mut HashMap<Uuid, u32>, done: Result<Uuid, tokio::task::JoinError>) {
    match done {
        Ok(webhook_id) => {
            if let Some(count) = in_flight.get_mut(&webhook_id) {
                *count = count.saturating_sub(1);
                if *count == 0 {
                    in_flight.remove(&webhook_id);
                }
            }
        }
        Err(error) => {
            // The endpoint's slot is lost until restart only in this process's count;
            // the delivery itself is claimed again when its lease runs out.
            tracing::error!(error = %error, "webhook attempt panicked");
        }
    }
}

/// `Retry-After` in seconds on a 429 or 503, at most an hour.
fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    let status = response.status().as_u16();
    if status != 429 && status != 503 {
        return None;
    }
    response
        .headers()
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(|seconds| Duration::from_secs(seconds.min(3600)))
}

/// Why a request got no answer, in words for the deliveries list.
fn describe(error: &reqwest::Error, timeout: Duration) -> String {
    if let Some(refused) = egress::refusal(error) {
        refused.to_string()
    } else if error.is_timeout() {
        format!("no answer within {} ms", timeout.as_millis())
    } else if error.is_connect() {
        "could not connect to the endpoint".to_owned()
    } else if error.is_redirect() {
        "the endpoint redirected; redirects are not followed".to_owned()
    } else {
        "the request failed before an answer arrived".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fan_out_reads_every_subject_of_the_stream_from_its_start() {
        let stream = StreamSettings {
            name: "EVENTS".into(),
            subject_prefix: "events".into(),
            duplicate_window: Duration::from_secs(120),
        };
        let config = consumer_config(&stream);
        assert_eq!(config.durable_name.as_deref(), Some(CONSUMER));
        assert_eq!(config.filter_subject, "events.>");
        assert_eq!(config.deliver_policy, DeliverPolicy::All);
        assert_eq!(config.ack_policy, AckPolicy::Explicit);
    }
}
