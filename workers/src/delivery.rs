//! What happens to one delivered event: its side effect runs at most once (see
//! [`crate::ledger`]), a failure is retried later with backoff, and after the last
//! attempt (or a failure retrying cannot fix) it becomes a dead letter.

use crate::effects::Performed;
use crate::ledger::{Ledger, RECORD_WAIT};
use crate::registry::Effect;
use crate::retry::RetryPolicy;
use eventstore::EventEnvelope;
use serde_json::Value;
use std::time::Duration;
use tracing::Instrument;

/// How a delivery ended, and so what to tell JetStream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The side effect was carried out and recorded: ack.
    Done,
    /// It had already been carried out: ack without doing it again.
    AlreadyDone,
    /// It is a dead letter (or was discarded); operators own it now: ack.
    Parked,
    /// It failed for good and became a dead letter: ack.
    DeadLettered,
    /// The message is not an event envelope: ack, nothing can be done with it.
    Dropped,
    /// It failed; deliver it again after this delay (NAK with delay).
    Retry(Duration),
}

impl Outcome {
    /// The `outcome` label of `side_effects_total`.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Done => "done",
            Self::AlreadyDone => "already_done",
            Self::Parked => "parked",
            Self::DeadLettered => "dead_lettered",
            Self::Dropped => "dropped",
            Self::Retry(_) => "retry",
        }
    }
}

/// Runs one effect for delivered events.
pub struct Delivery {
    ledger: Ledger,
    effect: Effect,
    retry: RetryPolicy,
}

impl Delivery {
    /// Runs `effect`, recording it in `ledger`, retrying failures by `retry`.
    pub fn new(ledger: Ledger, effect: Effect, retry: RetryPolicy) -> Self {
        Self {
            ledger,
            effect,
            retry,
        }
    }

    /// The name of the effect it runs.
    pub fn effect_name(&self) -> &'static str {
        self.effect.name()
    }

    /// Handles one raw message; `attempt` is its delivery count (from 1).
    pub async fn handle(&self, subject: &str, payload: &[u8], attempt: u32) -> Outcome {
        let raw: Value = match serde_json::from_slice(payload) {
            Ok(raw) => raw,
            Err(error) => return dropped(subject, error),
        };
        match serde_json::from_value::<EventEnvelope>(raw.clone()) {
            Ok(envelope) => {
                let span = tracing::error_span!(parent: &envelope.log_span(), "side_effect", effect = self.effect.name());
                self.process(&envelope, &raw, subject, attempt)
                    .instrument(span)
                    .await
            }
            Err(error) => dropped(subject, error),
        }
    }

    async fn process(&self, envelope: &EventEnvelope, raw: &Value, subject: &str, attempt: u32) -> Outcome {
        let open = match self.ledger.open(envelope.id, self.effect.name()).await {
            Ok(open) => open,
            Err(error) => {
                tracing::warn!(error = %error, "side-effect ledger unavailable; will retry");
                return self.retry_later(attempt);
            }
        };
        if open.is_completed() {
            release(open).await;
            tracing::info!("side effect already carried out; not repeating it");
            return Outcome::AlreadyDone;
        }
        if let Some(dead_letter) = open.dead_letter() {
            tracing::info!(
                dead_letter.id = %dead_letter.id,
                dead_letter.status = dead_letter.status.as_str(),
                "side effect is a dead letter; leaving it to operators"
            );
            release(open).await;
            return Outcome::Parked;
        }
        match self.effect.perform(envelope).await {
            Ok(performed) => match open.complete().await {
                Ok(()) => {
                    match performed {
                        Performed::Done => tracing::info!("side effect carried out"),
                        Performed::Skipped(reason) => {
                            tracing::info!(reason, "side effect not needed; recorded as done")
                        }
                    }
                    Outcome::Done
                }
                Err(error) => {
                    tracing::warn!(error = %error, "side effect carried out but not recorded yet; recording it again");
                    self.record_after_lost_commit(envelope).await.unwrap_or_else(|| {
                        // The one at-least-once window: done but not recorded.
                        tracing::error!("side effect carried out but not recorded; it may be repeated");
                        self.retry_later(attempt)
                    })
                }
            },
            Err(failure) if failure.permanent || self.retry.is_last(attempt) => {
                let attempts = i32::try_from(attempt).unwrap_or(i32::MAX);
                match open.bury(subject, raw, &failure.message, attempts).await {
                    Ok(id) => {
                        tracing::warn!(
                            dead_letter.id = ?id,
                            error = %failure.message,
                            permanent = failure.permanent,
                            "side effect failed for good; it is a dead letter now"
                        );
                        Outcome::DeadLettered
                    }
                    Err(error) => {
                        tracing::warn!(error = %error, "dead letter not stored; will retry");
                        self.retry_later(attempt)
                    }
                }
            }
            Err(failure) => {
                release(open).await;
                let outcome = self.retry_later(attempt);
                if let Outcome::Retry(delay) = outcome {
                    tracing::info!(
                        error = %failure.message,
                        retry.delay_ms = delay.as_millis() as u64,
                        "side effect failed; will retry"
                    );
                }
                outcome
            }
        }
    }

    /// Records a carried-out effect whose transaction was lost (Postgres went away),
    /// for at most [`RECORD_WAIT`], well inside the ack wait, so the message is not
    /// redelivered meanwhile; `None` when Postgres never answered.
    async fn record_after_lost_commit(&self, envelope: &EventEnvelope) -> Option<Outcome> {
        match self
            .ledger
            .record_completed_within(envelope.id, self.effect.name(), RECORD_WAIT)
            .await
        {
            Ok(()) => {
                tracing::info!("side effect carried out and recorded after the database returned");
                Some(Outcome::Done)
            }
            Err(_) => None,
        }
    }

    fn retry_later(&self, attempt: u32) -> Outcome {
        Outcome::Retry(self.retry.delay(attempt))
    }
}

async fn release(open: crate::ledger::OpenEffect) {
    if let Err(error) = open.release().await {
        tracing::warn!(error = %error, "could not release the side-effect lock cleanly");
    }
}

fn dropped(subject: &str, error: serde_json::Error) -> Outcome {
    // The serde message may quote payload values; its category and position are enough.
    tracing::warn!(
        nats.subject = %subject,
        error.kind = ?error.classify(),
        error.line = error.line(),
        error.column = error.column(),
        "message is not an event envelope; dropping it"
    );
    Outcome::Dropped
}
