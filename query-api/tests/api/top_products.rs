//! `GET /api/v1/products/top`: ranked by the Redis sorted set, product data from
//! Postgres, and the same answer from Postgres alone when Redis cannot help.

use crate::helpers::{TestApp, refused_fields, spawn_app, spawn_app_with_redis};
use crate::shop::NewProduct;
use query_api::products::ProductView;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Products with these units sold (Postgres only; rank them in Redis separately).
fn catalogue(units: &[i64]) -> Vec<NewProduct> {
    units
        .iter()
        .enumerate()
        .map(|(i, &units_sold)| NewProduct {
            units_sold,
            price_cents: 100 * (i as i64 + 1),
            ..NewProduct::named(&format!("product {i}"))
        })
        .collect()
}

async fn seed_all(app: &TestApp, products: &[NewProduct]) -> Vec<ProductView> {
    let mut seeded = Vec::new();
    for product in products {
        seeded.push(app.seed_product(product.clone()).await);
    }
    seeded
}

/// What the answer must be: most sold first, ties by id, unsold left out.
fn expected(products: &[NewProduct], limit: usize) -> Value {
    let mut sold: Vec<&NewProduct> = products.iter().filter(|p| p.units_sold > 0).collect();
    sold.sort_by(|a, b| b.units_sold.cmp(&a.units_sold).then(a.id.cmp(&b.id)));
    let top: Vec<Value> = sold
        .into_iter()
        .take(limit)
        .map(|p| {
            json!({"id": p.id, "sku": p.sku, "name": p.name, "priceCents": p.price_cents,
                   "currency": "EUR", "unitsSold": p.units_sold})
        })
        .collect();
    json!(top)
}

async fn top(app: &TestApp, query: &str) -> Value {
    let (status, body) = app.get_json(&format!("/api/v1/products/top{query}"), None).await;
    assert_eq!(status, StatusCode::OK, "{query}: {body}");
    body["data"].clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_ranking_comes_from_redis_and_the_product_data_from_postgres() {
    let app = spawn_app().await;
    let products = seed_all(&app, &catalogue(&[5, 3, 0])).await;
    // Redis disagrees with Postgres on purpose: its ranking must be the one served.
    app.rank(&[(products[0].id, 1), (products[1].id, 9), (products[2].id, 4)])
        .await;
    sqlx::query("UPDATE products_view SET name = 'renamed' WHERE id = $1")
        .bind(products[1].id)
        .execute(&app.db.pool)
        .await
        .expect("rename");

    assert_eq!(
        top(&app, "").await,
        json!([
            {"id": products[1].id, "sku": "PRODUCT-1", "name": "renamed", "priceCents": 200,
             "currency": "EUR", "unitsSold": 9},
            {"id": products[2].id, "sku": "PRODUCT-2", "name": "product 2", "priceCents": 300,
             "currency": "EUR", "unitsSold": 4},
            {"id": products[0].id, "sku": "PRODUCT-0", "name": "product 0", "priceCents": 100,
             "currency": "EUR", "unitsSold": 1},
        ])
    );
    let (status, body) = app.get_json("/api/v1/products/top?limit=1", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["data"].as_array().map(Vec::len), Some(1));
    assert!(body["meta"]["requestId"].is_string());
}

#[tokio::test(flavor = "multi_thread")]
async fn with_redis_down_the_best_sellers_come_from_postgres_with_the_same_answer() {
    let products = catalogue(&[2, 7, 0, 7, 1, 4]);
    let up = spawn_app().await;
    seed_all(&up, &products).await;
    let ranks: Vec<_> = products
        .iter()
        .filter(|p| p.units_sold > 0)
        .map(|p| (p.id, p.units_sold))
        .collect();
    up.rank(&ranks).await;
    let down = spawn_app_with_redis(Some("redis://127.0.0.1:1")).await;
    seed_all(&down, &products).await;

    for query in ["", "?limit=1", "?limit=2", "?limit=3", "?limit=100"] {
        let limit = query
            .strip_prefix("?limit=")
            .map_or(10, |n| n.parse().expect("number"));
        let from_redis = top(&up, query).await;
        assert_eq!(from_redis, expected(&products, limit), "{query}");
        assert_eq!(top(&down, query).await, from_redis, "{query}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn ties_at_the_limit_are_cut_by_id_from_redis_and_from_postgres_alike() {
    let app = spawn_app().await;
    // The last one has a zero score in Redis (all its orders cancelled): never served.
    let products = catalogue(&[3, 5, 3, 3, 1, 3, 0]);
    seed_all(&app, &products).await;
    let ranks: Vec<_> = products.iter().map(|p| (p.id, p.units_sold)).collect();
    app.rank(&ranks).await;

    for limit in 1..=8 {
        assert_eq!(
            top(&app, &format!("?limit={limit}")).await,
            expected(&products, limit),
            "from Redis, limit {limit}"
        );
    }
    // A sorted set that cannot be read (wrong type) sends every read to Postgres.
    app.break_ranking().await;
    for limit in 1..=8 {
        assert_eq!(
            top(&app, &format!("?limit={limit}")).await,
            expected(&products, limit),
            "from Postgres, limit {limit}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_empty_ranking_is_answered_from_postgres_and_no_sales_mean_an_empty_list() {
    let app = spawn_app().await;
    assert_eq!(top(&app, "").await, json!([]));
    let products = catalogue(&[0, 6, 2]);
    seed_all(&app, &products).await;
    // Nothing in Redis (e.g. flushed): Postgres still knows the best sellers.
    assert_eq!(top(&app, "").await, expected(&products, 10));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_partial_ranking_without_its_marker_is_ignored_until_the_set_is_re_seeded() {
    let app = spawn_app().await;
    let products = catalogue(&[5, 3, 8]);
    seed_all(&app, &products).await;
    // A Redis restarted empty that the projector has only begun to fill again: one score,
    // and a wrong one, but no marker. Postgres answers.
    app.rank_unseeded(&[(products[1].id, 40)]).await;
    assert_eq!(top(&app, "").await, expected(&products, 10));
    // Once the projector marks the set complete, the ranking is Redis'.
    app.rank(&[(products[0].id, 5), (products[2].id, 8)]).await;
    let ranked: Vec<i64> = top(&app, "")
        .await
        .as_array()
        .expect("list")
        .iter()
        .map(|p| p["unitsSold"].as_i64().expect("units"))
        .collect();
    assert_eq!(ranked, vec![40, 8, 5]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_top_limit_or_unknown_parameter_is_refused_naming_it() {
    let app = spawn_app().await;
    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=ten", "limit"),
        ("limit=-1", "limit"),
        ("page=1", "page"),
    ] {
        let (status, body) = app.get_json(&format!("/api/v1/products/top?{query}"), None).await;
        assert_eq!(refused_fields(status, &body), vec![field], "{query}");
    }
}
