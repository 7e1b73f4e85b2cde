//! Product events: a public contract (JSON Schemas in `schemas/events/`).

use super::values::{Description, ProductName, Sku};
use crate::money::{Cents, Currency};
use uuid::Uuid;

crate::events! {
    /// Something that happened to a product.
    pub enum ProductEvent in "product", upcast = crate::event::current_only {
        /// `product.created` v1.
        Created = "product.created" version 1 {
            /// SKU (upper case).
            sku: Sku,
            /// Name.
            name: ProductName,
            /// Description.
            description: Description,
            /// Price in minor units.
            price_cents: Cents,
            /// ISO 4217 currency.
            currency: Currency,
            /// Initial stock.
            stock: i64,
        },
        /// `product.updated` v1: only the fields that changed are present.
        Updated = "product.updated" version 1 {
            /// New name.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            name: Option<ProductName>,
            /// New description.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            description: Option<Description>,
            /// New price.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            price_cents: Option<Cents>,
        },
        /// `product.restocked` v1.
        Restocked = "product.restocked" version 1 {
            /// Units added.
            quantity: i64,
            /// Stock after.
            stock: i64,
        },
        /// `product.retired` v1: no longer orderable.
        Retired = "product.retired" version 1 {},
        /// `product.stock_reserved` v1: an order took units.
        StockReserved = "product.stock_reserved" version 1 {
            /// The order.
            order_id: Uuid,
            /// Units taken.
            quantity: i64,
            /// Stock after.
            stock: i64,
        },
        /// `product.stock_released` v1: a cancelled order gave units back.
        StockReleased = "product.stock_released" version 1 {
            /// The order.
            order_id: Uuid,
            /// Units given back.
            quantity: i64,
            /// Stock after.
            stock: i64,
        },
    }
}
