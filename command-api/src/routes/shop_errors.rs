//! How shop failures are answered.

use crate::shop::ShopError;
use domain::order::OrderError;
use domain::product::ProductError;
use web::{ApiError, FieldError};

fn lines(indexes: &[usize], field: &str, message: &str) -> Vec<FieldError> {
    indexes
        .iter()
        .map(|i| FieldError::new(format!("items[{i}].{field}"), message))
        .collect()
}

impl From<ShopError> for ApiError {
    fn from(error: ShopError) -> Self {
        match error {
            ShopError::Product(ProductError::NotFound) => ApiError::not_found("product"),
            ShopError::Product(ProductError::AlreadyExists) => ApiError::conflict("product already exists"),
            ShopError::Product(ProductError::Retired) => ApiError::unprocessable(
                "PRODUCT_RETIRED",
                "the product is retired and can no longer be changed or ordered",
            ),
            ShopError::Product(ProductError::InvalidQuantity) => ApiError::unprocessable(
                "INVALID_QUANTITY",
                "the stock would leave its allowed range (0 to 1000000000)",
            ),
            ShopError::Product(ProductError::InsufficientStock { available, requested }) => {
                ApiError::unprocessable(
                    "INSUFFICIENT_STOCK",
                    format!("only {available} in stock, {requested} requested"),
                )
            }
            ShopError::Order(OrderError::NotFound) => ApiError::not_found("order"),
            ShopError::Order(OrderError::NotCancellable) => {
                ApiError::unprocessable("ORDER_NOT_CANCELLABLE", "only placed orders can be cancelled")
            }
            ShopError::Order(other) => ApiError::invalid_field("items", other.to_string()),
            ShopError::SkuTaken => ApiError::conflict("this SKU is already used by another product")
                .with_details(vec![FieldError::new("sku", "is already used")]),
            ShopError::UserNotFound => ApiError::not_found("user"),
            ShopError::UnknownProducts(indexes) => ApiError::unprocessable(
                "UNKNOWN_PRODUCT",
                "some products do not exist",
            )
            .with_details(lines(&indexes, "productId", "no such product")),
            ShopError::RetiredProducts(indexes) => ApiError::unprocessable(
                "PRODUCT_RETIRED",
                "some products are retired and can no longer be ordered",
            )
            .with_details(lines(&indexes, "productId", "is retired")),
            ShopError::CurrencyMismatch(indexes) => ApiError::unprocessable(
                "CURRENCY_MISMATCH",
                "all products of an order must have the same currency",
            )
            .with_details(lines(
                &indexes,
                "productId",
                "is priced in another currency than the first line",
            )),
            ShopError::InsufficientStock(short) => ApiError::unprocessable(
                "INSUFFICIENT_STOCK",
                "not enough stock for some lines; nothing was ordered",
            )
            .with_details(
                short
                    .iter()
                    .map(|(i, available)| {
                        FieldError::new(
                            format!("items[{i}].quantity"),
                            format!("only {available} in stock"),
                        )
                    })
                    .collect(),
            ),
            ShopError::Forbidden => ApiError::forbidden(),
            ShopError::Stale(current) => ApiError::precondition_failed(current),
            ShopError::Contention => ApiError::version_conflict(),
            other => ApiError::internal(other),
        }
    }
}
