//! Random but valid shop histories (products, orders, cancellations) appended through the
//! event store, with what the read models must end up as (computed here independently of
//! the projector).

use crate::support::TestEnv;
use projector::orders::OrderRow;
use projector::products::ProductRow;
use rand::Rng;
use std::collections::BTreeMap;
use uuid::Uuid;

/// A random shop history: products, orders of 1 to 3 of them, some orders cancelled.
pub struct ShopScript {
    pub products: Vec<Uuid>,
    pub orders: Vec<Uuid>,
    /// Units each product must count in the end.
    pub units_sold: BTreeMap<Uuid, i64>,
    /// Stock each product must have in the end.
    pub stock: BTreeMap<Uuid, i64>,
    /// Whether each order ends cancelled.
    pub cancelled: BTreeMap<Uuid, bool>,
}

/// Appends a random history: `products` products, `orders` orders (each its own unit of
/// work), a quarter of them cancelled afterwards.
pub async fn random_shop(env: &TestEnv, products: usize, orders: usize) -> ShopScript {
    const STOCK: i64 = 100_000;
    let mut ids = Vec::new();
    for i in 0..products {
        ids.push(
            env.create_product(&format!("Product {i}"), 100 + i as i64, STOCK)
                .await
                .0,
        );
    }
    let mut script = ShopScript {
        units_sold: ids.iter().map(|id| (*id, 0)).collect(),
        stock: ids.iter().map(|id| (*id, STOCK)).collect(),
        products: ids.clone(),
        orders: Vec::new(),
        cancelled: BTreeMap::new(),
    };
    for _ in 0..orders {
        let items: Vec<(Uuid, i64)> = {
            let mut rng = rand::rng();
            let mut chosen = ids.clone();
            let count = rng.random_range(1..=3.min(chosen.len()));
            (0..count)
                .map(|_| {
                    let id = chosen.swap_remove(rng.random_range(0..chosen.len()));
                    (id, rng.random_range(1..=5))
                })
                .collect()
        };
        let (order_id, _) = env.place_order(&items).await;
        let cancel = rand::rng().random_bool(0.25);
        if cancel {
            env.cancel_order(order_id).await;
        }
        for (id, quantity) in &items {
            if !cancel {
                *script.units_sold.entry(*id).or_default() += quantity;
                *script.stock.entry(*id).or_default() -= quantity;
            }
        }
        script.orders.push(order_id);
        script.cancelled.insert(order_id, cancel);
    }
    script
}

impl ShopScript {
    /// Whether the projected products and orders are what the script says.
    pub fn matches(&self, products: &[ProductRow], orders: &[OrderRow]) -> bool {
        products.len() == self.products.len()
            && orders.len() == self.orders.len()
            && products.iter().all(|row| {
                self.units_sold.get(&row.id) == Some(&row.units_sold)
                    && self.stock.get(&row.id) == Some(&row.stock)
            })
            && orders.iter().all(|row| {
                let cancelled = self.cancelled.get(&row.id) == Some(&true);
                row.status == if cancelled { "cancelled" } else { "placed" }
                    && row.version == if cancelled { 2 } else { 1 }
            })
    }

    /// The best-seller set it must leave in Redis, best first (ties by member, as Redis).
    pub fn top(&self) -> Vec<(String, i64)> {
        let mut top: Vec<(String, i64)> = self
            .units_sold
            .iter()
            .filter(|(_, units)| **units > 0)
            .map(|(id, units)| (id.to_string(), *units))
            .collect();
        top.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| b.0.cmp(&a.0)));
        top
    }
}
