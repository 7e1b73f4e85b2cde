//! The notice to the old address when an account's email changes (`user.email_changed`),
//! so that a takeover through a stolen session does not go unseen.

use crate::effects::{EffectContext, EffectError, Performed, SideEffect};
use crate::mail::{Mailer, OutgoingMail};
use domain::DomainEvent;
use domain::user::UserEvent;
use eventstore::EventEnvelope;
use lettre::message::Mailbox;
use std::sync::Arc;

/// Tells the previous address that the account now uses another one.
pub struct EmailChangeNotice {
    mailer: Arc<dyn Mailer>,
    from: Mailbox,
}

impl SideEffect for EmailChangeNotice {
    const NAME: &'static str = "email_change_notice";
    const EVENT_TYPES: &'static [&'static str] = &["user.email_changed"];

    fn from_context(context: &EffectContext) -> Self {
        Self {
            mailer: context.mailer.clone(),
            from: context.from.clone(),
        }
    }

    async fn perform(&self, envelope: &EventEnvelope) -> Result<Performed, EffectError> {
        let mail = self.compose(envelope)?;
        self.mailer.send(&mail).await?;
        Ok(Performed::Done)
    }
}

impl EmailChangeNotice {
    /// The notice: to the old address, naming the new one only partly (the old address
    /// may be the one that is no longer the owner's).
    pub fn compose(&self, envelope: &EventEnvelope) -> Result<OutgoingMail, EffectError> {
        let event = UserEvent::from_stored(&envelope.event_type, envelope.schema_version, &envelope.data)
            .map_err(|error| EffectError::unreadable(&error))?;
        let UserEvent::EmailChanged {
            email,
            previous_email,
        } = event
        else {
            return Err(EffectError::permanent(format!(
                "event type {} does not trigger an email change notice",
                envelope.event_type
            )));
        };
        let address = previous_email
            .as_str()
            .parse()
            .map_err(|_| EffectError::permanent("the recipient address is not valid"))?;
        // Lines under 76 characters, so the body goes as written (8bit).
        let text = format!(
            "Hello,\r\n\r\nthe email address of your account changed from this address\r\n\
             to {}.\r\nFrom now on, sign-in and messages use the new address.\r\n\r\n\
             If you did not make this change, contact us at once:\r\nthis address can no \
             longer sign in to the account.\r\n\r\n\
             The CQRS Backend team\r\n",
            masked(email.as_str())
        );
        OutgoingMail::plain_text(
            envelope.id,
            "email-changed",
            &self.from,
            Mailbox::new(None, address),
            "The email address of your account changed".to_owned(),
            text,
        )
        .ok_or_else(|| EffectError::permanent("the email change notice cannot be composed"))
    }
}

/// `a***@example.com`: enough to recognise one's own address, not to learn another's.
fn masked(email: &str) -> String {
    match email.split_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        None => "***".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_new_address_is_shown_only_in_part() {
        assert_eq!(masked("ada@lovelace.org"), "a***@lovelace.org");
        assert_eq!(masked("broken"), "***");
    }
}
