//! The SQL behind the product list: live (not retired) products, filtered, in page or
//! keyset mode on `(sort column, id)`, which the `products_view` indexes serve.

use super::{PRODUCT_COLUMNS, PRODUCT_SOURCE, ProductListRequest, ProductScope, ProductSort, ProductView};
use crate::pagination::sql::{contains_pattern, fetch_window, push_after, push_order_by};
use crate::pagination::{Listing, Position, SortKey};
use sqlx::{PgPool, Postgres, QueryBuilder};

/// Runs a list request: one query in cursor mode, two (page and count) in page mode.
pub async fn list_products(
    pool: &PgPool,
    request: &ProductListRequest,
) -> Result<Listing<ProductView>, sqlx::Error> {
    let scope = &request.scope;
    let mut select = QueryBuilder::<Postgres>::new(format!("SELECT {PRODUCT_COLUMNS}"));
    push_filters(&mut select, scope);
    let column = scope.sort.column();
    if let Some(after) = request.window.after() {
        push_after(&mut select, column, scope.order, after);
    }
    push_order_by(&mut select, column, scope.order);
    let mut count = QueryBuilder::<Postgres>::new("SELECT count(*)");
    push_filters(&mut count, scope);
    let mut conn = pool.acquire().await?;
    fetch_window(&mut conn, select, count, &request.window, |product| {
        position_of(product, scope.sort)
    })
    .await
}

/// `FROM products_view WHERE NOT retired [AND <each filter>]`.
fn push_filters(query: &mut QueryBuilder<'_, Postgres>, scope: &ProductScope) {
    query
        .push(" FROM ")
        .push(PRODUCT_SOURCE)
        .push(" WHERE NOT retired");
    if let Some(q) = &scope.q {
        let pattern = contains_pattern(q);
        query.push(" AND (");
        for (i, column) in ["name", "sku", "description"].into_iter().enumerate() {
            if i > 0 {
                query.push(" OR ");
            }
            query
                .push(column)
                .push(" ILIKE ")
                .push_bind(pattern.clone())
                .push(" ESCAPE '\\'");
        }
        query.push(")");
    }
    if let Some(min) = scope.min_price_cents {
        query.push(" AND price_cents >= ").push_bind(min);
    }
    if let Some(max) = scope.max_price_cents {
        query.push(" AND price_cents <= ").push_bind(max);
    }
    match scope.in_stock {
        Some(true) => query.push(" AND stock > 0"),
        Some(false) => query.push(" AND stock = 0"),
        None => query,
    };
}

/// Where a row stands in a listing sorted by `sort`.
fn position_of(product: &ProductView, sort: ProductSort) -> Position {
    let key = match sort {
        ProductSort::CreatedAt => SortKey::Time(product.created_at),
        ProductSort::PriceCents => SortKey::Int(product.price_cents),
        ProductSort::Name => SortKey::Text(product.name.clone()),
    };
    Position { key, id: product.id }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_filter_is_a_bind_parameter() {
        let scope = ProductScope {
            q: Some("x".into()),
            min_price_cents: Some(1),
            max_price_cents: Some(2),
            in_stock: Some(false),
            ..Default::default()
        };
        let mut query = QueryBuilder::<Postgres>::new("SELECT 1");
        push_filters(&mut query, &scope);
        assert_eq!(
            query.into_sql(),
            "SELECT 1 FROM products_view LEFT JOIN product_review_stats stats \
             ON stats.product_id = products_view.id WHERE NOT retired AND (name ILIKE $1 ESCAPE '\\' \
             OR sku ILIKE $2 ESCAPE '\\' OR description ILIKE $3 ESCAPE '\\') \
             AND price_cents >= $4 AND price_cents <= $5 AND stock = 0"
        );
    }
}
