//! The order confirmation goes to the order's owner once per `order.placed` event, with
//! the same retries, dead letters and never-twice rule as the welcome email.

use crate::helpers::ORDER_CONFIRMATION_CONSUMER;
use crate::helpers::{TestApp, WAIT};
use domain::money::Currency;
use domain::order::{OrderEvent, OrderLine};
use domain::user::{self, Role, UserEvent, UserState};
use eventstore::{EventEnvelope, EventMetadata};
use serde_json::Value;
use testkit::{ReceivedMail, eventually};
use uuid::Uuid;

/// One line as ordered: name, SKU, quantity, unit price in minor units.
pub(crate) type Line<'a> = (&'a str, &'a str, i64, i64);

/// Places an order the way the command API does (append, commit, relay) and returns its
/// event with the stream sequence it got.
pub(crate) async fn place_order(
    app: &TestApp,
    user_id: Uuid,
    lines: &[Line<'_>],
    currency: &str,
) -> (EventEnvelope, u64) {
    let lines: Vec<OrderLine> = lines
        .iter()
        .map(|&(name, sku, quantity, unit_price_cents)| OrderLine {
            product_id: Uuid::now_v7(),
            sku: sku.to_owned(),
            name: name.to_owned(),
            quantity,
            unit_price_cents,
            line_total_cents: quantity * unit_price_cents,
        })
        .collect();
    let event = OrderEvent::Placed {
        user_id,
        total_cents: lines.iter().map(|l| l.line_total_cents).sum(),
        lines,
        currency: Currency::parse(currency).expect("currency"),
    };
    let mut unit = app.store.begin().await.expect("begin");
    let mut stored = unit
        .append::<OrderEvent>(Uuid::now_v7(), 0, &[event], &EventMetadata::default())
        .await
        .expect("append");
    unit.commit().await.expect("commit");
    app.relay.publish_batch().await.expect("relay");
    (stored.remove(0), app.last_sequence().await)
}

/// Deletes a user the way the command API does.
pub(crate) async fn delete_user(app: &TestApp, user_id: Uuid) {
    let (_, version) = app
        .store
        .load_aggregate::<UserEvent, _>(user_id, UserState::New, user::evolve)
        .await
        .expect("load user");
    let mut unit = app.store.begin().await.expect("begin");
    unit.append(
        user_id,
        version,
        &[UserEvent::Deleted {}],
        &EventMetadata::default(),
    )
    .await
    .expect("append");
    unit.commit().await.expect("commit");
    app.relay.publish_batch().await.expect("relay");
}

/// Registers a user, waits for their welcome email, and returns their id.
pub(crate) async fn registered_user(app: &TestApp, name: &str, email: &str) -> Uuid {
    let event = app.register(name, email).await;
    eventually(WAIT, "the welcome email", || async {
        app.smtp
            .messages()
            .iter()
            .any(|m| m.to == [email] && m.data.contains("Subject: Welcome"))
            .then_some(())
    })
    .await;
    event.stream_id
}

pub(crate) fn order_emails(app: &TestApp) -> Vec<ReceivedMail> {
    app.smtp
        .messages()
        .into_iter()
        .filter(|m| m.data.contains("Subject: Your order "))
        .collect()
}

pub(crate) async fn wait_for_order_emails(app: &TestApp, count: usize) -> Vec<ReceivedMail> {
    eventually(WAIT, &format!("{count} order confirmation(s)"), || async {
        let emails = order_emails(app);
        (emails.len() >= count).then_some(emails)
    })
    .await
}

pub(crate) async fn recorded(app: &TestApp, event_id: Uuid) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM side_effects WHERE event_id = $1 AND effect = 'order_confirmation'",
    )
    .bind(event_id)
    .fetch_one(&app.db.pool)
    .await
    .expect("side effects")
}

pub(crate) fn short_id(order_id: Uuid) -> String {
    order_id.simple().to_string()[24..].to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_owner_receives_a_confirmation_with_every_line_the_total_and_the_currency() {
    let app = TestApp::spawn().await;
    let user_id = registered_user(&app, "Ada Lovelace", "ada@example.com").await;
    let lines = [
        ("Blue mug", "MUG-BLUE", 2, 1250),
        ("Grüner Tee", "TEA-01", 1, 399),
        ("Gold bar", "GOLD-1KG", 3, 10_000_000_000),
    ];
    let (event, sequence) = place_order(&app, user_id, &lines, "EUR").await;

    let emails = wait_for_order_emails(&app, 1).await;
    let email = &emails[0];
    let data = &email.data;
    assert_eq!(email.to, ["ada@example.com"]);
    let subject = format!("Subject: Your order {} is confirmed", short_id(event.stream_id));
    assert!(data.contains(&subject), "{data}");
    assert!(data.contains("To: \"Ada Lovelace\" <ada@example.com>"), "{data}");
    assert!(data.contains("Hello Ada Lovelace,"), "{data}");
    for line in [
        "- Blue mug (SKU MUG-BLUE): 2 × 12.50 EUR = 25.00 EUR\r\n",
        "- Grüner Tee (SKU TEA-01): 1 × 3.99 EUR = 3.99 EUR\r\n",
        "- Gold bar (SKU GOLD-1KG): 3 × 100000000.00 EUR = 300000000.00 EUR\r\n",
    ] {
        assert!(data.contains(line), "{line} in {data}");
    }
    assert!(data.contains("Total: 300000028.99 EUR\r\n"), "{data}");
    assert!(
        data.contains(&format!(
            "Message-ID: <order-confirmation.{}@localhost>",
            event.id
        )),
        "{data}"
    );
    app.wait_until_handled_by(ORDER_CONFIRMATION_CONSUMER, sequence)
        .await;
    assert_eq!(recorded(&app, event.id).await, 1);
    assert_eq!(
        app.smtp.messages().len(),
        2,
        "one welcome email, one confirmation"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_order_event_delivered_again_sends_no_second_confirmation() {
    let app = TestApp::spawn().await;
    let user_id = registered_user(&app, "Grace", "grace@example.com").await;
    let (event, _) = place_order(&app, user_id, &[("Mug", "MUG", 1, 500)], "USD").await;
    wait_for_order_emails(&app, 1).await;

    app.republish(&event).await;
    let copy = app.last_sequence().await;
    app.wait_until_handled_by(ORDER_CONFIRMATION_CONSUMER, copy).await;

    let info = app
        .consumer_info_of(ORDER_CONFIRMATION_CONSUMER)
        .await
        .expect("consumer");
    assert_eq!(info.delivered.stream_sequence, copy, "the copy was delivered");
    assert_eq!(order_emails(&app).len(), 1);
    assert_eq!(recorded(&app, event.id).await, 1);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_competing_workers_send_one_confirmation_per_order() {
    let app = TestApp::spawn_with(2, |_| {}).await;
    let user_id = registered_user(&app, "Edith", "edith@example.com").await;
    let mut events = Vec::new();
    for i in 0..4 {
        let sku = format!("SKU-{i}");
        events.push(
            place_order(&app, user_id, &[("Thing", &sku, 1, 100)], "EUR")
                .await
                .0,
        );
    }
    // Every order arrives twice, so both workers may hold the same event at once.
    for event in &events {
        app.republish(event).await;
    }
    let last = app.last_sequence().await;
    app.wait_until_handled_by(ORDER_CONFIRMATION_CONSUMER, last).await;

    let mut subjects: Vec<String> = order_emails(&app)
        .iter()
        .filter_map(|m| {
            m.data
                .lines()
                .find(|l| l.starts_with("Subject: "))
                .map(str::to_owned)
        })
        .collect();
    subjects.sort();
    let mut expected: Vec<String> = events
        .iter()
        .map(|e| format!("Subject: Your order {} is confirmed", short_id(e.stream_id)))
        .collect();
    expected.sort();
    assert_eq!(subjects, expected);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_of_deleted_or_unknown_owners_send_nothing_and_count_as_done() {
    let app = TestApp::spawn().await;
    let user_id = registered_user(&app, "Gone", "gone@example.com").await;
    delete_user(&app, user_id).await;
    let (deleted, _) = place_order(&app, user_id, &[("Mug", "MUG", 1, 500)], "EUR").await;
    let (unknown, sequence) = place_order(&app, Uuid::now_v7(), &[("Mug", "MUG", 1, 500)], "EUR").await;

    app.wait_until_handled_by(ORDER_CONFIRMATION_CONSUMER, sequence)
        .await;
    assert_eq!(recorded(&app, deleted.id).await, 1);
    assert_eq!(recorded(&app, unknown.id).await, 1);
    assert!(app.dead_letter_ids().await.is_empty());
    assert!(order_emails(&app).is_empty());
    assert_eq!(app.smtp.messages().len(), 1, "only the welcome email");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_consumer_endpoint_lists_the_welcome_and_the_order_confirmation_consumers() {
    let app = TestApp::spawn().await;
    let admin = app.token(Role::Admin).await;
    let body: Value = app
        .http
        .get(app.url("/api/v1/consumers"))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("consumers")
        .json()
        .await
        .expect("json");
    let listed: Vec<(&str, &str)> = body["data"]
        .as_array()
        .expect("list")
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap_or(""),
                c["filterSubject"].as_str().unwrap_or(""),
            )
        })
        .collect();
    let welcome = app.nats.stream.subject("user.registered");
    let orders = app.nats.stream.subject("order.placed");
    let resets = app.nats.stream.subject("user.password_reset_requested");
    let email_changes = app.nats.stream.subject("user.email_changed");
    assert_eq!(
        listed,
        [
            ("workers-welcome-email", welcome.as_str()),
            ("workers-order-confirmation", orders.as_str()),
            ("workers-password-reset-email", resets.as_str()),
            ("workers-email-change-notice", email_changes.as_str())
        ]
    );
    app.stop().await;
}
