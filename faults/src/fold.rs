//! The expected read models, folded here from the event store itself (not through any
//! service code): users, products with stock and units sold, orders, best sellers.

use serde_json::Value;
use sqlx::PgPool;
use std::collections::{BTreeMap, HashMap};
use uuid::Uuid;

/// One row of `events`.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Event {
    /// Event id (the `Nats-Msg-Id`).
    pub id: Uuid,
    /// Stream id.
    pub stream_id: Uuid,
    /// Version within the stream.
    pub stream_version: i64,
    /// e.g. `user.registered`.
    pub event_type: String,
    /// Payload.
    pub data: Value,
    /// The request id of the command that appended it.
    pub correlation_id: Option<String>,
}

/// Every event, in per-stream order.
pub async fn events(pool: &PgPool) -> sqlx::Result<Vec<Event>> {
    sqlx::query_as(
        "SELECT id, stream_id, stream_version, event_type, data, correlation_id FROM events ORDER BY stream_id, stream_version",
    )
    .fetch_all(pool)
    .await
}

/// A user as its stream says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct User {
    /// Email at registration (never changed by the load).
    pub email: String,
    /// Current name.
    pub name: String,
    /// Current role.
    pub role: String,
    /// Deleted?
    pub deleted: bool,
    /// Last stream version.
    pub version: i64,
}

/// A product as its stream and the orders say.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Product {
    /// Stock after the last stock event.
    pub stock: i64,
    /// Units in placed, not cancelled orders.
    pub units_sold: i64,
    /// Last stream version.
    pub version: i64,
}

/// An order as its stream says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Order {
    /// Owner.
    pub user_id: Uuid,
    /// `placed` or `cancelled`.
    pub status: String,
    /// Total.
    pub total_cents: i64,
    /// Lines.
    pub line_count: i32,
    /// Last stream version.
    pub version: i64,
    /// `(product, quantity)` per line.
    pub lines: Vec<(Uuid, i64)>,
}

/// Everything folded.
#[derive(Debug, Default)]
pub struct Folded {
    /// Users by id.
    pub users: HashMap<Uuid, User>,
    /// Products by id.
    pub products: HashMap<Uuid, Product>,
    /// Orders by id.
    pub orders: HashMap<Uuid, Order>,
}

fn text(data: &Value, field: &str) -> String {
    data[field].as_str().unwrap_or_default().to_owned()
}

impl Folded {
    /// Folds `events` (in per-stream order).
    pub fn of(events: &[Event]) -> Self {
        let mut f = Folded::default();
        for e in events {
            let d = &e.data;
            match e.event_type.as_str() {
                "user.registered" => {
                    let user = f.users.entry(e.stream_id).or_default();
                    user.email = text(d, "email");
                    user.name = text(d, "name");
                    user.role = text(d, "role");
                }
                "user.renamed" => f.users.entry(e.stream_id).or_default().name = text(d, "name"),
                "user.role_changed" => f.users.entry(e.stream_id).or_default().role = text(d, "role"),
                "user.deleted" => f.users.entry(e.stream_id).or_default().deleted = true,
                "product.created"
                | "product.restocked"
                | "product.stock_reserved"
                | "product.stock_released" => {
                    f.products.entry(e.stream_id).or_default().stock = d["stock"].as_i64().unwrap_or(-1);
                }
                "order.placed" => {
                    let lines: Vec<(Uuid, i64)> = d["lines"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|l| {
                            let product = l["productId"].as_str().and_then(|s| Uuid::parse_str(s).ok());
                            (product.unwrap_or_default(), l["quantity"].as_i64().unwrap_or(0))
                        })
                        .collect();
                    let order = f.orders.entry(e.stream_id).or_default();
                    order.user_id = d["userId"]
                        .as_str()
                        .and_then(|s| Uuid::parse_str(s).ok())
                        .unwrap_or_default();
                    order.status = "placed".into();
                    order.total_cents = d["totalCents"].as_i64().unwrap_or(0);
                    order.line_count = lines.len() as i32;
                    order.lines = lines;
                }
                "order.cancelled" => f.orders.entry(e.stream_id).or_default().status = "cancelled".into(),
                _ => {}
            }
            if let Some(user) = f.users.get_mut(&e.stream_id) {
                user.version = e.stream_version;
            }
            if let Some(product) = f.products.get_mut(&e.stream_id) {
                product.version = e.stream_version;
            }
            if let Some(order) = f.orders.get_mut(&e.stream_id) {
                order.version = e.stream_version;
            }
        }
        let placed: Vec<(Uuid, i64)> = f
            .orders
            .values()
            .filter(|o| o.status == "placed")
            .flat_map(|o| o.lines.iter().copied())
            .collect();
        for (product, quantity) in placed {
            f.products.entry(product).or_default().units_sold += quantity;
        }
        f
    }

    /// Best sellers: product id → units sold, for every product that sold any.
    pub fn top(&self) -> BTreeMap<Uuid, i64> {
        self.products
            .iter()
            .filter(|(_, p)| p.units_sold > 0)
            .map(|(id, p)| (*id, p.units_sold))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(stream: Uuid, version: i64, event_type: &str, data: Value) -> Event {
        Event {
            id: Uuid::now_v7(),
            stream_id: stream,
            stream_version: version,
            event_type: event_type.to_owned(),
            data,
            correlation_id: None,
        }
    }

    #[test]
    fn a_cancelled_order_sells_nothing_and_gives_its_stock_back() {
        let (user, product, first, second) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let line = |quantity| json!({"userId": user, "totalCents": 100 * quantity, "lines": [{"productId": product, "quantity": quantity}]});
        let events = vec![
            event(product, 1, "product.created", json!({"stock": 10})),
            event(product, 2, "product.stock_reserved", json!({"stock": 7})),
            event(product, 3, "product.stock_released", json!({"stock": 10})),
            event(product, 4, "product.stock_reserved", json!({"stock": 8})),
            event(first, 1, "order.placed", line(3)),
            event(first, 2, "order.cancelled", json!({})),
            event(second, 1, "order.placed", line(2)),
        ];
        let folded = Folded::of(&events);
        assert_eq!(
            folded.products[&product],
            Product {
                stock: 8,
                units_sold: 2,
                version: 4
            }
        );
        assert_eq!(folded.orders[&first].status, "cancelled");
        assert_eq!(folded.orders[&first].version, 2);
        assert_eq!(folded.top(), BTreeMap::from([(product, 2)]));
    }

    #[test]
    fn a_user_keeps_the_last_name_and_role_and_a_deletion() {
        let user = Uuid::now_v7();
        let events = vec![
            event(
                user,
                1,
                "user.registered",
                json!({"email": "a@example.com", "name": "A", "role": "user"}),
            ),
            event(user, 2, "user.renamed", json!({"name": "B"})),
            event(
                user,
                3,
                "user.role_changed",
                json!({"role": "admin", "previousRole": "user"}),
            ),
            event(user, 4, "user.deleted", json!({})),
        ];
        let want = User {
            email: "a@example.com".into(),
            name: "B".into(),
            role: "admin".into(),
            deleted: true,
            version: 4,
        };
        assert_eq!(Folded::of(&events).users[&user], want);
    }
}
