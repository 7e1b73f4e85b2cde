//! The product catalogue as readers see it, from the `products_view` read model (filled
//! by the projector): single products, the public list ([`params`], [`sql`]) and the
//! best sellers ([`top`]).

pub mod params;
pub mod sql;
pub mod top;

use crate::cursor::CursorScope;
use crate::pagination::{SortKey, SortOrder, Window};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use uuid::Uuid;

pub use params::{ListProductsParams, TopProductsParams};
pub use sql::list_products;
pub use top::{BestSellers, TopProduct};

/// A product as readers see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProductView {
    /// Product id.
    pub id: Uuid,
    /// Stock keeping unit (upper case).
    pub sku: String,
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Price in minor units of `currency`.
    pub price_cents: i64,
    /// ISO 4217 currency code.
    pub currency: String,
    /// Units in stock.
    pub stock: i64,
    /// No longer orderable (and no longer listed); still readable by id.
    pub retired: bool,
    /// Stream version this view reflects (also the `ETag`).
    pub version: i64,
    /// When the product was created.
    pub created_at: DateTime<Utc>,
    /// When the product last changed.
    pub updated_at: DateTime<Utc>,
}

/// Columns of `products_view` in [`ProductView`] order.
pub const PRODUCT_COLUMNS: &str =
    "id, sku, name, description, price_cents, currency, stock, retired, version, created_at, updated_at";

/// The product with this id, retired or not; `None` when unknown.
pub async fn find_product(pool: &PgPool, id: Uuid) -> Result<Option<ProductView>, sqlx::Error> {
    let sql = format!("SELECT {PRODUCT_COLUMNS} FROM products_view WHERE id = $1");
    sqlx::query_as::<_, ProductView>(&sql)
        .bind(id)
        .fetch_optional(pool)
        .await
}

/// Whitelisted sort fields of the product list.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum ProductSort {
    /// Creation time (default).
    #[default]
    CreatedAt,
    /// Price.
    PriceCents,
    /// Name.
    Name,
}

impl ProductSort {
    /// The `products_view` column (a closed set, safe to write into SQL).
    pub fn column(self) -> &'static str {
        match self {
            ProductSort::CreatedAt => "created_at",
            ProductSort::PriceCents => "price_cents",
            ProductSort::Name => "name",
        }
    }
}

/// What the product list shows and in which order: everything a cursor is bound to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProductScope {
    /// Sort field; ties are broken by id in the same direction.
    pub sort: ProductSort,
    /// Sort direction.
    pub order: SortOrder,
    /// Case-insensitive substring of name, SKU or description (taken literally).
    pub q: Option<String>,
    /// Lowest price, inclusive.
    pub min_price_cents: Option<i64>,
    /// Highest price, inclusive.
    pub max_price_cents: Option<i64>,
    /// `true`: only products in stock; `false`: only sold-out ones.
    pub in_stock: Option<bool>,
}

impl CursorScope for ProductScope {
    const LIST: &'static str = "products";

    fn fits(&self, key: &SortKey) -> bool {
        matches!(
            (key, self.sort),
            (SortKey::Time(_), ProductSort::CreatedAt)
                | (SortKey::Int(_), ProductSort::PriceCents)
                | (SortKey::Text(_), ProductSort::Name)
        )
    }
}

/// A validated product list request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductListRequest {
    /// Filters and order.
    pub scope: ProductScope,
    /// Which slice.
    pub window: Window,
}
