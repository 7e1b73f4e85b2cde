//! Unit tests of the registry: what one declaration yields, and dispatch by name.

use super::*;
use crate::mail::{MailError, Mailer, OutgoingMail};
use eventstore::EventStore;
use std::collections::HashSet;
use std::sync::Mutex;
use uuid::Uuid;

struct NoMailer;

impl Mailer for NoMailer {
    fn send<'a>(&'a self, _: &'a OutgoingMail) -> BoxFuture<'a, Result<(), MailError>> {
        Box::pin(async { Ok(()) })
    }
}

fn context() -> EffectContext {
    // A lazy pool never connects: nothing here reads the store.
    let pool = sqlx::PgPool::connect_lazy("postgres://127.0.0.1:1/none").expect("lazy pool");
    EffectContext {
        mailer: Arc::new(NoMailer),
        from: "Team <team@example.org>".parse().expect("mailbox"),
        store: EventStore::new(pool),
        password_links: crate::password_reset::PasswordLinks {
            url: "http://localhost:3000/reset-password".into(),
            ttl: std::time::Duration::from_secs(1800),
        },
    }
}

fn envelope(event_type: &str) -> EventEnvelope {
    EventEnvelope {
        id: Uuid::now_v7(),
        event_type: event_type.into(),
        schema_version: 1,
        stream_type: "product".into(),
        stream_id: Uuid::now_v7(),
        stream_version: 1,
        position: 1,
        occurred_at: chrono::Utc::now(),
        correlation_id: None,
        causation_id: None,
        actor_id: None,
        data: serde_json::json!({}),
    }
}

/// Events seen by every [`Audit`] built in this test binary, by event id.
static AUDITED: Mutex<Vec<Uuid>> = Mutex::new(Vec::new());

/// A side effect declared the way a team adds one.
struct Audit;

impl SideEffect for Audit {
    const NAME: &'static str = "stock_audit";
    const EVENT_TYPES: &'static [&'static str] = &["product.created", "product.stock_adjusted"];

    fn from_context(_: &EffectContext) -> Self {
        Self
    }

    async fn perform(&self, envelope: &EventEnvelope) -> Result<Performed, EffectError> {
        AUDITED.lock().expect("lock").push(envelope.id);
        Ok(Performed::Skipped("audited"))
    }
}

#[test]
fn every_registered_effect_has_its_own_name_event_types_and_consumers() {
    let names: HashSet<&str> = EFFECTS.iter().map(|d| d.name).collect();
    assert_eq!(names.len(), EFFECTS.len(), "effect names are unique");
    assert!(EFFECTS.iter().all(|d| !d.event_types.is_empty()));
    let consumers: HashSet<String> = subscriptions().into_iter().map(|s| s.consumer).collect();
    assert_eq!(
        consumers.len(),
        subscriptions().len(),
        "consumer names are unique"
    );
    // Durable names are a deployment contract: JetStream keeps each one's position.
    assert!(
        consumers
            .iter()
            .all(|c| c.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '-'))
    );
}

#[test]
fn the_shipped_effects_keep_their_stored_names_and_consumers() {
    let subscriptions: Vec<(String, &str, &str)> = subscriptions()
        .into_iter()
        .map(|s| (s.consumer, s.event_type, s.effect))
        .collect();
    assert_eq!(
        subscriptions,
        [
            (
                "workers-welcome-email".to_owned(),
                "user.registered",
                "welcome_email"
            ),
            (
                "workers-order-confirmation".to_owned(),
                "order.placed",
                "order_confirmation"
            ),
            (
                "workers-password-reset-email".to_owned(),
                "user.password_reset_requested",
                "password_reset_email"
            ),
            (
                "workers-email-change-notice".to_owned(),
                "user.email_changed",
                "email_change_notice"
            ),
        ]
    );
}

#[test]
fn an_effect_of_several_event_types_gets_one_consumer_per_type_the_first_keeping_its_name() {
    let subscriptions: Vec<(String, &str)> = Declaration::of::<Audit>()
        .subscriptions()
        .map(|s| (s.consumer, s.event_type))
        .collect();
    assert_eq!(
        subscriptions,
        [
            ("workers-stock-audit".to_owned(), "product.created"),
            (
                "workers-stock-audit-product-stock_adjusted".to_owned(),
                "product.stock_adjusted"
            ),
        ]
    );
}

#[tokio::test]
async fn a_registered_effect_is_run_by_its_name_and_an_unknown_name_fails_for_good() {
    let effects = Effects::from_declarations(&[Declaration::of::<Audit>()], &context());
    let event = envelope("product.created");
    let performed = effects.perform("stock_audit", &event).await;
    assert_eq!(performed, Ok(Performed::Skipped("audited")));
    assert!(AUDITED.lock().expect("lock").contains(&event.id));
    assert_eq!(effects.subscriptions().len(), 2);

    let unknown = effects
        .perform("welcome_email", &event)
        .await
        .expect_err("not registered here");
    assert!(unknown.permanent);
    assert!(effects.get("welcome_email").is_none());
}

#[tokio::test]
async fn the_production_registry_builds_every_declared_effect() {
    let effects = Effects::new(&context());
    let names: Vec<&str> = effects.iter().map(Effect::name).collect();
    let declared: Vec<&str> = EFFECTS.iter().map(|d| d.name).collect();
    assert_eq!(names, declared);
    // The welcome email refuses an event of another type without sending anything.
    let refused = effects
        .perform("welcome_email", &envelope("product.created"))
        .await
        .expect_err("wrong event type");
    assert!(refused.permanent);
}
