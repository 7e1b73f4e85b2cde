//! The read models against the fold of the event store: users, products and orders in
//! Postgres, their documents and the best-seller set in Redis, and the best sellers as the
//! query API answers them.

use crate::checks::Check;
use crate::fold::{Folded, Order, Product, User};
use crate::stack::REDIS_PREFIX;
use anyhow::Result;
use serde_json::Value;
use sqlx::PgPool;
use std::collections::{BTreeMap, HashMap};
use uuid::Uuid;

/// Compares the rows found with the fold: every folded entity must have an equal row and
/// every row a folded entity.
fn compare<T: PartialEq + std::fmt::Debug>(
    name: &str,
    expected: &HashMap<Uuid, T>,
    found: &HashMap<Uuid, T>,
) -> Check {
    let mut examples = Vec::new();
    let mut wrong = 0;
    for (id, want) in expected {
        match found.get(id) {
            Some(got) if got == want => {}
            got => {
                wrong += 1;
                examples.push(format!("{id}: want {want:?}, got {got:?}"));
            }
        }
    }
    for id in found.keys().filter(|id| !expected.contains_key(id)) {
        wrong += 1;
        examples.push(format!("{id}: a row without events"));
    }
    Check::count(name, wrong, expected.len(), &examples)
}

/// Every Postgres read model.
pub async fn postgres(pool: &PgPool, folded: &Folded) -> Result<Vec<Check>> {
    type UserRow = (Uuid, Option<String>, Option<String>, String, i64, bool);
    let rows: Vec<UserRow> =
        sqlx::query_as("SELECT id, email, name, role, version, deleted_at IS NOT NULL FROM users_view")
            .fetch_all(pool)
            .await?;
    let users: HashMap<Uuid, User> = rows
        .into_iter()
        .map(|(id, email, name, role, version, deleted)| {
            (
                id,
                User {
                    email: email.unwrap_or_default(),
                    name: name.unwrap_or_default(),
                    role,
                    deleted,
                    version,
                },
            )
        })
        .collect();
    // Deleted users are erased tombstones: no email, no name.
    let expected_users: HashMap<Uuid, User> = folded
        .users
        .iter()
        .map(|(id, u)| {
            let mut u = u.clone();
            if u.deleted {
                u.email.clear();
                u.name.clear();
            }
            (*id, u)
        })
        .collect();
    let rows: Vec<(Uuid, i64, i64, i64)> =
        sqlx::query_as("SELECT id, stock, units_sold, version FROM products_view")
            .fetch_all(pool)
            .await?;
    let products: HashMap<Uuid, Product> = rows
        .into_iter()
        .map(|(id, stock, units_sold, version)| {
            (
                id,
                Product {
                    stock,
                    units_sold,
                    version,
                },
            )
        })
        .collect();
    type OrderRow = (Uuid, Uuid, String, i64, i32, i64);
    let rows: Vec<OrderRow> =
        sqlx::query_as("SELECT id, user_id, status, total_cents, line_count, version FROM orders_view")
            .fetch_all(pool)
            .await?;
    let orders: HashMap<Uuid, Order> = rows
        .into_iter()
        .map(|(id, user_id, status, total_cents, line_count, version)| {
            (
                id,
                Order {
                    user_id,
                    status,
                    total_cents,
                    line_count,
                    version,
                    lines: Vec::new(),
                },
            )
        })
        .collect();
    let expected_orders: HashMap<Uuid, Order> = folded
        .orders
        .iter()
        .map(|(id, o)| {
            (
                *id,
                Order {
                    lines: Vec::new(),
                    ..o.clone()
                },
            )
        })
        .collect();
    Ok(vec![
        compare(
            "users_view = fold (email, name, role, deleted, version)",
            &expected_users,
            &users,
        ),
        compare(
            "products_view = fold (stock, units sold, version)",
            &folded.products,
            &products,
        ),
        compare(
            "orders_view = fold (owner, status, total, lines, version)",
            &expected_orders,
            &orders,
        ),
    ])
}

/// The Redis documents of users, products and orders (those present: it is a cache) and
/// the best-seller set.
pub async fn redis(redis_url: &str, folded: &Folded) -> Result<Vec<Check>> {
    let client = redis::Client::open(redis_url)?;
    let mut conn = client.get_multiplexed_async_connection().await?;
    let users = documents(&mut conn, "user", |id, doc| match folded.users.get(&id) {
        None => (doc["missing"] == true, "no user".to_owned()),
        Some(u) if u.deleted => (
            doc["deleted"] == true && doc["version"] == u.version,
            format!("{u:?}"),
        ),
        Some(u) => {
            let user = &doc["user"];
            let fine = doc["version"] == u.version
                && user["email"] == u.email.as_str()
                && user["name"] == u.name.as_str()
                && user["role"] == u.role.as_str();
            (fine, format!("{u:?}"))
        }
    })
    .await?;
    let products = documents(&mut conn, "product", |id, doc| match folded.products.get(&id) {
        None => (doc["missing"] == true, "no product".to_owned()),
        Some(p) => {
            let product = &doc["product"];
            let fine =
                doc["version"] == p.version && product["version"] == p.version && product["stock"] == p.stock;
            (fine, format!("{p:?}"))
        }
    })
    .await?;
    let orders = documents(&mut conn, "order", |id, doc| match folded.orders.get(&id) {
        None => (doc["missing"] == true, "no order".to_owned()),
        Some(o) => {
            let order = &doc["order"];
            let fine = doc["version"] == o.version
                && order["userId"] == o.user_id.to_string()
                && order["status"] == o.status.as_str()
                && order["totalCents"] == o.total_cents
                && order["lines"].as_array().map(Vec::len) == usize::try_from(o.line_count).ok();
            (fine, format!("{o:?}"))
        }
    })
    .await?;
    let scores: Vec<(String, f64)> = redis::cmd("ZRANGE")
        .arg(format!("{REDIS_PREFIX}:products:top"))
        .arg(0)
        .arg(-1)
        .arg("WITHSCORES")
        .query_async(&mut conn)
        .await?;
    let found: BTreeMap<Uuid, i64> = scores
        .into_iter()
        .filter_map(|(m, s)| Some((Uuid::parse_str(&m).ok()?, s as i64)))
        .collect();
    Ok(vec![
        users,
        products,
        orders,
        top("Redis best-seller set = fold", &folded.top(), &found),
    ])
}

/// Every document of `kind` present in Redis, judged by `fits` (whether it is right, and
/// what was wanted).
async fn documents(
    conn: &mut redis::aio::MultiplexedConnection,
    kind: &str,
    fits: impl Fn(Uuid, &Value) -> (bool, String),
) -> Result<Check> {
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{REDIS_PREFIX}:{kind}:*"))
        .query_async(conn)
        .await?;
    let (mut wrong, mut examples) = (0, Vec::new());
    for key in &keys {
        let raw: Option<String> = redis::cmd("GET").arg(key).query_async(conn).await?;
        let Some(raw) = raw else { continue };
        let doc: Value = serde_json::from_str(&raw).unwrap_or(Value::Null);
        let id = key
            .rsplit(':')
            .next()
            .and_then(|s| Uuid::parse_str(s).ok())
            .unwrap_or_default();
        let (fine, want) = fits(id, &doc);
        if !fine {
            wrong += 1;
            examples.push(format!("{key}: want {want}, got {raw}"));
        }
    }
    Ok(Check::count(
        &format!("Redis {kind} documents = fold"),
        wrong,
        keys.len(),
        &examples,
    ))
}

fn top(name: &str, want: &BTreeMap<Uuid, i64>, got: &BTreeMap<Uuid, i64>) -> Check {
    let wrong: Vec<String> = want
        .iter()
        .filter(|(id, n)| got.get(id) != Some(n))
        .map(|(id, n)| format!("{id}: want {n}, got {:?}", got.get(id)))
        .chain(
            got.iter()
                .filter(|(id, _)| !want.contains_key(id))
                .map(|(id, n)| format!("{id}: {n} but sold none")),
        )
        .collect();
    let mut check = Check::count(name, wrong.len(), want.len(), &wrong);
    check.detail = format!("{} ({} members found)", check.detail, got.len());
    check
}

/// `GET /api/v1/products/top?limit=100` on every query replica.
pub async fn top_answers(queries: &[String], folded: &Folded) -> Result<Vec<Check>> {
    let http = reqwest::Client::new();
    let mut checks = Vec::new();
    for (i, base) in queries.iter().enumerate() {
        let response = http
            .get(format!("{base}/api/v1/products/top?limit=100"))
            .timeout(std::time::Duration::from_secs(15))
            .send()
            .await?;
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        let got: BTreeMap<Uuid, i64> = body["data"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| Some((Uuid::parse_str(p["id"].as_str()?).ok()?, p["unitsSold"].as_i64()?)))
            .collect();
        let mut check = top(
            &format!("GET /products/top (query-api#{i}) = fold"),
            &folded.top(),
            &got,
        );
        if status != 200 {
            check.ok = false;
            check.detail = format!("answered {status}; {}", check.detail);
        }
        checks.push(check);
    }
    Ok(checks)
}
