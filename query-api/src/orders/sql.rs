//! The SQL behind the order reads. No N+1: a page of orders costs one query for the
//! orders (plus the count in page mode) and ONE query for the lines of all of them
//! (`order_id = ANY($1)`), whatever the page size; all on one pooled connection.

use super::{OrderLineView, OrderListRequest, OrderScope, OrderView};
use crate::pagination::sql::{fetch_window, push_after, push_order_by};
use crate::pagination::{Listing, Position, SortKey};
use chrono::{DateTime, Utc};
use domain::order::OrderStatus;
use sqlx::{PgConnection, PgPool, Postgres, QueryBuilder};
use std::collections::HashMap;
use uuid::Uuid;

/// Columns of `orders_view` in [`OrderRow`] order.
const ORDER_COLUMNS: &str = "id, user_id, status, total_cents, currency, placed_at, cancelled_at, version";

/// An `orders_view` row, before its lines are attached.
#[derive(sqlx::FromRow)]
struct OrderRow {
    id: Uuid,
    user_id: Uuid,
    status: String,
    total_cents: i64,
    currency: String,
    placed_at: DateTime<Utc>,
    cancelled_at: Option<DateTime<Utc>>,
    version: i64,
}

impl OrderRow {
    fn with_lines(self, lines: Vec<OrderLineView>) -> OrderView {
        OrderView {
            order_id: self.id,
            user_id: self.user_id,
            status: self.status,
            total_cents: self.total_cents,
            currency: self.currency,
            placed_at: self.placed_at,
            cancelled_at: self.cancelled_at,
            version: self.version,
            lines,
        }
    }
}

/// One page of a user's orders with their lines: two queries in cursor mode, three in
/// page mode (one fewer when the page is empty).
pub async fn list_orders(
    pool: &PgPool,
    request: &OrderListRequest,
) -> Result<Listing<OrderView>, sqlx::Error> {
    let scope = &request.scope;
    let column = "placed_at";
    let mut select = QueryBuilder::<Postgres>::new(format!("SELECT {ORDER_COLUMNS}"));
    push_filters(&mut select, scope);
    if let Some(after) = request.window.after() {
        push_after(&mut select, column, scope.order, after);
    }
    push_order_by(&mut select, column, scope.order);
    let mut count = QueryBuilder::<Postgres>::new("SELECT count(*)");
    push_filters(&mut count, scope);

    let mut conn = pool.acquire().await?;
    let orders = fetch_window(&mut conn, select, count, &request.window, |row: &OrderRow| {
        Position {
            key: SortKey::Time(row.placed_at),
            id: row.id,
        }
    })
    .await?;
    let ids: Vec<Uuid> = orders.items().iter().map(|row| row.id).collect();
    let mut lines = lines_of(&mut conn, &ids).await?;
    Ok(orders.map(|row| {
        let own = lines.remove(&row.id).unwrap_or_default();
        row.with_lines(own)
    }))
}

/// The lines of every order in `ids`, by order, in line order: one query (none when
/// `ids` is empty).
async fn lines_of(
    conn: &mut PgConnection,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, Vec<OrderLineView>>, sqlx::Error> {
    let mut by_order: HashMap<Uuid, Vec<OrderLineView>> = HashMap::with_capacity(ids.len());
    if ids.is_empty() {
        return Ok(by_order);
    }
    let lines: Vec<LineRow> = sqlx::query_as(
        "SELECT order_id, product_id, sku, name, quantity, unit_price_cents, line_total_cents
         FROM order_lines_view WHERE order_id = ANY($1) ORDER BY order_id, line_no",
    )
    .bind(ids)
    .fetch_all(conn)
    .await?;
    for LineRow { order_id, line } in lines {
        by_order.entry(order_id).or_default().push(line);
    }
    Ok(by_order)
}

/// An `order_lines_view` row: the line and the order it belongs to.
#[derive(sqlx::FromRow)]
struct LineRow {
    order_id: Uuid,
    #[sqlx(flatten)]
    line: OrderLineView,
}

/// `FROM orders_view WHERE user_id = <owner> [AND status = <status>]`.
fn push_filters(query: &mut QueryBuilder<'_, Postgres>, scope: &OrderScope) {
    query
        .push(" FROM orders_view WHERE user_id = ")
        .push_bind(scope.user_id);
    if let Some(status) = scope.status {
        query.push(" AND status = ").push_bind(status_text(status));
    }
}

/// The `orders_view.status` value of a status.
fn status_text(status: OrderStatus) -> &'static str {
    match status {
        OrderStatus::Placed => "placed",
        OrderStatus::Cancelled => "cancelled",
    }
}
