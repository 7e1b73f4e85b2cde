//! Unit tests of the order confirmation's content.

use super::*;
use crate::mail::MailError;
use futures::future::BoxFuture;
use serde_json::json;

struct NoMailer;

impl Mailer for NoMailer {
    fn send<'a>(&'a self, _: &'a OutgoingMail) -> BoxFuture<'a, Result<(), MailError>> {
        Box::pin(async { Ok(()) })
    }
}

fn envelope(event_type: &str, order_id: Uuid, data: serde_json::Value) -> EventEnvelope {
    EventEnvelope {
        id: Uuid::now_v7(),
        event_type: event_type.into(),
        schema_version: 1,
        stream_type: "order".into(),
        stream_id: order_id,
        stream_version: 1,
        position: 1,
        occurred_at: chrono::Utc::now(),
        correlation_id: None,
        causation_id: None,
        actor_id: None,
        data,
    }
}

fn placed(currency: &str) -> serde_json::Value {
    json!({
        "userId": Uuid::now_v7(),
        "lines": [
            {"productId": Uuid::now_v7(), "sku": "MUG-BLUE", "name": "Blue mug", "quantity": 2,
             "unitPriceCents": 1250, "lineTotalCents": 2500},
            {"productId": Uuid::now_v7(), "sku": "TEA-01", "name": "Grüner Tee", "quantity": 1,
             "unitPriceCents": 399, "lineTotalCents": 399}
        ],
        "totalCents": 2899,
        "currency": currency
    })
}

fn confirmation() -> OrderConfirmation {
    let from = "Shop <shop@example.org>".parse().expect("mailbox");
    // A lazy pool never connects: composing needs no database.
    let pool = sqlx::PgPool::connect_lazy("postgres://127.0.0.1:1/none").expect("lazy pool");
    OrderConfirmation::new(Arc::new(NoMailer), from, EventStore::new(pool))
}

fn order_id() -> Uuid {
    Uuid::parse_str("0199a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b").expect("uuid")
}

#[tokio::test]
async fn the_email_lists_every_line_and_the_total_for_the_owner() {
    let event = envelope("order.placed", order_id(), placed("EUR"));
    let order = PlacedOrder::from_envelope(&event).expect("reads");
    let mail = confirmation()
        .compose(&event, &order, "ada@example.com", "Ada Lovelace")
        .expect("composes");
    let text = String::from_utf8(mail.message.formatted()).expect("utf-8");
    assert_eq!(mail.key, event.id);
    assert!(
        text.contains("Subject: Your order 2e3f4a5b is confirmed"),
        "{text}"
    );
    assert!(text.contains("To: \"Ada Lovelace\" <ada@example.com>"), "{text}");
    assert!(text.contains("Hello Ada Lovelace,"), "{text}");
    assert!(
        text.contains("- Blue mug (SKU MUG-BLUE): 2 × 12.50 EUR = 25.00 EUR\r\n"),
        "{text}"
    );
    assert!(
        text.contains("- Grüner Tee (SKU TEA-01): 1 × 3.99 EUR = 3.99 EUR\r\n"),
        "{text}"
    );
    assert!(text.contains("Total: 28.99 EUR\r\n"), "{text}");
    assert!(
        text.contains(&format!("Order reference: {}", order_id())),
        "{text}"
    );
    assert!(text.contains("Content-Transfer-Encoding: 8bit"), "{text}");
    assert!(
        text.contains(&format!(
            "Message-ID: <order-confirmation.{}@example.org>",
            event.id
        )),
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

#[tokio::test]
async fn amounts_use_the_decimals_of_the_order_currency() {
    let yen =
        PlacedOrder::from_envelope(&envelope("order.placed", order_id(), placed("JPY"))).expect("reads");
    let text = yen.text("Ada");
    assert!(text.contains("2 × 1250 JPY = 2500 JPY"), "{text}");
    assert!(text.contains("Total: 2899 JPY"), "{text}");
    let dinar =
        PlacedOrder::from_envelope(&envelope("order.placed", order_id(), placed("KWD"))).expect("reads");
    assert!(dinar.text("Ada").contains("Total: 2.899 KWD"));
}

#[test]
fn the_short_order_id_is_the_random_end_of_the_uuid() {
    let order =
        PlacedOrder::from_envelope(&envelope("order.placed", order_id(), placed("EUR"))).expect("reads");
    assert_eq!(order.short_id(), "2e3f4a5b");
}

#[test]
fn unreadable_or_other_events_fail_permanently_without_echoing_values() {
    let mut data = placed("EUR");
    data["lines"][0]["quantity"] = json!("Secret quantity");
    let error = PlacedOrder::from_envelope(&envelope("order.placed", order_id(), data)).expect_err("refused");
    assert!(error.permanent);
    assert!(!error.message.contains("Secret"), "{}", error.message);
    let cancelled = envelope("order.cancelled", order_id(), json!({}));
    let error = PlacedOrder::from_envelope(&cancelled).expect_err("refused");
    assert!(error.permanent);
    assert!(error.message.contains("order.cancelled"));
}

#[test]
fn control_characters_in_names_cannot_break_the_layout() {
    let mut data = placed("EUR");
    data["lines"][0]["name"] = json!("Blue\r\nTotal: 0.00 EUR");
    let order = PlacedOrder::from_envelope(&envelope("order.placed", order_id(), data)).expect("reads");
    let text = order.text("Ada");
    assert_eq!(text.matches("Total:").count(), 2, "{text}");
    assert!(!text.contains("\r\nTotal: 0.00 EUR"), "{text}");
}
