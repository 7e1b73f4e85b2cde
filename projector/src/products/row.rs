//! One row of `products_view` and how a product event changes it: a pure fold shared by
//! the live projection and the rebuild.

use crate::store;
use domain::DomainEvent;
use domain::product::ProductEvent;
use eventstore::EventEnvelope;
pub use readmodels::products::{ProductRow, ROW_COLUMNS};

/// The stream type this projection reads.
pub const STREAM_TYPE: &str = ProductEvent::STREAM_TYPE;

/// Applies the next event of a product's stream (its version must be the row's + 1; the
/// caller checks). An event this code cannot read advances the version only, and is logged.
pub fn evolve(state: Option<ProductRow>, envelope: &EventEnvelope) -> Option<ProductRow> {
    let event = ProductEvent::from_stored(&envelope.event_type, envelope.schema_version, &envelope.data);
    if let Err(error) = &event {
        store::log_unreadable(envelope, error);
    }
    let Some(mut row) = state else {
        return match event {
            Ok(ProductEvent::Created {
                sku,
                name,
                description,
                price_cents,
                currency,
                stock,
            }) => Some(ProductRow {
                id: envelope.stream_id,
                sku: sku.as_str().to_owned(),
                name: name.as_str().to_owned(),
                description: description.as_str().to_owned(),
                price_cents: price_cents.get(),
                currency: currency.as_str().to_owned(),
                stock,
                retired: false,
                units_sold: 0,
                version: envelope.stream_version,
                created_at: envelope.occurred_at,
                updated_at: envelope.occurred_at,
            }),
            Ok(
                ProductEvent::Updated { .. }
                | ProductEvent::Restocked { .. }
                | ProductEvent::StockReserved { .. }
                | ProductEvent::StockReleased { .. }
                | ProductEvent::Retired {},
            )
            | Err(_) => {
                store::log_before_creation(envelope);
                None
            }
        };
    };
    row.version = envelope.stream_version;
    row.updated_at = envelope.occurred_at;
    match event {
        // A second creation cannot be decided; read as the domain reads it.
        Ok(ProductEvent::Created {
            sku,
            name,
            description,
            price_cents,
            currency,
            stock,
        }) => {
            row.sku = sku.as_str().to_owned();
            row.name = name.as_str().to_owned();
            row.description = description.as_str().to_owned();
            row.price_cents = price_cents.get();
            row.currency = currency.as_str().to_owned();
            row.stock = stock;
            row.retired = false;
        }
        Ok(ProductEvent::Updated {
            name,
            description,
            price_cents,
        }) => {
            if let Some(name) = name {
                row.name = name.as_str().to_owned();
            }
            if let Some(description) = description {
                row.description = description.as_str().to_owned();
            }
            if let Some(price) = price_cents {
                row.price_cents = price.get();
            }
        }
        Ok(
            ProductEvent::Restocked { stock, .. }
            | ProductEvent::StockReserved { stock, .. }
            | ProductEvent::StockReleased { stock, .. },
        ) => row.stock = stock,
        Ok(ProductEvent::Retired {}) => row.retired = true,
        Err(_) => {}
    }
    Some(row)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::envelope;
    use serde_json::json;
    use uuid::Uuid;

    fn created() -> EventEnvelope {
        envelope(
            1,
            "product.created",
            json!({"sku": "MUG-1", "name": "Mug", "description": "", "priceCents": 1250,
                   "currency": "EUR", "stock": 10}),
        )
    }

    #[test]
    fn a_product_lives_through_updates_stock_changes_and_retirement() {
        let history = [
            created(),
            envelope(2, "product.updated", json!({"priceCents": 1500})),
            envelope(3, "product.restocked", json!({"quantity": 5, "stock": 15})),
            envelope(
                4,
                "product.stock_reserved",
                json!({"orderId": Uuid::nil(), "quantity": 3, "stock": 12}),
            ),
            envelope(
                5,
                "product.stock_released",
                json!({"orderId": Uuid::nil(), "quantity": 1, "stock": 13}),
            ),
            envelope(6, "product.retired", json!({})),
        ];
        let row = history.iter().fold(None, evolve).expect("a row");
        assert_eq!(
            (
                row.name.as_str(),
                row.price_cents,
                row.stock,
                row.retired,
                row.version
            ),
            ("Mug", 1500, 13, true, 6)
        );
        assert_eq!(row.created_at, history[0].occurred_at);
        assert_eq!(row.updated_at, history[5].occurred_at);
    }

    #[test]
    fn unknown_events_advance_the_version_only() {
        let before = evolve(None, &created()).expect("a row");
        let after = evolve(Some(before.clone()), &envelope(2, "product.renamed", json!({}))).expect("a row");
        assert_eq!(
            after,
            ProductRow {
                version: 2,
                updated_at: after.updated_at,
                ..before
            }
        );
    }

    #[test]
    fn an_event_before_creation_creates_nothing() {
        assert!(evolve(None, &envelope(1, "product.retired", json!({}))).is_none());
    }
}
