//! `GET /api/v1/products/{id}` and `GET /api/v1/orders/{id}` through their Redis
//! documents, as users are read: filled by a miss, answered from Redis while Postgres has
//! lost the row, missing ids cached briefly, every write refused unless newer, and the
//! answers the same from Postgres when Redis is away.

use crate::helpers::{TestApp, assert_error, spawn_app, spawn_app_with_redis};
use crate::shop::{NewLine, NewProduct};
use chrono::Utc;
use domain::user::Role;
use readmodels::cache::CacheLookup;
use readmodels::orders::OrderView;
use readmodels::products::ProductView;
use reqwest::StatusCode;
use reqwest::header::ETAG;
use serde_json::{Value, json};
use uuid::Uuid;

impl TestApp {
    /// Removes rows from Postgres behind the cache's back.
    async fn remove_rows(&self, table: &str, column: &str, id: Uuid) {
        sqlx::query(&format!("DELETE FROM {table} WHERE {column} = $1"))
            .bind(id)
            .execute(&self.db.pool)
            .await
            .expect("delete rows");
    }

    /// The status, `ETag` and body of a GET.
    async fn read(&self, path: &str, token: Option<&str>) -> (StatusCode, Option<String>, Value) {
        let response = self.get(path, token).await;
        let status = response.status();
        let etag = response
            .headers()
            .get(ETAG)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        (status, etag, response.json().await.expect("JSON"))
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_product_reads_the_same_from_postgres_and_from_redis_its_review_etag_included() {
    let app = spawn_app().await;
    let product = app
        .seed_product(NewProduct {
            version: 2,
            ..NewProduct::named("Teapot")
        })
        .await;
    app.seed_stats(product.id, 2, 9, 3).await;
    let path = format!("/api/v1/products/{}", product.id);
    assert_eq!(app.cached_as::<ProductView>(product.id).await, CacheLookup::Miss);

    let (status, etag, from_postgres) = app.read(&path, None).await;
    assert_eq!(status, StatusCode::OK, "{from_postgres}");
    assert_eq!(etag.as_deref(), Some("\"2.3\""));
    assert_eq!(from_postgres["data"]["reviewCount"], 2);
    assert_eq!(from_postgres["data"]["averageRating"], 4.5);
    let CacheLookup::Hit(cached) = app.cached_as::<ProductView>(product.id).await else {
        panic!("the read filled the cache");
    };
    assert_eq!((cached.version, cached.reviews_version), (2, 3));

    // With the rows gone from Postgres, only Redis can still answer.
    app.remove_rows("product_review_stats", "product_id", product.id)
        .await;
    app.remove_rows("products_view", "id", product.id).await;
    let (status, etag, from_redis) = app.read(&path, None).await;
    assert_eq!(status, StatusCode::OK, "{from_redis}");
    assert_eq!(etag.as_deref(), Some("\"2.3\""));
    assert_eq!(from_redis["data"], from_postgres["data"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_product_is_cached_as_missing_until_the_projector_writes_it() {
    let app = spawn_app().await;
    let id = Uuid::now_v7();
    let path = format!("/api/v1/products/{id}");

    let (status, _, body) = app.read(&path, None).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "NOT_FOUND");
    assert_eq!(app.cached_as::<ProductView>(id).await, CacheLookup::Absent);

    // The projector catches up: the row lands in Postgres, the negative entry still answers...
    app.seed_product(NewProduct {
        id,
        ..NewProduct::named("Late Lamp")
    })
    .await;
    let (status, _, body) = app.read(&path, None).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "NOT_FOUND");

    // ...until the projector's write of the document replaces it.
    assert!(app.project_document::<ProductView>(id).await);
    let (status, _, body) = app.read(&path, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["name"], "Late Lamp");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_product_document_is_replaced_only_by_one_newer_in_its_stream_or_its_reviews() {
    let app = spawn_app().await;
    let product = app.seed_product(NewProduct::named("Mug")).await;
    let path = format!("/api/v1/products/{}", product.id);
    let documents = app.documents::<ProductView>();
    let mut conn = app.redis.connection().await;
    let at = |version: i64, reviews_version: i64, name: &str| ProductView {
        version,
        reviews_version,
        name: name.to_owned(),
        ..product.clone()
    };

    let writes = [
        (at(2, 0, "renamed"), true),
        (at(2, 0, "the same again"), false),
        (at(1, 0, "an older read"), false),
        (at(2, 1, "reviewed"), true),
        (at(2, 0, "read before the review"), false),
        (at(3, 1, "renamed again"), true),
        (at(3, 0, "behind on reviews"), false),
        (at(2, 1, "behind on the product"), false),
    ];
    for (document, expected) in &writes {
        let written = documents.put(&mut conn, document).await.expect("write");
        assert_eq!(written, *expected, "{}", document.name);
    }

    let (status, etag, body) = app.read(&path, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(etag.as_deref(), Some("\"3.1\""));
    assert_eq!(body["data"]["name"], "renamed again");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_order_is_answered_from_redis_to_its_owner_and_an_admin_and_hidden_from_others() {
    let app = spawn_app().await;
    let owner = Uuid::now_v7();
    let product = app.seed_product(NewProduct::named("Spoon")).await;
    let order = app
        .seed_order(
            owner,
            Utc::now(),
            true,
            &[NewLine {
                product: &product,
                quantity: 2,
                unit_price_cents: 250,
            }],
        )
        .await;
    let path = format!("/api/v1/orders/{}", order.order_id);
    let owner_token = app.token(owner, Role::User);

    let (status, etag, from_postgres) = app.read(&path, Some(&owner_token)).await;
    assert_eq!(status, StatusCode::OK, "{from_postgres}");
    assert_eq!(etag.as_deref(), Some("\"2\""));
    assert_eq!(from_postgres["data"], json!(order));
    assert_eq!(
        app.cached_as::<OrderView>(order.order_id).await,
        CacheLookup::Hit(order.clone())
    );

    app.remove_rows("order_lines_view", "order_id", order.order_id)
        .await;
    app.remove_rows("orders_view", "id", order.order_id).await;
    for token in [owner_token, app.admin_token().await] {
        let (status, _, from_redis) = app.read(&path, Some(&token)).await;
        assert_eq!(status, StatusCode::OK, "{from_redis}");
        assert_eq!(from_redis["data"], from_postgres["data"]);
    }
    // A cached order is still another user's order.
    let (status, _, body) = app.read(&path, Some(&app.user_token().await)).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "NOT_FOUND");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_order_is_cached_as_missing() {
    let app = spawn_app().await;
    let id = Uuid::now_v7();
    let (status, _, body) = app
        .read(&format!("/api/v1/orders/{id}"), Some(&app.admin_token().await))
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "NOT_FOUND");
    assert_eq!(app.cached_as::<OrderView>(id).await, CacheLookup::Absent);
}

#[tokio::test(flavor = "multi_thread")]
async fn products_and_orders_are_answered_from_postgres_when_redis_is_down() {
    let app = spawn_app_with_redis(Some("redis://127.0.0.1:1")).await;
    let owner = Uuid::now_v7();
    let product = app.seed_product(NewProduct::named("Fork")).await;
    let order = app
        .seed_order(
            owner,
            Utc::now(),
            false,
            &[NewLine {
                product: &product,
                quantity: 1,
                unit_price_cents: 100,
            }],
        )
        .await;

    let (status, etag, body) = app.read(&format!("/api/v1/products/{}", product.id), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(etag.as_deref(), Some("\"1\""));
    assert_eq!(body["data"], json!(product));
    let owner_token = app.token(owner, Role::User);
    let (status, _, body) = app
        .read(&format!("/api/v1/orders/{}", order.order_id), Some(&owner_token))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"], json!(order));

    for path in [
        format!("/api/v1/products/{}", Uuid::now_v7()),
        format!("/api/v1/orders/{}", Uuid::now_v7()),
    ] {
        let (status, _, body) = app.read(&path, Some(&owner_token)).await;
        assert_error(status, &body, StatusCode::NOT_FOUND, "NOT_FOUND");
    }
}
