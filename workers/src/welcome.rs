//! The welcome email, sent once to every user who registers (`user.registered`).

use crate::effects::{EffectContext, EffectError, Performed, SideEffect};
use crate::mail::{Mailer, OutgoingMail};
use domain::DomainEvent;
use domain::user::UserEvent;
use eventstore::EventEnvelope;
use lettre::message::Mailbox;
use std::sync::Arc;

/// Greets a newly registered user by email.
pub struct WelcomeEmail {
    mailer: Arc<dyn Mailer>,
    from: Mailbox,
}

impl SideEffect for WelcomeEmail {
    const NAME: &'static str = "welcome_email";
    const EVENT_TYPES: &'static [&'static str] = &["user.registered"];

    fn from_context(context: &EffectContext) -> Self {
        Self::new(context.mailer.clone(), context.from.clone())
    }

    /// Composes and sends the email for one `user.registered` event.
    async fn perform(&self, envelope: &EventEnvelope) -> Result<Performed, EffectError> {
        let mail = self.compose(envelope)?;
        self.mailer.send(&mail).await?;
        Ok(Performed::Done)
    }
}

impl WelcomeEmail {
    /// Sends through `mailer`, from `from`.
    pub fn new(mailer: Arc<dyn Mailer>, from: Mailbox) -> Self {
        Self { mailer, from }
    }

    /// The email for one event: to the user, greeting them by name, with a Message-ID
    /// derived from the event id (so a receiving side can spot a duplicate too).
    pub fn compose(&self, envelope: &EventEnvelope) -> Result<OutgoingMail, EffectError> {
        let event = UserEvent::from_stored(&envelope.event_type, envelope.schema_version, &envelope.data)
            .map_err(|error| EffectError::unreadable(&error))?;
        let UserEvent::Registered { email, name, .. } = event else {
            return Err(EffectError::permanent(format!(
                "event type {} does not trigger a welcome email",
                envelope.event_type
            )));
        };
        let address = email
            .as_str()
            .parse()
            .map_err(|_| EffectError::permanent("the recipient address is not valid"))?;
        let to = Mailbox::new(Some(name.as_str().to_owned()), address);
        let text = format!(
            "Hello {name},\r\n\r\nwelcome aboard! Your account is ready:\r\nsign in with this email \
             address and your password.\r\n\r\nThe CQRS Backend team\r\n"
        );
        OutgoingMail::plain_text(
            envelope.id,
            "welcome",
            &self.from,
            to,
            format!("Welcome, {name}!"),
            text,
        )
        .ok_or_else(|| EffectError::permanent("the welcome email cannot be composed"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mail::MailError;
    use futures::future::BoxFuture;
    use serde_json::json;
    use uuid::Uuid;

    struct NoMailer;

    impl Mailer for NoMailer {
        fn send<'a>(&'a self, _: &'a OutgoingMail) -> BoxFuture<'a, Result<(), MailError>> {
            Box::pin(async { Ok(()) })
        }
    }

    fn envelope(event_type: &str, data: serde_json::Value) -> EventEnvelope {
        EventEnvelope {
            id: Uuid::now_v7(),
            event_type: event_type.into(),
            schema_version: 1,
            stream_type: "user".into(),
            stream_id: Uuid::new_v4(),
            stream_version: 1,
            position: 1,
            occurred_at: chrono::Utc::now(),
            correlation_id: None,
            causation_id: None,
            actor_id: None,
            data,
        }
    }

    fn welcome() -> WelcomeEmail {
        let from = "Team <team@example.org>".parse().expect("mailbox");
        WelcomeEmail::new(Arc::new(NoMailer), from)
    }

    #[test]
    fn the_email_greets_the_user_and_derives_its_message_id_from_the_event() {
        let event = envelope(
            "user.registered",
            json!({"email": "ada@example.com", "name": "Ada", "role": "user"}),
        );
        let mail = welcome().compose(&event).expect("composes");
        let text = String::from_utf8(mail.message.formatted()).expect("utf-8");
        assert_eq!(mail.key, event.id);
        assert!(text.contains("Subject: Welcome, Ada!"), "{text}");
        assert!(text.contains("Hello Ada,"), "{text}");
        assert!(
            text.contains(&format!("Message-ID: <welcome.{}@example.org>", event.id)),
            "{text}"
        );
        let to: Vec<String> = mail
            .message
            .envelope()
            .to()
            .iter()
            .map(|a| a.to_string())
            .collect();
        assert_eq!(to, ["ada@example.com"]);
    }

    #[test]
    fn non_ascii_names_appear_verbatim_in_the_body() {
        let name = "Zoë Ångström-Østergaard";
        let event = envelope(
            "user.registered",
            json!({"email": "zoe@example.com", "name": name, "role": "user"}),
        );
        let mail = welcome().compose(&event).expect("composes");
        let text = String::from_utf8(mail.message.formatted()).expect("utf-8");
        assert!(text.contains(&format!("Hello {name},")), "{text}");
        assert!(text.contains("Content-Transfer-Encoding: 8bit"), "{text}");
    }

    #[test]
    fn unreadable_payloads_fail_permanently_without_echoing_values() {
        let event = envelope("user.registered", json!({"email": 5, "name": "Secret Name"}));
        let error = welcome().compose(&event).expect_err("refused");
        assert!(error.permanent);
        assert!(!error.message.contains("Secret"));
        let other = envelope("user.renamed", json!({"name": "Ada"}));
        assert!(welcome().compose(&other).expect_err("refused").permanent);
    }
}
