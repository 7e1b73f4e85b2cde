//! The SQL of the orders projection: rows of `orders_view` and `order_lines_view`, and the
//! `units_sold` of the ordered products, all in the transaction of the order event.

use super::row::{OrderLineRow, OrderRow, units_delta};
use crate::products;
use sqlx::PgConnection;
use std::collections::BTreeMap;
use uuid::Uuid;

/// The rows of some orders (ids sorted) with their lines, locked in id order until the
/// transaction ends.
pub async fn lock_rows(conn: &mut PgConnection, ids: &[Uuid]) -> Result<Vec<OrderRow>, sqlx::Error> {
    readmodels::orders::load_rows(conn, ids, "ORDER BY id FOR UPDATE").await
}

/// The rows of several orders with their lines (not locked).
pub async fn load_rows(conn: &mut PgConnection, ids: &[Uuid]) -> Result<Vec<OrderRow>, sqlx::Error> {
    readmodels::orders::load_rows(conn, ids, "").await
}

/// Inserts a new order with its lines and counts its units; `false` (nothing written) when
/// a concurrent replica inserted it first.
pub async fn insert_row(conn: &mut PgConnection, row: &OrderRow) -> Result<bool, sqlx::Error> {
    let inserted = sqlx::query(
        "INSERT INTO orders_view (id, user_id, status, total_cents, currency, line_count, version,
                                  placed_at, updated_at, cancelled_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(row.id)
    .bind(row.user_id)
    .bind(&row.status)
    .bind(row.total_cents)
    .bind(&row.currency)
    .bind(row.line_count)
    .bind(row.version)
    .bind(row.placed_at)
    .bind(row.updated_at)
    .bind(row.cancelled_at)
    .execute(&mut *conn)
    .await?
    .rows_affected()
        == 1;
    if !inserted {
        return Ok(false);
    }
    insert_lines(conn, &[row]).await?;
    adjust_units_sold(conn, &units_delta(None, row)).await?;
    Ok(true)
}

/// Overwrites locked orders (their lines never change) and adjusts `units_sold` by the
/// difference in counted units, summed over the orders.
pub async fn update_rows(
    conn: &mut PgConnection,
    changes: &[(&OrderRow, &OrderRow)],
) -> Result<(), sqlx::Error> {
    let mut delta: BTreeMap<Uuid, i64> = BTreeMap::new();
    for (before, after) in changes {
        sqlx::query(
            "UPDATE orders_view SET status = $2, version = $3, updated_at = $4, cancelled_at = $5
             WHERE id = $1",
        )
        .bind(after.id)
        .bind(&after.status)
        .bind(after.version)
        .bind(after.updated_at)
        .bind(after.cancelled_at)
        .execute(&mut *conn)
        .await?;
        for (product, units) in units_delta(Some(before), after) {
            *delta.entry(product).or_default() += units;
        }
    }
    let delta: Vec<(Uuid, i64)> = delta.into_iter().filter(|(_, units)| *units != 0).collect();
    adjust_units_sold(conn, &delta).await
}

/// Takes the locks of every product of `rows` at once, in key order, before any
/// `units_sold` changes: a transaction that took them one order at a time could deadlock
/// with another.
pub async fn lock_products_of(conn: &mut PgConnection, rows: &[&OrderRow]) -> Result<(), sqlx::Error> {
    let ids: Vec<Uuid> = rows.iter().flat_map(|row| row.product_ids()).collect();
    if ids.is_empty() {
        return Ok(());
    }
    products::sql::lock_products(conn, &ids).await
}

/// Adds units to the products' `units_sold` (negative to subtract), under the products'
/// locks. A product without a row yet is skipped: its creation counts this order (see
/// [`products::sql`]).
async fn adjust_units_sold(conn: &mut PgConnection, delta: &[(Uuid, i64)]) -> Result<(), sqlx::Error> {
    if delta.is_empty() {
        return Ok(());
    }
    let (ids, units): (Vec<Uuid>, Vec<i64>) = delta.iter().copied().unzip();
    products::sql::lock_products(conn, &ids).await?;
    sqlx::query(
        "UPDATE products_view p SET units_sold = p.units_sold + d.units
         FROM UNNEST($1::uuid[], $2::int8[]) AS d(id, units)
         WHERE p.id = d.id",
    )
    .bind(ids)
    .bind(units)
    .execute(conn)
    .await
    .map(|_| ())
}

/// Inserts the lines of several orders in one statement (lines never change: a line that
/// exists is kept).
async fn insert_lines(conn: &mut PgConnection, rows: &[&OrderRow]) -> Result<(), sqlx::Error> {
    let lines: Vec<(Uuid, &OrderLineRow)> = rows
        .iter()
        .flat_map(|row| row.lines.iter().map(|line| (row.id, line)))
        .collect();
    if lines.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO order_lines_view (order_id, line_no, product_id, sku, name, quantity,
                                       unit_price_cents, line_total_cents)
         SELECT * FROM UNNEST($1::uuid[], $2::int4[], $3::uuid[], $4::text[], $5::text[],
                              $6::int8[], $7::int8[], $8::int8[])
         ON CONFLICT (order_id, line_no) DO NOTHING",
    )
    .bind(lines.iter().map(|(order, _)| *order).collect::<Vec<_>>())
    .bind(lines.iter().map(|(_, l)| l.line_no).collect::<Vec<_>>())
    .bind(lines.iter().map(|(_, l)| l.product_id).collect::<Vec<_>>())
    .bind(lines.iter().map(|(_, l)| l.sku.as_str()).collect::<Vec<_>>())
    .bind(lines.iter().map(|(_, l)| l.name.as_str()).collect::<Vec<_>>())
    .bind(lines.iter().map(|(_, l)| l.quantity).collect::<Vec<_>>())
    .bind(lines.iter().map(|(_, l)| l.unit_price_cents).collect::<Vec<_>>())
    .bind(lines.iter().map(|(_, l)| l.line_total_cents).collect::<Vec<_>>())
    .execute(conn)
    .await
    .map(|_| ())
}

/// Writes many orders and their lines for a rebuild, keeping any order that is already
/// newer. `units_sold` is recomputed from all orders at the end of the rebuild.
pub async fn upsert_rows(conn: &mut PgConnection, rows: &[&OrderRow]) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO orders_view (id, user_id, status, total_cents, currency, line_count, version,
                                  placed_at, updated_at, cancelled_at)
         SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::int8[], $5::text[], $6::int4[],
                              $7::int8[], $8::timestamptz[], $9::timestamptz[], $10::timestamptz[])
         ON CONFLICT (id) DO UPDATE SET status = EXCLUDED.status, version = EXCLUDED.version,
                updated_at = EXCLUDED.updated_at, cancelled_at = EXCLUDED.cancelled_at
         WHERE orders_view.version < EXCLUDED.version",
    )
    .bind(rows.iter().map(|r| r.id).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.user_id).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.status.as_str()).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.total_cents).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.currency.as_str()).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.line_count).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.version).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.placed_at).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.updated_at).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.cancelled_at).collect::<Vec<_>>())
    .execute(&mut *conn)
    .await?;
    insert_lines(conn, rows).await
}
