//! `GET /api/v1/products`: public, page and cursor modes, filters and sorts.

use crate::helpers::{TestApp, spawn_app};
use crate::shop::{NewProduct, ids, walk};
use chrono::{Duration, Utc};
use query_api::products::ProductView;
use reqwest::StatusCode;
use serde_json::json;
use std::collections::HashSet;
use uuid::Uuid;

/// Seeds products named `names`, created one minute apart (in that order), in the past.
async fn seed_in_order(app: &TestApp, names: &[&str]) -> Vec<ProductView> {
    let start = Utc::now() - Duration::hours(1);
    let mut products = Vec::new();
    for (i, name) in names.iter().enumerate() {
        products.push(
            app.seed_product(NewProduct {
                created_at: start + Duration::minutes(i as i64),
                ..NewProduct::named(name)
            })
            .await,
        );
    }
    products
}

#[tokio::test(flavor = "multi_thread")]
async fn page_mode_lists_the_products_on_sale_with_totals_without_a_token() {
    let app = spawn_app().await;
    let products = seed_in_order(&app, &["p1", "p2", "p3", "p4", "p5"]).await;

    let mut seen = Vec::new();
    for page in 1..=3 {
        let (status, body) = app
            .get_json(&format!("/api/v1/products?page={page}&perPage=2"), None)
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(
            body["meta"]["pagination"],
            json!({"page": page, "perPage": 2, "total": 5, "totalPages": 3, "hasNext": page < 3, "hasPrev": page > 1})
        );
        seen.extend(ids(&body));
    }
    let expected: Vec<Uuid> = products.iter().map(|p| p.id).collect();
    assert_eq!(seen, expected);

    let (_, body) = app.get_json("/api/v1/products", None).await;
    assert_eq!(body["data"][0], json!(products[0]));
    assert_eq!(
        body["meta"]["pagination"],
        json!({"page": 1, "perPage": 20, "total": 5, "totalPages": 1, "hasNext": false, "hasPrev": false})
    );
    let (status, body) = app.get_json("/api/v1/products?page=9", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["data"], json!([]));
}

#[tokio::test(flavor = "multi_thread")]
async fn cursor_mode_visits_every_product_exactly_once_while_products_are_added() {
    let app = spawn_app().await;
    let names: Vec<String> = (0..10).map(|i| format!("before {i}")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let initial = seed_in_order(&app, &names).await;

    let mut seen = Vec::new();
    let mut added_later = Vec::new();
    let mut path = "/api/v1/products?limit=3".to_owned();
    for page in 0.. {
        assert!(page < 50, "the cursor never reached the end");
        let (status, body) = app.get_json(&path, None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        seen.extend(ids(&body));
        let Some(cursor) = body["meta"]["pagination"]["nextCursor"].as_str() else {
            assert_eq!(body["meta"]["pagination"]["hasMore"], false);
            break;
        };
        path = format!("/api/v1/products?limit=3&cursor={cursor}");
        // Between pages: one product sorts before everything served, one after.
        if page < 3 {
            app.seed_product(NewProduct {
                created_at: Utc::now() - Duration::days(1),
                ..NewProduct::named("early")
            })
            .await;
            added_later.push(app.seed_product(NewProduct::named("late")).await.id);
        }
    }

    let unique: HashSet<Uuid> = seen.iter().copied().collect();
    assert_eq!(unique.len(), seen.len(), "no product is served twice");
    let mut expected: Vec<Uuid> = initial.iter().map(|p| p.id).collect();
    expected.extend(added_later);
    assert_eq!(seen, expected);
}

#[tokio::test(flavor = "multi_thread")]
async fn sorts_by_price_and_name_in_both_directions_and_both_modes() {
    let app = spawn_app().await;
    // Price order, name order and creation order all differ; two prices tie.
    let seeded = [
        ("delta", 300),
        ("alpha", 100),
        ("echo", 200),
        ("charlie", 300),
        ("bravo", 50),
    ];
    let mut products = Vec::new();
    for (name, price_cents) in seeded {
        products.push(
            app.seed_product(NewProduct {
                price_cents,
                ..NewProduct::named(name)
            })
            .await,
        );
    }
    let mut by_price = products.clone();
    by_price.sort_by_key(|p| (p.price_cents, p.id));
    let by_price: Vec<Uuid> = by_price.iter().map(|p| p.id).collect();
    let mut by_name = products.clone();
    by_name.sort_by(|a, b| a.name.cmp(&b.name));
    let by_name: Vec<Uuid> = by_name.iter().map(|p| p.id).collect();
    let reversed = |ids: &[Uuid]| ids.iter().rev().copied().collect::<Vec<_>>();

    let cases = [
        ("sort=priceCents", by_price.clone()),
        ("sort=priceCents&order=asc", by_price.clone()),
        ("sort=priceCents&order=desc", reversed(&by_price)),
        ("sort=name", by_name.clone()),
        ("sort=name&order=desc", reversed(&by_name)),
    ];
    for (query, expected) in cases {
        assert_eq!(
            walk(&app, &format!("/api/v1/products?limit=2&{query}"), None).await,
            expected,
            "{query}"
        );
        let (_, body) = app.get_json(&format!("/api/v1/products?{query}"), None).await;
        assert_eq!(ids(&body), expected, "{query}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn q_price_and_stock_filters_combine_and_wildcards_match_literally() {
    let app = spawn_app().await;
    let product = |name: &str, price_cents, stock| NewProduct {
        price_cents,
        stock,
        ..NewProduct::named(name)
    };
    let mug = app.seed_product(product("Blue Mug", 800, 3)).await;
    let cup = app
        .seed_product(NewProduct {
            sku: "CUP_01".into(),
            description: "Holds 100% of your tea".into(),
            ..product("Cup", 500, 0)
        })
        .await;
    let plate = app
        .seed_product(NewProduct {
            sku: "PLATE-X".into(),
            description: "A blue plate".into(),
            ..product("Plate", 1500, 10)
        })
        .await;
    let bowl = app.seed_product(product("Bowl", 0, 1)).await;

    let cases = [
        ("q=BLUE", vec![mug.id, plate.id]),
        ("q=cup_", vec![cup.id]),
        ("q=_", vec![cup.id]),
        ("q=%25", vec![cup.id]),
        ("q=plate-x", vec![plate.id]),
        ("q=nothing", vec![]),
        ("q=", vec![mug.id, cup.id, plate.id, bowl.id]),
        ("minPriceCents=800", vec![mug.id, plate.id]),
        ("maxPriceCents=800", vec![mug.id, cup.id, bowl.id]),
        ("minPriceCents=500&maxPriceCents=800", vec![mug.id, cup.id]),
        ("minPriceCents=0&maxPriceCents=0", vec![bowl.id]),
        ("inStock=true", vec![mug.id, plate.id, bowl.id]),
        ("inStock=false", vec![cup.id]),
        ("q=blue&inStock=true&maxPriceCents=1000", vec![mug.id]),
    ];
    for (query, expected) in cases {
        let (status, body) = app.get_json(&format!("/api/v1/products?{query}"), None).await;
        assert_eq!(status, StatusCode::OK, "{query}: {body}");
        assert_eq!(ids(&body), expected, "{query}");
        assert_eq!(body["meta"]["pagination"]["total"], expected.len(), "{query}");
        assert_eq!(
            walk(&app, &format!("/api/v1/products?limit=1&{query}"), None).await,
            expected,
            "{query}"
        );
    }
}
