//! The side effects the workers carry out, looked up by the name stored with each
//! completed effect and dead letter.

use crate::mail::{MailError, Mailer};
use crate::welcome::WelcomeEmail;
use eventstore::EventEnvelope;
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
}

impl From<MailError> for EffectError {
    fn from(error: MailError) -> Self {
        Self {
            permanent: error.permanent,
            message: error.message,
        }
    }
}

/// Every side effect, by name.
#[derive(Clone)]
pub struct Effects {
    welcome: Arc<WelcomeEmail>,
}

impl Effects {
    /// The effects, sending emails through `mailer` from `from`.
    pub fn new(mailer: Arc<dyn Mailer>, from: Mailbox) -> Self {
        Self {
            welcome: Arc::new(WelcomeEmail::new(mailer, from)),
        }
    }

    /// Carries out effect `effect` for one event.
    pub async fn perform(&self, effect: &str, envelope: &EventEnvelope) -> Result<(), EffectError> {
        match effect {
            WelcomeEmail::EFFECT => self.welcome.perform(envelope).await,
            _ => Err(EffectError::permanent("unknown side effect")),
        }
    }
}
