//! The query strings of `GET /api/v1/products` and `GET /api/v1/products/top`, and their
//! validation. Every refusal names the parameters at fault (400 `VALIDATION_ERROR`).

use super::{ProductListRequest, ProductScope, ProductSort};
use crate::pagination::{MAX_PAGE_SIZE, Paging, SortOrder, search_text};
use serde::Deserialize;
use web::FieldError;

/// Best sellers returned when `limit` is not given.
pub const DEFAULT_TOP_LIMIT: u32 = 10;

/// Query parameters of the product list. Cursor mode when `cursor` or `limit` is
/// present, page mode otherwise; the two cannot be mixed.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct ListProductsParams {
    /// Page mode: page number, from 1 (default 1).
    #[param(minimum = 1)]
    pub page: Option<u32>,
    /// Page mode: products per page, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub per_page: Option<u32>,
    /// Cursor mode: `nextCursor` of the previous page; omit for the first page. Only
    /// valid with the same `sort`, `order` and filters as the page it came from.
    pub cursor: Option<String>,
    /// Cursor mode: products per page, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// Case-insensitive substring of the name, SKU or description (at most 100
    /// characters; `%` and `_` match themselves).
    #[param(max_length = 100)]
    pub q: Option<String>,
    /// Only products costing at least this much (minor units, ≥ 0).
    #[param(minimum = 0)]
    pub min_price_cents: Option<i64>,
    /// Only products costing at most this much (minor units, ≥ 0 and ≥ `minPriceCents`).
    #[param(minimum = 0)]
    pub max_price_cents: Option<i64>,
    /// `true`: only products in stock; `false`: only sold-out products.
    pub in_stock: Option<bool>,
    /// Sort field (default `createdAt`); ties are ordered by id.
    #[param(inline)]
    pub sort: Option<ProductSort>,
    /// Sort direction (default `asc`).
    #[param(inline)]
    pub order: Option<SortOrder>,
}

impl ListProductsParams {
    /// Checks ranges and combinations and decodes the cursor; on refusal, every
    /// parameter at fault.
    pub fn validate(self) -> Result<ProductListRequest, Vec<FieldError>> {
        let mut errors = Vec::new();
        for (field, value) in [
            ("minPriceCents", self.min_price_cents),
            ("maxPriceCents", self.max_price_cents),
        ] {
            if value.is_some_and(|cents| cents < 0) {
                errors.push(FieldError::new(field, "must be at least 0"));
            }
        }
        if let (Some(min), Some(max)) = (self.min_price_cents, self.max_price_cents)
            && min > max
        {
            errors.push(FieldError::new(
                "minPriceCents",
                "must not be greater than maxPriceCents",
            ));
        }
        let scope = ProductScope {
            sort: self.sort.unwrap_or_default(),
            order: self.order.unwrap_or_default(),
            q: search_text(self.q, &mut errors),
            min_price_cents: self.min_price_cents,
            max_price_cents: self.max_price_cents,
            in_stock: self.in_stock,
        };
        let paging = Paging {
            page: self.page,
            per_page: self.per_page,
            cursor: self.cursor.as_deref(),
            limit: self.limit,
        };
        match paging.window(&scope, &mut errors) {
            Some(window) if errors.is_empty() => Ok(ProductListRequest { scope, window }),
            _ => Err(errors),
        }
    }
}

/// Query parameters of the best sellers.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct TopProductsParams {
    /// How many best sellers, 1 to 100 (default 10).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
}

impl TopProductsParams {
    /// The number of best sellers asked for.
    pub fn validate(self) -> Result<u32, Vec<FieldError>> {
        let limit = self.limit.unwrap_or(DEFAULT_TOP_LIMIT);
        if (1..=MAX_PAGE_SIZE).contains(&limit) {
            Ok(limit)
        } else {
            Err(vec![FieldError::new(
                "limit",
                format!("must be between 1 and {MAX_PAGE_SIZE}"),
            )])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cursor;
    use crate::pagination::{Position, SortKey, Window};
    use uuid::Uuid;

    fn refused_fields(params: ListProductsParams) -> Vec<String> {
        let errors = params.validate().expect_err("should be refused");
        errors.into_iter().map(|error| error.field).collect()
    }

    #[test]
    fn no_parameters_mean_the_first_page_of_twenty_by_creation_time() {
        let request = ListProductsParams::default().validate().expect("valid");
        assert_eq!(request.scope, ProductScope::default());
        assert_eq!(
            request.window,
            Window::Page {
                page: 1,
                per_page: 20
            }
        );
    }

    #[test]
    fn prices_must_be_non_negative_and_ordered() {
        let params = |min, max| ListProductsParams {
            min_price_cents: min,
            max_price_cents: max,
            ..Default::default()
        };
        assert_eq!(refused_fields(params(Some(-1), None)), ["minPriceCents"]);
        assert_eq!(refused_fields(params(None, Some(-1))), ["maxPriceCents"]);
        assert_eq!(refused_fields(params(Some(5), Some(4))), ["minPriceCents"]);
        assert!(params(Some(5), Some(5)).validate().is_ok());
        assert!(params(Some(0), None).validate().is_ok());
    }

    #[test]
    fn a_cursor_is_bound_to_the_price_filters() {
        let scope = ProductScope {
            sort: ProductSort::PriceCents,
            min_price_cents: Some(100),
            ..Default::default()
        };
        let after = Position {
            key: SortKey::Int(150),
            id: Uuid::now_v7(),
        };
        let raw = cursor::encode(&scope, &after);
        let with = |min| ListProductsParams {
            cursor: Some(raw.clone()),
            sort: Some(ProductSort::PriceCents),
            min_price_cents: min,
            ..Default::default()
        };
        assert_eq!(
            with(Some(100)).validate().expect("valid").window.after(),
            Some(&after)
        );
        assert_eq!(refused_fields(with(Some(101))), ["cursor"]);
        assert_eq!(refused_fields(with(None)), ["cursor"]);
    }

    #[test]
    fn top_limit_is_between_one_and_a_hundred_default_ten() {
        let top = |limit| TopProductsParams { limit }.validate();
        assert_eq!(top(None), Ok(10));
        assert_eq!(top(Some(100)), Ok(100));
        for limit in [0, 101] {
            let fields: Vec<String> = top(Some(limit))
                .expect_err("refused")
                .into_iter()
                .map(|e| e.field)
                .collect();
            assert_eq!(fields, ["limit"]);
        }
    }
}
