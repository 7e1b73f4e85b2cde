//! Seeding the shop read models (`products_view`, `orders_view`, `order_lines_view` and
//! the best-seller sorted set) directly, as the projector would, plus small helpers for
//! reading lists back.

use crate::helpers::TestApp;
use chrono::{DateTime, Duration, DurationRound, Utc};
use query_api::orders::{OrderLineView, OrderView};
use query_api::products::{
    ProductView,
    top::{seeded_key, top_key},
};
use serde_json::Value;
use uuid::Uuid;

/// A product row to seed.
#[derive(Clone)]
pub struct NewProduct {
    /// Id (default a fresh one).
    pub id: Uuid,
    /// SKU (default the name in upper case, spaces as dashes).
    pub sku: String,
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Price.
    pub price_cents: i64,
    /// Units in stock.
    pub stock: i64,
    /// Retired.
    pub retired: bool,
    /// Units sold.
    pub units_sold: i64,
    /// Stream version.
    pub version: i64,
    /// Creation time (default now).
    pub created_at: DateTime<Utc>,
}

impl NewProduct {
    /// An active product at 10.00 EUR with 5 in stock, version 1, created now.
    pub fn named(name: &str) -> Self {
        Self {
            id: Uuid::now_v7(),
            sku: name.to_uppercase().replace(' ', "-"),
            name: name.to_owned(),
            description: format!("All about {name}"),
            price_cents: 1000,
            stock: 5,
            retired: false,
            units_sold: 0,
            version: 1,
            created_at: Utc::now(),
        }
    }
}

/// A line of an order to seed: product, quantity, unit price.
pub struct NewLine<'a> {
    /// The product (its id, SKU and name are copied).
    pub product: &'a ProductView,
    /// Units.
    pub quantity: i64,
    /// Price per unit.
    pub unit_price_cents: i64,
}

impl TestApp {
    /// Inserts a product into `products_view`.
    pub async fn seed_product(&self, product: NewProduct) -> ProductView {
        // Postgres keeps microseconds; round so the seeded value is what comes back.
        let created_at = product
            .created_at
            .duration_trunc(Duration::microseconds(1))
            .expect("truncate");
        sqlx::query(
            "INSERT INTO products_view (id, sku, name, description, price_cents, currency, stock,
                 retired, units_sold, version, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, 'EUR', $6, $7, $8, $9, $10, $10)",
        )
        .bind(product.id)
        .bind(product.sku)
        .bind(product.name)
        .bind(product.description)
        .bind(product.price_cents)
        .bind(product.stock)
        .bind(product.retired)
        .bind(product.units_sold)
        .bind(product.version)
        .bind(created_at)
        .execute(&self.db.pool)
        .await
        .expect("seed a product");
        query_api::products::find_product(&self.db.pool, product.id)
            .await
            .expect("read the seeded product")
            .expect("the seeded product")
    }

    /// Inserts an order and its lines; `cancelled` sets status and `cancelledAt`.
    pub async fn seed_order(
        &self,
        user_id: Uuid,
        placed_at: DateTime<Utc>,
        cancelled: bool,
        lines: &[NewLine<'_>],
    ) -> OrderView {
        let placed_at = placed_at
            .duration_trunc(Duration::microseconds(1))
            .expect("truncate");
        let lines: Vec<OrderLineView> = lines
            .iter()
            .map(|line| OrderLineView {
                product_id: line.product.id,
                sku: line.product.sku.clone(),
                name: line.product.name.clone(),
                quantity: line.quantity,
                unit_price_cents: line.unit_price_cents,
                line_total_cents: line.quantity * line.unit_price_cents,
            })
            .collect();
        let order = OrderView {
            order_id: Uuid::now_v7(),
            user_id,
            status: if cancelled { "cancelled" } else { "placed" }.to_owned(),
            total_cents: lines.iter().map(|line| line.line_total_cents).sum(),
            currency: "EUR".to_owned(),
            placed_at,
            cancelled_at: cancelled.then(|| placed_at + Duration::minutes(1)),
            version: if cancelled { 2 } else { 1 },
            lines,
        };
        sqlx::query(
            "INSERT INTO orders_view (id, user_id, status, total_cents, currency, line_count,
                 version, placed_at, updated_at, cancelled_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9)",
        )
        .bind(order.order_id)
        .bind(order.user_id)
        .bind(&order.status)
        .bind(order.total_cents)
        .bind(&order.currency)
        .bind(order.lines.len() as i32)
        .bind(order.version)
        .bind(order.placed_at)
        .bind(order.cancelled_at)
        .execute(&self.db.pool)
        .await
        .expect("seed an order");
        for (line_no, line) in order.lines.iter().enumerate() {
            sqlx::query(
                "INSERT INTO order_lines_view (order_id, line_no, product_id, sku, name, quantity,
                     unit_price_cents, line_total_cents)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(order.order_id)
            .bind(line_no as i32 + 1)
            .bind(line.product_id)
            .bind(&line.sku)
            .bind(&line.name)
            .bind(line.quantity)
            .bind(line.unit_price_cents)
            .bind(line.line_total_cents)
            .execute(&self.db.pool)
            .await
            .expect("seed an order line");
        }
        order
    }

    /// Sets a product's review statistics in `product_review_stats`.
    pub async fn seed_stats(&self, product: Uuid, count: i64, sum: i64, version: i64) {
        sqlx::query(
            "INSERT INTO product_review_stats (product_id, review_count, rating_sum, version) VALUES ($1, $2, $3, $4)
             ON CONFLICT (product_id) DO UPDATE SET review_count = $2, rating_sum = $3, version = $4",
        )
        .bind(product)
        .bind(count)
        .bind(sum)
        .bind(version)
        .execute(&self.db.pool)
        .await
        .expect("seed stats");
    }

    /// Sets the best-seller scores in Redis and marks the set complete, as the projector does.
    pub async fn rank(&self, scores: &[(Uuid, i64)]) {
        self.rank_unseeded(scores).await;
        let mut conn = self.redis.connection().await;
        let _: () = redis::cmd("SET")
            .arg(seeded_key(&self.redis.prefix))
            .arg(1)
            .query_async(&mut conn)
            .await
            .expect("SET marker");
    }

    /// Sets best-seller scores in Redis without the marker (a set being re-seeded).
    pub async fn rank_unseeded(&self, scores: &[(Uuid, i64)]) {
        let mut conn = self.redis.connection().await;
        for (id, units) in scores {
            let _: i64 = redis::cmd("ZADD")
                .arg(top_key(&self.redis.prefix))
                .arg(*units)
                .arg(id.to_string())
                .query_async(&mut conn)
                .await
                .expect("ZADD");
        }
    }

    /// Replaces the best-seller sorted set with a plain string (every read of it errors).
    pub async fn break_ranking(&self) {
        let mut conn = self.redis.connection().await;
        let _: () = redis::cmd("SET")
            .arg(top_key(&self.redis.prefix))
            .arg("not a sorted set")
            .query_async(&mut conn)
            .await
            .expect("SET");
    }
}

/// The `id` (or `orderId`) of every item of a list answer.
pub fn ids(body: &Value) -> Vec<Uuid> {
    body["data"]
        .as_array()
        .unwrap_or_else(|| panic!("a list: {body}"))
        .iter()
        .map(|item| {
            item.get("id")
                .or_else(|| item.get("orderId"))
                .and_then(Value::as_str)
                .and_then(|id| id.parse().ok())
                .expect("an id")
        })
        .collect()
}

/// Follows `nextCursor` from `first` to the end with `token`, returning the ids served.
pub async fn walk(app: &TestApp, first: &str, token: Option<&str>) -> Vec<Uuid> {
    let mut seen = Vec::new();
    let mut path = first.to_owned();
    for _ in 0..100 {
        let (status, body) = app.get_json(&path, token).await;
        assert_eq!(status, reqwest::StatusCode::OK, "{path}: {body}");
        seen.extend(ids(&body));
        let pagination = &body["meta"]["pagination"];
        match pagination["nextCursor"].as_str() {
            Some(cursor) => {
                assert_eq!(pagination["hasMore"], true);
                path = format!("{first}&cursor={cursor}");
            }
            None => {
                assert_eq!(pagination["hasMore"], false);
                return seen;
            }
        }
    }
    panic!("the cursor never reached the end");
}
