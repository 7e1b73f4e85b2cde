//! The products read model: table `products_view` as the projector writes it
//! ([`ProductRow`]) and a product as readers see it ([`ProductView`], with its review
//! statistics from `product_review_stats`), and its Redis document
//! (`<prefix>:product:<id>`, see [`crate::cache`]), versioned by the product's stream and
//! by the review events applied to its statistics.

use crate::cache::{Cached, DocumentCache, Entry, Version};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use uuid::Uuid;

/// A product as stored in `products_view`.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ProductRow {
    /// Product id (the stream id).
    pub id: Uuid,
    /// SKU, upper case.
    pub sku: String,
    /// Name.
    pub name: String,
    /// Description (may be empty).
    pub description: String,
    /// Price in minor units.
    pub price_cents: i64,
    /// ISO 4217 currency.
    pub currency: String,
    /// Units in stock after the last applied event.
    pub stock: i64,
    /// Whether it can no longer be ordered.
    pub retired: bool,
    /// Units in placed (not cancelled) orders. Maintained by the orders projection in
    /// Postgres, never by this fold: the value here is what was read or computed in SQL.
    pub units_sold: i64,
    /// Stream version of the last event applied: the projection's checkpoint for this product.
    pub version: i64,
    /// When the product was created.
    pub created_at: DateTime<Utc>,
    /// When the last applied event occurred.
    pub updated_at: DateTime<Utc>,
}

/// Columns of `products_view` in [`ProductRow`] order.
pub const ROW_COLUMNS: &str = "id, sku, name, description, price_cents, currency, stock, retired, \
     units_sold, version, created_at, updated_at";

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

/// The tables [`PRODUCT_SOURCE`] reads (for the query API's page cache).
pub const TABLES: &[&str] = &["products_view", "product_review_stats"];

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

/// The products of `ids`, retired or not (unknown ids are left out).
pub async fn find_products(pool: &PgPool, ids: &[Uuid]) -> Result<Vec<ProductView>, sqlx::Error> {
    let sql = format!("SELECT {PRODUCT_COLUMNS} FROM {PRODUCT_SOURCE} WHERE id = ANY($1)");
    sqlx::query_as::<_, ProductView>(&sql)
        .bind(ids)
        .fetch_all(pool)
        .await
}

/// The Redis documents of products.
pub type ProductCache = DocumentCache<ProductView>;

impl Cached for ProductView {
    const KIND: &'static str = "product";
    const TABLE: &'static str = "products_view";

    fn id(&self) -> Uuid {
        self.id
    }

    /// Review events change the statistics without the product's stream: they are the
    /// derived counter, so neither kind of change can be overwritten by an older read.
    fn version(&self) -> Version {
        Version {
            stream: self.version,
            derived: self.reviews_version,
        }
    }

    fn restore(&mut self, version: Version) {
        self.reviews_version = version.derived;
    }

    async fn load(pool: &PgPool, ids: &[Uuid]) -> Result<Vec<Entry<Self>>, sqlx::Error> {
        Ok(find_products(pool, ids)
            .await?
            .into_iter()
            .map(Entry::Live)
            .collect())
    }
}
