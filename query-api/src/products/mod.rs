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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
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
    /// Live reviews of the product.
    pub review_count: i64,
    /// Their mean rating, rounded to two decimals; `null` when there is none.
    pub average_rating: Option<f64>,
    /// Review events applied to the product's statistics: changes `reviewCount` and
    /// `averageRating` without changing `version`, so it is part of the `ETag`.
    #[serde(skip)]
    pub reviews_version: i64,
}

impl ProductView {
    /// The `ETag` value: the stream version, followed by `.<reviews version>` once the
    /// product has been reviewed (the command API's `If-Match` reads the part before the dot).
    pub fn etag(&self) -> String {
        if self.reviews_version == 0 {
            self.version.to_string()
        } else {
            format!("{}.{}", self.version, self.reviews_version)
        }
    }
}

/// Columns of `products_view` and its review statistics in [`ProductView`] order.
pub const PRODUCT_COLUMNS: &str = "id, sku, name, description, price_cents, currency, stock, retired, products_view.version, \
     created_at, updated_at, coalesce(stats.review_count, 0) AS review_count, \
     CASE WHEN stats.review_count > 0 \
          THEN round(stats.rating_sum::numeric / stats.review_count, 2)::float8 END AS average_rating, \
     coalesce(stats.version, 0) AS reviews_version";

/// The product read model with its review statistics.
pub const PRODUCT_SOURCE: &str =
    "products_view LEFT JOIN product_review_stats stats ON stats.product_id = products_view.id";

/// The product with this id, retired or not; `None` when unknown.
pub async fn find_product(pool: &PgPool, id: Uuid) -> Result<Option<ProductView>, sqlx::Error> {
    let sql = format!("SELECT {PRODUCT_COLUMNS} FROM {PRODUCT_SOURCE} WHERE id = $1");
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
