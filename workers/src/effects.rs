//! What a side effect is: a [`SideEffect`] declares its name, the event types it
//! reacts to and what it does, once; [`crate::registry`] runs every declared one.

use crate::mail::{MailError, Mailer};
use domain::EventDecodeError;
use eventstore::{EventEnvelope, EventStore};
use lettre::message::Mailbox;
use std::future::Future;
use std::sync::Arc;

/// A side effect of events, declared once and registered with one line in
/// [`crate::registry::EFFECTS`]: the consumers, the dead letters, the operator's retry
/// and the ledger all take it from there.
///
/// `perform` runs at least once per event and is recorded in the ledger under
/// [`SideEffect::NAME`] in the transaction that holds the event's lock, so a redelivery
/// or an operator's retry does not repeat it; what a receiver sees twice in the one
/// remaining window (see [`crate::ledger`]) it should be able to recognise, e.g. by a
/// Message-ID derived from the event id.
pub trait SideEffect: Send + Sync + Sized + 'static {
    /// Name in `side_effects` and `dead_letters`, and of its durable consumers. Stored
    /// data refers to it: renaming an effect makes it run again for every event.
    const NAME: &'static str;
    /// The event types it reacts to (e.g. `user.registered`), each read by a durable
    /// consumer of its own.
    const EVENT_TYPES: &'static [&'static str];

    /// The effect, with what it needs beyond the event taken from `context`.
    fn from_context(context: &EffectContext) -> Self;

    /// Carries the effect out for one event of one of [`SideEffect::EVENT_TYPES`].
    fn perform(
        &self,
        envelope: &EventEnvelope,
    ) -> impl Future<Output = Result<Performed, EffectError>> + Send;
}

/// What side effects may use beyond the event itself.
#[derive(Clone)]
pub struct EffectContext {
    /// Where emails go.
    pub mailer: Arc<dyn Mailer>,
    /// The sender of every email.
    pub from: Mailbox,
    /// The event store, to read what an event only refers to (e.g. an order's owner).
    pub store: EventStore,
    /// Where password links lead and how long they work.
    pub password_links: crate::password_reset::PasswordLinks,
}

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
