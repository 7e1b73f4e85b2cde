//! Products: admin-only catalogue commands.

use crate::helpers::{body, error_code, spawn_app};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_creates_a_product_with_integer_cents() {
    let app = spawn_app().await;
    let (_, admin) = app.admin_token().await;
    let response = app
        .client
        .post(app.url("/api/v1/products"))
        .bearer_auth(&admin)
        .json(&json!({"sku": "mug-1", "name": "Mug", "description": "Blue", "priceCents": 1250, "currency": "eur", "stock": 10}))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 201);
    assert_eq!(response.headers()["etag"], "\"1\"");
    let data = body(response).await["data"].clone();
    assert_eq!(
        (data["sku"].as_str(), data["currency"].as_str()),
        (Some("MUG-1"), Some("EUR"))
    );
    assert_eq!(
        (data["priceCents"].as_i64(), data["stock"].as_i64()),
        (Some(1250), Some(10))
    );
    assert!(data["position"].as_i64().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn product_input_is_validated_field_by_field() {
    let app = spawn_app().await;
    let (_, admin) = app.admin_token().await;
    let cases = [
        (
            json!({"sku": "a b", "name": "x", "priceCents": 1, "currency": "EUR", "stock": 1}),
            "sku",
        ),
        (
            json!({"sku": "A", "name": "", "priceCents": 1, "currency": "EUR", "stock": 1}),
            "name",
        ),
        (
            json!({"sku": "A", "name": "x", "priceCents": 12.5, "currency": "EUR", "stock": 1}),
            "priceCents",
        ),
        (
            json!({"sku": "A", "name": "x", "priceCents": -1, "currency": "EUR", "stock": 1}),
            "priceCents",
        ),
        (
            json!({"sku": "A", "name": "x", "priceCents": 1, "currency": "EURO", "stock": 1}),
            "currency",
        ),
        (
            json!({"sku": "A", "name": "x", "priceCents": 1, "currency": "EUR", "stock": -1}),
            "stock",
        ),
    ];
    for (payload, field) in cases {
        let response = app
            .client
            .post(app.url("/api/v1/products"))
            .bearer_auth(&admin)
            .json(&payload)
            .send()
            .await
            .expect("sent");
        let (status, code, body) = error_code(response).await;
        assert_eq!((status, code.as_str()), (400, "VALIDATION_ERROR"), "{payload}");
        assert_eq!(body["error"]["details"][0]["field"], field, "{payload}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skus_are_unique_and_only_admins_manage_products() {
    let app = spawn_app().await;
    let (_, admin) = app.admin_token().await;
    let (_, user) = app.signed_in("shopper@example.com").await;
    app.product(&admin, "ONE", 100, 1).await;
    let payload = json!({"sku": "one", "name": "Again", "priceCents": 1, "currency": "EUR", "stock": 1});
    let response = app
        .client
        .post(app.url("/api/v1/products"))
        .bearer_auth(&admin)
        .json(&payload)
        .send()
        .await
        .expect("sent");
    assert_eq!(error_code(response).await.1, "CONFLICT");
    let response = app
        .client
        .post(app.url("/api/v1/products"))
        .bearer_auth(&user)
        .json(&payload)
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn updating_restocking_and_retiring_a_product() {
    let app = spawn_app().await;
    let (_, admin) = app.admin_token().await;
    let id = app.product(&admin, "LAMP", 5000, 2).await;
    let url = app.url(&format!("/api/v1/products/{id}"));
    let response = app
        .client
        .patch(&url)
        .bearer_auth(&admin)
        .header("If-Match", "\"1\"")
        .json(&json!({"priceCents": 4500}))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 200);
    assert_eq!(body(response).await["data"]["priceCents"], 4500);
    let stale = app
        .client
        .patch(&url)
        .bearer_auth(&admin)
        .header("If-Match", "\"1\"")
        .json(&json!({"name": "Lamp"}))
        .send()
        .await
        .expect("sent");
    assert_eq!(stale.status(), 412);
    let empty = app
        .client
        .patch(&url)
        .bearer_auth(&admin)
        .json(&json!({}))
        .send()
        .await
        .expect("sent");
    assert_eq!(empty.status(), 400);
    let restock = app
        .client
        .post(format!("{url}/restock"))
        .bearer_auth(&admin)
        .json(&json!({"quantity": 3}))
        .send()
        .await
        .expect("sent");
    assert_eq!(body(restock).await["data"]["stock"], 5);
    let zero = app
        .client
        .post(format!("{url}/restock"))
        .bearer_auth(&admin)
        .json(&json!({"quantity": 0}))
        .send()
        .await
        .expect("sent");
    assert_eq!(zero.status(), 400);
    assert_eq!(
        app.client
            .delete(&url)
            .bearer_auth(&admin)
            .send()
            .await
            .expect("sent")
            .status(),
        204
    );
    let (status, code, _) = error_code(
        app.client
            .delete(&url)
            .bearer_auth(&admin)
            .send()
            .await
            .expect("sent"),
    )
    .await;
    assert_eq!((status, code.as_str()), (422, "PRODUCT_RETIRED"));
    let unknown = app
        .client
        .delete(app.url(&format!("/api/v1/products/{}", uuid::Uuid::now_v7())))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("sent");
    assert_eq!(unknown.status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restock_repeated_with_its_idempotency_key_adds_once() {
    let app = spawn_app().await;
    let (_, admin) = app.admin_token().await;
    let id = app.product(&admin, "BOLT", 10, 0).await;
    for _ in 0..3 {
        let response = app
            .client
            .post(app.url(&format!("/api/v1/products/{id}/restock")))
            .bearer_auth(&admin)
            .header("Idempotency-Key", "restock-1")
            .json(&json!({"quantity": 7}))
            .send()
            .await
            .expect("sent");
        assert_eq!(body(response).await["data"]["stock"], 7);
    }
    assert_eq!(app.stock(&id).await, 7);
}
