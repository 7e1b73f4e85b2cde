//! Request and response bodies of the shop commands.

use crate::shop::{OrderOutcome, ProductOutcome};
use domain::order::OrderLine;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// `POST /api/v1/products`.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CreateProductRequest {
    /// 1 to 64 letters, digits, `-`, `_`, `.`; unique, case-insensitively.
    #[schema(pattern = "^[A-Za-z0-9._-]{1,64}$")]
    pub sku: String,
    /// 1 to 200 characters.
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    /// Up to 2000 characters.
    #[serde(default)]
    #[schema(max_length = 2000)]
    pub description: String,
    /// Integer minor units (cents), 0 to 10^10. Never a float.
    #[schema(minimum = 0, maximum = 10_000_000_000_i64)]
    pub price_cents: i64,
    /// ISO 4217 code, e.g. `EUR`.
    #[schema(pattern = "^[A-Z]{3}$")]
    pub currency: String,
    /// Units in stock, 0 or more.
    #[schema(minimum = 0)]
    pub stock: i64,
}

/// `PATCH /api/v1/products/{id}`: at least one field.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct UpdateProductRequest {
    /// New name.
    pub name: Option<String>,
    /// New description.
    pub description: Option<String>,
    /// New price in minor units.
    pub price_cents: Option<i64>,
}

/// `POST /api/v1/products/{id}/restock`.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RestockRequest {
    /// Units to add, more than 0.
    #[schema(minimum = 1)]
    pub quantity: i64,
}

/// One line of `POST /api/v1/users/{id}/orders`.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct OrderItem {
    /// The product.
    pub product_id: Uuid,
    /// Units, 1 to 1000.
    #[schema(minimum = 1, maximum = 1000)]
    pub quantity: i64,
}

/// `POST /api/v1/users/{id}/orders`.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlaceOrderRequest {
    /// 1 to 50 lines, each product at most once.
    #[schema(min_items = 1, max_items = 50)]
    pub items: Vec<OrderItem>,
}

/// A product as written.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProductResponse {
    /// Id.
    pub id: Uuid,
    /// SKU (upper case).
    pub sku: String,
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Price in minor units.
    pub price_cents: i64,
    /// ISO 4217 currency.
    pub currency: String,
    /// Units in stock.
    pub stock: i64,
    /// No longer orderable.
    pub retired: bool,
    /// Aggregate version (also the `ETag`).
    pub version: i64,
    /// Position of the last event written; `null` when nothing changed.
    pub position: Option<i64>,
}

impl From<&ProductOutcome> for ProductResponse {
    fn from(outcome: &ProductOutcome) -> Self {
        let p = &outcome.product;
        Self {
            id: outcome.id,
            sku: p.sku.to_string(),
            name: p.name.to_string(),
            description: p.description.as_str().to_owned(),
            price_cents: p.price_cents.get(),
            currency: p.currency.to_string(),
            stock: p.stock,
            retired: p.retired,
            version: outcome.version,
            position: outcome.position,
        }
    }
}

/// An order as written.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderResponse {
    /// Id.
    pub id: Uuid,
    /// Owner.
    pub user_id: Uuid,
    /// `placed` or `cancelled`.
    pub status: String,
    /// Lines priced as at placing.
    #[schema(value_type = Vec<Object>)]
    pub lines: Vec<OrderLine>,
    /// Sum of line totals, minor units.
    pub total_cents: i64,
    /// ISO 4217 currency.
    pub currency: String,
    /// Aggregate version (also the `ETag`).
    pub version: i64,
    /// Position of the order event.
    pub position: i64,
}

impl From<&OrderOutcome> for OrderResponse {
    fn from(outcome: &OrderOutcome) -> Self {
        let o = &outcome.order;
        Self {
            id: outcome.id,
            user_id: o.user_id,
            status: serde_json::to_value(o.status)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
            lines: o.lines.clone(),
            total_cents: o.total_cents,
            currency: o.currency.to_string(),
            version: outcome.version,
            position: outcome.position,
        }
    }
}
