//! A side effect a team adds: declared once, registered with one line, and run by the
//! shared machinery (its own consumer, the ledger's never-twice rule, dead letters).

use crate::helpers::TestApp;
use eventstore::EventEnvelope;
use lettre::Message;
use lettre::message::header::ContentType;
use std::sync::Arc;
use workers::effects::{EffectContext, EffectError, Performed, SideEffect};
use workers::mail::{Mailer, OutgoingMail};
use workers::registry::Declaration;

/// Tells an auditor about every registration (no names or addresses of the user).
struct SignupAudit {
    mailer: Arc<dyn Mailer>,
}

impl SideEffect for SignupAudit {
    const NAME: &'static str = "signup_audit";
    const EVENT_TYPES: &'static [&'static str] = &["user.registered"];

    fn from_context(context: &EffectContext) -> Self {
        Self {
            mailer: context.mailer.clone(),
        }
    }

    async fn perform(&self, envelope: &EventEnvelope) -> Result<Performed, EffectError> {
        let message = Message::builder()
            .from("Audit <audit@localhost>".parse().expect("mailbox"))
            .to("auditor@example.org".parse().expect("mailbox"))
            .subject(format!("Registration {}", envelope.stream_id))
            .message_id(Some(format!("<audit.{}@localhost>", envelope.id)))
            .header(ContentType::TEXT_PLAIN)
            .body(String::from("A user registered.\r\n"))
            .map_err(|_| EffectError::permanent("the audit email cannot be composed"))?;
        let mail = OutgoingMail {
            key: envelope.id,
            message,
        };
        self.mailer.send(&mail).await?;
        Ok(Performed::Done)
    }
}

/// The one line that registers it.
const EFFECTS: &[Declaration] = &[Declaration::of::<SignupAudit>()];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newly_declared_effect_runs_once_per_event_on_its_own_consumer() {
    let app = TestApp::spawn_running(EFFECTS).await;
    app.smtp.refuse_next(1);
    let event = app.register("Grace", "grace@example.com").await;

    // Refused once, retried with backoff, then sent: only this effect runs here.
    let emails = app.wait_for_emails(1).await;
    assert_eq!(emails[0].to, ["auditor@example.org"]);
    assert!(
        emails[0]
            .data
            .contains(&format!("Message-ID: <audit.{}@localhost>", event.id)),
        "{}",
        emails[0].data
    );
    let sequence = app.last_sequence().await;
    app.wait_until_handled_by("workers-signup-audit", sequence).await;
    let recorded: Vec<String> = sqlx::query_scalar("SELECT effect FROM side_effects WHERE event_id = $1")
        .bind(event.id)
        .fetch_all(&app.db.pool)
        .await
        .expect("ledger");
    assert_eq!(recorded, ["signup_audit"]);

    // A redelivered copy finds it in the ledger and sends nothing.
    app.republish(&event).await;
    let copy = app.last_sequence().await;
    assert!(copy > sequence);
    app.wait_until_handled_by("workers-signup-audit", copy).await;
    assert_eq!(app.smtp.messages().len(), 1);
    assert!(app.dead_letter_ids().await.is_empty());
    assert!(app.consumer_info_of("workers-welcome-email").await.is_none());
    app.stop().await;
}
