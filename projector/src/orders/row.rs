//! One order of `orders_view` with its `order_lines_view` lines, how an order event
//! changes it, and the units it counts towards its products' `units_sold`.

use crate::store;
use domain::DomainEvent;
use domain::order::OrderEvent;
use eventstore::EventEnvelope;
pub use readmodels::orders::{CANCELLED, LINE_COLUMNS, OrderLineRow, OrderRow, PLACED, ROW_COLUMNS};
use std::collections::BTreeMap;
use uuid::Uuid;

/// The stream type this projection reads.
pub const STREAM_TYPE: &str = OrderEvent::STREAM_TYPE;

/// How `units_sold` changes per product when an order goes from `before` to `after`,
/// in product id order, without zeros.
pub fn units_delta(before: Option<&OrderRow>, after: &OrderRow) -> Vec<(Uuid, i64)> {
    let mut delta: BTreeMap<Uuid, i64> = BTreeMap::new();
    for (product, units) in after.units() {
        *delta.entry(product).or_default() += units;
    }
    for (product, units) in before.into_iter().flat_map(OrderRow::units) {
        *delta.entry(product).or_default() -= units;
    }
    delta.into_iter().filter(|(_, units)| *units != 0).collect()
}

/// Applies the next event of an order's stream (its version must be the row's + 1; the
/// caller checks). An event this code cannot read advances the version only, and is logged.
pub fn evolve(state: Option<OrderRow>, envelope: &EventEnvelope) -> Option<OrderRow> {
    let event = OrderEvent::from_stored(&envelope.event_type, envelope.schema_version, &envelope.data);
    if let Err(error) = &event {
        store::log_unreadable(envelope, error);
    }
    let Some(mut row) = state else {
        return match event {
            Ok(OrderEvent::Placed {
                user_id,
                lines,
                total_cents,
                currency,
            }) => Some(OrderRow {
                id: envelope.stream_id,
                user_id,
                status: PLACED.to_owned(),
                total_cents,
                currency: currency.as_str().to_owned(),
                line_count: i32::try_from(lines.len()).unwrap_or(i32::MAX),
                version: envelope.stream_version,
                placed_at: envelope.occurred_at,
                updated_at: envelope.occurred_at,
                cancelled_at: None,
                lines: lines
                    .into_iter()
                    .zip(0..)
                    .map(|(line, line_no)| OrderLineRow {
                        line_no,
                        product_id: line.product_id,
                        sku: line.sku,
                        name: line.name,
                        quantity: line.quantity,
                        unit_price_cents: line.unit_price_cents,
                        line_total_cents: line.line_total_cents,
                    })
                    .collect(),
            }),
            Ok(OrderEvent::Cancelled {}) | Err(_) => {
                store::log_before_creation(envelope);
                None
            }
        };
    };
    row.version = envelope.stream_version;
    row.updated_at = envelope.occurred_at;
    match event {
        Ok(OrderEvent::Cancelled {}) if row.status == PLACED => {
            row.status = CANCELLED.to_owned();
            row.cancelled_at = Some(envelope.occurred_at);
        }
        // A second placement or cancellation cannot be decided: the order stays as it is.
        Ok(OrderEvent::Placed { .. } | OrderEvent::Cancelled {}) | Err(_) => {}
    }
    Some(row)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::envelope;
    use serde_json::{Value, json};

    fn line(product: Uuid, quantity: i64) -> Value {
        json!({"productId": product, "sku": "SKU", "name": "Thing", "quantity": quantity,
               "unitPriceCents": 100, "lineTotalCents": quantity * 100})
    }

    fn placed(lines: Vec<Value>) -> EventEnvelope {
        let total: i64 = lines
            .iter()
            .map(|l| l["lineTotalCents"].as_i64().unwrap_or(0))
            .sum();
        envelope(
            1,
            "order.placed",
            json!({"userId": Uuid::now_v7(), "lines": lines, "totalCents": total, "currency": "EUR"}),
        )
    }

    #[test]
    fn placing_counts_units_and_cancelling_takes_them_back() {
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let placed = evolve(None, &placed(vec![line(b, 2), line(a, 3)])).expect("a row");
        assert_eq!(
            (placed.status.as_str(), placed.line_count, placed.total_cents),
            ("placed", 2, 500)
        );
        assert_eq!(placed.lines[1].line_no, 1);
        assert_eq!(units_delta(None, &placed), vec![(a, 3), (b, 2)]);

        let cancelled =
            evolve(Some(placed.clone()), &envelope(2, "order.cancelled", json!({}))).expect("a row");
        assert_eq!(cancelled.status, "cancelled");
        assert!(cancelled.cancelled_at.is_some());
        assert_eq!(units_delta(Some(&placed), &cancelled), vec![(a, -3), (b, -2)]);
        assert_eq!(units_delta(None, &cancelled), vec![]);
    }

    #[test]
    fn a_second_cancellation_changes_nothing_but_the_version() {
        let placed = evolve(None, &placed(vec![line(Uuid::from_u128(1), 1)]));
        let once = evolve(placed, &envelope(2, "order.cancelled", json!({}))).expect("a row");
        let twice = evolve(Some(once.clone()), &envelope(3, "order.cancelled", json!({}))).expect("a row");
        assert_eq!((twice.version, twice.cancelled_at), (3, once.cancelled_at));
        assert_eq!(units_delta(Some(&once), &twice), vec![]);
    }

    #[test]
    fn a_cancellation_before_placement_creates_nothing() {
        assert!(evolve(None, &envelope(1, "order.cancelled", json!({}))).is_none());
    }
}
