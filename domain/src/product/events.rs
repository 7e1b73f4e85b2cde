//! Product events: a public contract (JSON Schemas in `schemas/events/`).

use super::values::{Description, ProductName, Sku};
use crate::event::{DomainEvent, EventDecodeError};
use crate::money::{Cents, Currency};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

/// Something that happened to a product.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum ProductEvent {
    /// `product.created` v1.
    Created {
        /// SKU (upper case).
        sku: Sku,
        /// Name.
        name: ProductName,
        /// Description.
        description: Description,
        /// Price in minor units.
        #[serde(rename = "priceCents")]
        price_cents: Cents,
        /// ISO 4217 currency.
        currency: Currency,
        /// Initial stock.
        stock: i64,
    },
    /// `product.updated` v1: only the fields that changed are present.
    Updated {
        /// New name.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<ProductName>,
        /// New description.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        description: Option<Description>,
        /// New price.
        #[serde(default, rename = "priceCents", skip_serializing_if = "Option::is_none")]
        price_cents: Option<Cents>,
    },
    /// `product.restocked` v1.
    Restocked {
        /// Units added.
        quantity: i64,
        /// Stock after.
        stock: i64,
    },
    /// `product.retired` v1: no longer orderable.
    Retired {},
    /// `product.stock_reserved` v1: an order took units.
    StockReserved {
        /// The order.
        #[serde(rename = "orderId")]
        order_id: Uuid,
        /// Units taken.
        quantity: i64,
        /// Stock after.
        stock: i64,
    },
    /// `product.stock_released` v1: a cancelled order gave units back.
    StockReleased {
        /// The order.
        #[serde(rename = "orderId")]
        order_id: Uuid,
        /// Units given back.
        quantity: i64,
        /// Stock after.
        stock: i64,
    },
}

fn read<T: DeserializeOwned>(event_type: &str, data: &Value) -> Result<T, EventDecodeError> {
    T::deserialize(data).map_err(|e| EventDecodeError::Malformed {
        event_type: event_type.to_owned(),
        reason: e.to_string(),
    })
}

/// Payload shapes, one per type, so decoding is exact (the enum above is untagged).
mod shapes {
    use super::*;

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    pub struct Created {
        pub sku: Sku,
        pub name: ProductName,
        pub description: Description,
        pub price_cents: Cents,
        pub currency: Currency,
        pub stock: i64,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    pub struct Updated {
        #[serde(default)]
        pub name: Option<ProductName>,
        #[serde(default)]
        pub description: Option<Description>,
        #[serde(default)]
        pub price_cents: Option<Cents>,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Restocked {
        pub quantity: i64,
        pub stock: i64,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Empty {}

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    pub struct Stock {
        pub order_id: Uuid,
        pub quantity: i64,
        pub stock: i64,
    }
}

impl ProductEvent {
    /// Every event type of the product stream with its current schema version.
    pub const TYPES: [(&'static str, i32); 6] = [
        ("product.created", 1),
        ("product.updated", 1),
        ("product.restocked", 1),
        ("product.retired", 1),
        ("product.stock_reserved", 1),
        ("product.stock_released", 1),
    ];
}

impl DomainEvent for ProductEvent {
    const STREAM_TYPE: &'static str = "product";

    fn event_type(&self) -> &'static str {
        match self {
            ProductEvent::Created { .. } => "product.created",
            ProductEvent::Updated { .. } => "product.updated",
            ProductEvent::Restocked { .. } => "product.restocked",
            ProductEvent::Retired {} => "product.retired",
            ProductEvent::StockReserved { .. } => "product.stock_reserved",
            ProductEvent::StockReleased { .. } => "product.stock_released",
        }
    }

    fn schema_version(&self) -> i32 {
        1
    }

    fn to_data(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    fn from_stored(event_type: &str, schema_version: i32, data: &Value) -> Result<Self, EventDecodeError> {
        if schema_version != 1 {
            return Err(EventDecodeError::UnsupportedVersion {
                event_type: event_type.to_owned(),
                version: schema_version,
            });
        }
        Ok(match event_type {
            "product.created" => {
                let v: shapes::Created = read(event_type, data)?;
                ProductEvent::Created {
                    sku: v.sku,
                    name: v.name,
                    description: v.description,
                    price_cents: v.price_cents,
                    currency: v.currency,
                    stock: v.stock,
                }
            }
            "product.updated" => {
                let v: shapes::Updated = read(event_type, data)?;
                ProductEvent::Updated {
                    name: v.name,
                    description: v.description,
                    price_cents: v.price_cents,
                }
            }
            "product.restocked" => {
                let v: shapes::Restocked = read(event_type, data)?;
                ProductEvent::Restocked {
                    quantity: v.quantity,
                    stock: v.stock,
                }
            }
            "product.retired" => {
                read::<shapes::Empty>(event_type, data)?;
                ProductEvent::Retired {}
            }
            "product.stock_reserved" => {
                let v: shapes::Stock = read(event_type, data)?;
                ProductEvent::StockReserved {
                    order_id: v.order_id,
                    quantity: v.quantity,
                    stock: v.stock,
                }
            }
            "product.stock_released" => {
                let v: shapes::Stock = read(event_type, data)?;
                ProductEvent::StockReleased {
                    order_id: v.order_id,
                    quantity: v.quantity,
                    stock: v.stock,
                }
            }
            other => return Err(EventDecodeError::UnknownType(other.to_owned())),
        })
    }
}
