//! The product catalogue as readers see it, from the `products_view` read model (filled
//! by the projector): single products, the public list ([`params`], [`sql`]) and the
//! best sellers ([`top`]).

pub mod params;
pub mod sql;
pub mod top;

use crate::cursor::CursorScope;
use crate::pagination::{SortKey, SortOrder, Window};
use serde::{Deserialize, Serialize};

pub use params::{ListProductsParams, TopProductsParams};
pub use readmodels::products::{PRODUCT_COLUMNS, PRODUCT_SOURCE, ProductView, find_product};
pub use sql::list_products;
pub use top::{BestSellers, TopProduct};

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
