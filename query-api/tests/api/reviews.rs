//! `GET /api/v1/products/{id}/reviews` and the review numbers of a product, from read
//! models seeded as the projector writes them.

use crate::helpers::{TestApp, refused_fields, spawn_app};
use crate::shop::NewProduct;
use chrono::{Duration, Utc};
use readmodels::products::ProductView;
use reqwest::StatusCode;
use reqwest::header::{ETAG, IF_NONE_MATCH};
use serde_json::Value;
use uuid::Uuid;

impl TestApp {
    async fn seed_review(&self, product: Uuid, rating: i16, minutes_ago: i64, deleted: bool) -> Uuid {
        let id = Uuid::now_v7();
        let at = Utc::now() - Duration::minutes(minutes_ago);
        sqlx::query(
            "INSERT INTO reviews_view (id, product_id, author_id, rating, comment, deleted, version, created_at, updated_at)
             VALUES ($1, $2, $3, $4, 'fine', $5, 1, $6, $6)",
        )
        .bind(id)
        .bind(product)
        .bind(Uuid::now_v7())
        .bind(rating)
        .bind(deleted)
        .bind(at)
        .execute(&self.db.pool)
        .await
        .expect("seed a review");
        id
    }
}

fn ids(body: &Value) -> Vec<String> {
    body["data"]
        .as_array()
        .expect("a list")
        .iter()
        .map(|r| r["id"].as_str().expect("id").to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn reviews_list_newest_first_or_by_rating_in_both_modes_without_deleted_ones() {
    let app = spawn_app().await;
    let product = app.seed_product(NewProduct::named("Mug")).await.id;
    let other = app.seed_product(NewProduct::named("Tea")).await.id;
    let old = app.seed_review(product, 5, 30, false).await;
    let middle = app.seed_review(product, 2, 20, false).await;
    let new = app.seed_review(product, 4, 10, false).await;
    app.seed_review(product, 1, 5, true).await;
    app.seed_review(other, 3, 1, false).await;
    let path = format!("/api/v1/products/{product}/reviews");

    let (status, body) = app.get_json(&path, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ids(&body), [new, middle, old].map(|id| id.to_string()));
    assert_eq!(body["meta"]["pagination"]["total"], 3);
    assert_eq!(body["data"][0]["productId"], product.to_string());
    assert_eq!(body["data"][0]["rating"], 4);

    let (_, by_rating) = app
        .get_json(&format!("{path}?sort=rating&order=desc"), None)
        .await;
    assert_eq!(ids(&by_rating), [old, new, middle].map(|id| id.to_string()));

    let (_, first) = app.get_json(&format!("{path}?sort=rating&limit=2"), None).await;
    assert_eq!(ids(&first), [old, new].map(|id| id.to_string()));
    assert_eq!(first["meta"]["pagination"]["hasMore"], true);
    let cursor = first["meta"]["pagination"]["nextCursor"]
        .as_str()
        .expect("cursor");
    let (_, rest) = app
        .get_json(&format!("{path}?sort=rating&limit=2&cursor={cursor}"), None)
        .await;
    assert_eq!(ids(&rest), [middle.to_string()]);
    assert_eq!(rest["meta"]["pagination"]["hasMore"], false);

    let (status, body) = app
        .get_json(&format!("{path}?limit=2&cursor={cursor}"), None)
        .await;
    assert_eq!(
        refused_fields(status, &body),
        ["cursor"],
        "a cursor of another sort"
    );
    let (status, body) = app.get_json(&format!("{path}?sort=stars&page=0"), None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = app.get_json(&format!("{path}?page=1&limit=2"), None).await;
    assert_eq!(refused_fields(status, &body), ["limit"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_product_carries_its_review_count_and_average_and_its_etag_follows_them() {
    let app = spawn_app().await;
    let product = app
        .seed_product(NewProduct {
            version: 3,
            ..NewProduct::named("Kettle")
        })
        .await
        .id;
    let path = format!("/api/v1/products/{product}");
    let (_, body) = app.get_json(&path, None).await;
    assert_eq!(
        (
            body["data"]["reviewCount"].clone(),
            body["data"]["averageRating"].clone()
        ),
        (0.into(), Value::Null)
    );

    app.seed_stats(product, 3, 11, 4).await;
    // The projector writes the product's document again after the review events.
    app.project_document::<ProductView>(product).await;
    let response = app.get(&path, None).await;
    assert_eq!(response.headers()[ETAG], "\"3.4\"");
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(body["data"]["reviewCount"], 3);
    assert_eq!(body["data"]["averageRating"], 3.67);
    assert_eq!(body["data"]["version"], 3);

    // A copy cached before the reviews is not current any more.
    let url = format!("{}{path}", app.address);
    let stale = app
        .client
        .get(&url)
        .header(IF_NONE_MATCH, "\"3\"")
        .send()
        .await
        .expect("sent");
    assert_eq!(stale.status(), StatusCode::OK);
    let current = app
        .client
        .get(&url)
        .header(IF_NONE_MATCH, "\"3.4\"")
        .send()
        .await
        .expect("sent");
    assert_eq!(current.status(), StatusCode::NOT_MODIFIED);
}
