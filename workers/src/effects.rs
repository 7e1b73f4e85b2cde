//! The side effects the workers carry out, looked up by the name stored with each
//! completed effect and dead letter.

use crate::mail::{MailError, Mailer};
use crate::order_confirmation::OrderConfirmation;
use crate::welcome::WelcomeEmail;
use domain::EventDecodeError;
use eventstore::{EventEnvelope, EventStore};
use lettre::message::Mailbox;
use std::sync::Arc;

/// Why a side effect did not happen. The message is stored in dead letters and shown
/// to operators: it never carries secrets, email addresses or names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct EffectError {
    /// Retrying cannot help; the message becomes a dead letter at once.
    pub permanent: bool,
    /// What went wrong.
    pub message: String,
}

impl EffectError {
    /// A failure that retrying cannot fix.
    pub fn permanent(message: impl Into<String>) -> Self {
        Self {
            permanent: true,
            message: message.into(),
        }
    }

    /// A failure that may go away by itself.
    pub fn transient(message: impl Into<String>) -> Self {
        Self {
            permanent: false,
            message: message.into(),
        }
    }

    /// An event payload that cannot be read, described without echoing any of its values.
    pub fn unreadable(error: &EventDecodeError) -> Self {
        Self::permanent(match error {
            EventDecodeError::UnknownType(event_type) => format!("unknown event type {event_type}"),
            EventDecodeError::UnsupportedVersion { event_type, version } => {
                format!("unsupported schema version {version} of {event_type}")
            }
            EventDecodeError::Malformed { event_type, .. } => {
                format!("the {event_type} payload does not match its schema")
            }
        })
    }
}

impl From<MailError> for EffectError {
    fn from(error: MailError) -> Self {
        Self {
            permanent: error.permanent,
            message: error.message,
        }
    }
}

/// What a side effect that did not fail amounted to. Both count as done: the effect is
/// recorded and never attempted again for that event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Performed {
    /// It was carried out (e.g. the email was accepted).
    Done,
    /// There was nothing to do, for this reason (e.g. the recipient's account is gone).
    Skipped(&'static str),
}

/// Every side effect, by name.
#[derive(Clone)]
pub struct Effects {
    welcome: Arc<WelcomeEmail>,
    order_confirmation: Arc<OrderConfirmation>,
}

impl Effects {
    /// The effects, sending emails through `mailer` from `from` and reading what they
    /// need beyond the event (e.g. an order's owner) from `store`.
    pub fn new(mailer: Arc<dyn Mailer>, from: Mailbox, store: EventStore) -> Self {
        Self {
            welcome: Arc::new(WelcomeEmail::new(mailer.clone(), from.clone())),
            order_confirmation: Arc::new(OrderConfirmation::new(mailer, from, store)),
        }
    }

    /// Carries out effect `effect` for one event.
    pub async fn perform(&self, effect: &str, envelope: &EventEnvelope) -> Result<Performed, EffectError> {
        match effect {
            WelcomeEmail::EFFECT => self.welcome.perform(envelope).await.map(|()| Performed::Done),
            OrderConfirmation::EFFECT => self.order_confirmation.perform(envelope).await,
            _ => Err(EffectError::permanent("unknown side effect")),
        }
    }
}
