//! The SQL of the products projection: rows of `products_view`, and the per-product lock
//! that orders `units_sold` changes with the creation of the row.
//!
//! `units_sold` is derived from orders, whose events may be projected before the product's
//! creation (streams are projected independently). An order transaction adjusts the rows
//! that exist; a product row is created with the units of the placed orders already
//! projected. Both hold the product's lock (below) while doing so, so each order is
//! counted exactly once: either the order saw the committed row, or the row's creation
//! saw the committed order.

use super::row::{ProductRow, ROW_COLUMNS};
use sqlx::postgres::PgArguments;
use sqlx::query::Query;
use sqlx::{PgConnection, Postgres};
use uuid::Uuid;

/// First key of the per-product advisory locks (two-key locks never conflict with the
/// single-key projection lock).
const PRODUCT_LOCK_CLASS: i32 = 0x7072_6f64;

/// The second key of a product's lock.
fn lock_key(id: Uuid) -> i32 {
    let v = id.as_u128();
    ((v ^ (v >> 32) ^ (v >> 64) ^ (v >> 96)) as u32) as i32
}

/// Locks products until the transaction ends, in key order so that transactions locking
/// several products cannot deadlock each other.
pub async fn lock_products(conn: &mut PgConnection, ids: &[Uuid]) -> Result<(), sqlx::Error> {
    let mut keys: Vec<i32> = ids.iter().copied().map(lock_key).collect();
    keys.sort_unstable();
    keys.dedup();
    sqlx::query("SELECT pg_advisory_xact_lock($1, key) FROM unnest($2::int4[]) AS key")
        .bind(PRODUCT_LOCK_CLASS)
        .bind(keys)
        .execute(conn)
        .await
        .map(|_| ())
}

/// The rows of some products (ids sorted), locked until the transaction ends: first
/// their product locks, as every transaction that changes `units_sold` takes them before
/// touching a row (so a batch of products and one of orders cannot deadlock), then the
/// rows in id order.
pub async fn lock_rows(conn: &mut PgConnection, ids: &[Uuid]) -> Result<Vec<ProductRow>, sqlx::Error> {
    lock_products(conn, ids).await?;
    let sql = format!("SELECT {ROW_COLUMNS} FROM products_view WHERE id = ANY($1) ORDER BY id FOR UPDATE");
    sqlx::query_as::<_, ProductRow>(&sql)
        .bind(ids)
        .fetch_all(conn)
        .await
}

/// The rows of several products (not locked).
pub async fn load_rows(conn: &mut PgConnection, ids: &[Uuid]) -> Result<Vec<ProductRow>, sqlx::Error> {
    let sql = format!("SELECT {ROW_COLUMNS} FROM products_view WHERE id = ANY($1)");
    sqlx::query_as::<_, ProductRow>(&sql)
        .bind(ids)
        .fetch_all(conn)
        .await
}

/// Inserts a new row with the units of the placed orders projected so far; `false` when a
/// concurrent replica inserted it first. Sets `row.units_sold`.
pub async fn insert_row(conn: &mut PgConnection, row: &mut ProductRow) -> Result<bool, sqlx::Error> {
    // Taken before the statement, whose snapshot then holds every order projected while
    // the row did not exist.
    lock_products(conn, &[row.id]).await?;
    let sql = "INSERT INTO products_view (id, sku, name, description, price_cents, currency, stock,
                                          retired, version, created_at, updated_at, units_sold)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11,
                       (SELECT COALESCE(sum(l.quantity), 0)::int8
                        FROM order_lines_view l JOIN orders_view o ON o.id = l.order_id
                        WHERE l.product_id = $1 AND o.status = 'placed'))
               ON CONFLICT (id) DO NOTHING
               RETURNING units_sold";
    let units: Option<i64> = bind_row(sql, row).fetch_optional(conn).await?.map(|row| {
        use sqlx::Row;
        row.get(0)
    });
    if let Some(units) = units {
        row.units_sold = units;
    }
    Ok(units.is_some())
}

/// Overwrites a locked row, except `units_sold` (the orders projection's).
pub async fn update_row(conn: &mut PgConnection, row: &ProductRow) -> Result<(), sqlx::Error> {
    let sql = "UPDATE products_view SET sku = $2, name = $3, description = $4, price_cents = $5,
                      currency = $6, stock = $7, retired = $8, version = $9, created_at = $10,
                      updated_at = $11
               WHERE id = $1";
    bind_row(sql, row).execute(conn).await.map(|_| ())
}

/// A statement with the row's columns but `units_sold` bound as `$1..$11`.
fn bind_row<'q>(sql: &'q str, row: &'q ProductRow) -> Query<'q, Postgres, PgArguments> {
    sqlx::query(sql)
        .bind(row.id)
        .bind(&row.sku)
        .bind(&row.name)
        .bind(&row.description)
        .bind(row.price_cents)
        .bind(&row.currency)
        .bind(row.stock)
        .bind(row.retired)
        .bind(row.version)
        .bind(row.created_at)
        .bind(row.updated_at)
}

/// Writes many rows in one statement, keeping any row that is already newer. `units_sold`
/// is left alone (0 for new rows): a rebuild recomputes it from the orders at the end.
pub async fn upsert_rows(conn: &mut PgConnection, rows: &[&ProductRow]) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO products_view (id, sku, name, description, price_cents, currency, stock, retired,
                                    version, created_at, updated_at)
         SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::text[], $5::int8[], $6::text[],
                              $7::int8[], $8::bool[], $9::int8[], $10::timestamptz[], $11::timestamptz[])
         ON CONFLICT (id) DO UPDATE SET sku = EXCLUDED.sku, name = EXCLUDED.name,
                description = EXCLUDED.description, price_cents = EXCLUDED.price_cents,
                currency = EXCLUDED.currency, stock = EXCLUDED.stock, retired = EXCLUDED.retired,
                version = EXCLUDED.version, created_at = EXCLUDED.created_at,
                updated_at = EXCLUDED.updated_at
         WHERE products_view.version < EXCLUDED.version",
    )
    .bind(rows.iter().map(|r| r.id).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.sku.as_str()).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.name.as_str()).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.description.as_str()).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.price_cents).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.currency.as_str()).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.stock).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.retired).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.version).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.created_at).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.updated_at).collect::<Vec<_>>())
    .execute(conn)
    .await
    .map(|_| ())
}

/// Sets every product's `units_sold` from the placed orders (the end of a rebuild);
/// returns how many rows changed.
pub async fn recompute_units_sold(conn: &mut PgConnection) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE products_view p SET units_sold = COALESCE(s.units, 0)
         FROM products_view p2
         LEFT JOIN (SELECT l.product_id, sum(l.quantity)::int8 AS units
                    FROM order_lines_view l JOIN orders_view o ON o.id = l.order_id
                    WHERE o.status = 'placed'
                    GROUP BY l.product_id) s ON s.product_id = p2.id
         WHERE p.id = p2.id AND p.units_sold IS DISTINCT FROM COALESCE(s.units, 0)",
    )
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}

#[cfg(test)]
mod tests {
    use super::lock_key;
    use uuid::Uuid;

    #[test]
    fn lock_keys_depend_on_every_part_of_the_id() {
        let a = Uuid::from_u128(1);
        let b = Uuid::from_u128(1 << 100);
        assert_ne!(lock_key(a), lock_key(Uuid::nil()));
        assert_ne!(lock_key(b), lock_key(Uuid::nil()));
        assert_eq!(lock_key(a), lock_key(a));
    }
}
