//! Operator actions on dead letters that run side effects again, under the same
//! never-twice rule as the consumer (see [`crate::ledger`]).

use crate::dead_letters::{self, DeadLetter, DeadLetterStatus};
use crate::effects::Performed;
use crate::ledger::Ledger;
use crate::registry::Effects;
use eventstore::EventEnvelope;
use sqlx::PgPool;
use uuid::Uuid;

/// Why a retry did not resolve the dead letter.
#[derive(Debug, thiserror::Error)]
pub enum RetryError {
    /// No dead letter has this id.
    #[error("dead letter not found")]
    NotFound,
    /// Only dead letters with status `dead` can be retried.
    #[error("the dead letter is {}, not dead", .0.as_str())]
    NotDead(DeadLetterStatus),
    /// The side effect failed again; attempts and error were updated.
    #[error("{message}")]
    Failed {
        /// Why it failed, safe to show.
        message: String,
    },
    /// Postgres failed.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

/// Runs a dead letter's side effect now. On success it is `resolved` (also when the
/// effect turns out to have happened meanwhile, in which case nothing is sent); on
/// failure its attempts and error are updated.
pub async fn retry(
    pool: &PgPool,
    ledger: &Ledger,
    effects: &Effects,
    id: Uuid,
) -> Result<DeadLetter, RetryError> {
    let found = dead_letters::find(pool, id).await?.ok_or(RetryError::NotFound)?;
    let open = ledger.open(found.event_id, &found.effect).await?;
    let current = match open.dead_letter() {
        Some(current) if current.id == id => current.clone(),
        _ => return Err(RetryError::NotFound),
    };
    if current.status != DeadLetterStatus::Dead {
        open.release().await?;
        return Err(RetryError::NotDead(current.status));
    }
    if open.is_completed() {
        open.complete().await?;
    } else {
        let performed = match serde_json::from_value::<EventEnvelope>(current.event.clone()) {
            Ok(envelope) => effects
                .perform(&current.effect, &envelope)
                .await
                .map_err(|e| e.message),
            Err(_) => Err("the stored event is not an event envelope".to_owned()),
        };
        match performed {
            Ok(performed) => {
                if let Err(error) = open.complete().await {
                    // Carried out, so recorded it must be, not carried out again by the
                    // operator's next retry (this runs in a task of its own: it outlives
                    // a request that times out).
                    tracing::warn!(dead_letter.id = %id, error = %error, "retried side effect carried out but not recorded yet; recording it again");
                    ledger
                        .record_completed_within(found.event_id, &found.effect, crate::ledger::RECORD_WAIT)
                        .await?;
                }
                if let Performed::Skipped(reason) = performed {
                    tracing::info!(dead_letter.id = %id, reason, "side effect not needed; recorded as done");
                }
            }
            Err(message) => {
                open.record_failure(&message).await?;
                tracing::warn!(dead_letter.id = %id, error = %message, "dead letter retry failed");
                return Err(RetryError::Failed { message });
            }
        }
    }
    tracing::info!(dead_letter.id = %id, "dead letter resolved by retry");
    dead_letters::find(pool, id).await?.ok_or(RetryError::NotFound)
}
