//! Orders: priced lines, all-or-nothing stock, cancellation, and the stock invariant
//! under concurrency.

use crate::helpers::{body, error_code, spawn_app};
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_prices_its_lines_and_takes_the_stock() {
    let app = spawn_app().await;
    let (_, admin) = app.admin_token().await;
    let (user, token) = app.signed_in("buyer@example.com").await;
    let mug = app.product(&admin, "MUG", 1250, 5).await;
    let tea = app.product(&admin, "TEA", 399, 10).await;
    let response = app
        .order(
            &token,
            &user,
            json!([{"productId": mug, "quantity": 2}, {"productId": tea, "quantity": 3}]),
        )
        .await;
    assert_eq!(response.status(), 201);
    let order = body(response).await["data"].clone();
    assert_eq!(order["status"], "placed");
    assert_eq!(order["totalCents"], 2 * 1250 + 3 * 399);
    assert_eq!(order["currency"], "EUR");
    assert_eq!(order["lines"][0]["name"], "Product MUG");
    assert_eq!(order["lines"][0]["lineTotalCents"], 2500);
    assert_eq!((app.stock(&mug).await, app.stock(&tea).await), (3, 7));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_short_on_any_line_takes_nothing_and_names_the_short_lines() {
    let app = spawn_app().await;
    let (_, admin) = app.admin_token().await;
    let (user, token) = app.signed_in("short@example.com").await;
    let plenty = app.product(&admin, "PLENTY", 100, 50).await;
    let scarce = app.product(&admin, "SCARCE", 100, 1).await;
    let response = app
        .order(
            &token,
            &user,
            json!([{"productId": plenty, "quantity": 5}, {"productId": scarce, "quantity": 2}]),
        )
        .await;
    let (status, code, body) = error_code(response).await;
    assert_eq!((status, code.as_str()), (422, "INSUFFICIENT_STOCK"));
    assert_eq!(
        body["error"]["details"],
        json!([{"field": "items[1].quantity", "message": "only 1 in stock"}])
    );
    assert_eq!((app.stock(&plenty).await, app.stock(&scarce).await), (50, 1));
    assert_eq!(
        app.count("SELECT count(*) FROM events WHERE stream_type = 'order'")
            .await,
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn order_input_rules_are_enforced() {
    let app = spawn_app().await;
    let (_, admin) = app.admin_token().await;
    let (user, token) = app.signed_in("rules@example.com").await;
    let (other, _) = app.signed_in("other@example.com").await;
    let p = app.product(&admin, "P", 100, 5000).await;
    let cases: Vec<(Value, u16, &str)> = vec![
        (json!([]), 400, "VALIDATION_ERROR"),
        (json!([{"productId": p, "quantity": 0}]), 400, "VALIDATION_ERROR"),
        (
            json!([{"productId": p, "quantity": 1001}]),
            400,
            "VALIDATION_ERROR",
        ),
        (
            json!([{"productId": p, "quantity": 1}, {"productId": p, "quantity": 1}]),
            400,
            "VALIDATION_ERROR",
        ),
        (
            json!([{"productId": uuid::Uuid::now_v7(), "quantity": 1}]),
            422,
            "UNKNOWN_PRODUCT",
        ),
        (
            json!(
                (0..51)
                    .map(|_| json!({"productId": uuid::Uuid::now_v7(), "quantity": 1}))
                    .collect::<Vec<_>>()
            ),
            400,
            "VALIDATION_ERROR",
        ),
    ];
    for (items, status, code) in cases {
        let (s, c, _) = error_code(app.order(&token, &user, items.clone()).await).await;
        assert_eq!((s, c.as_str()), (status, code), "{items}");
    }
    let (s, _, _) = error_code(
        app.order(&token, &other, json!([{"productId": p, "quantity": 1}]))
            .await,
    )
    .await;
    assert_eq!(s, 403, "ordering for someone else");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retired_products_cannot_be_ordered_but_old_orders_keep_them() {
    let app = spawn_app().await;
    let (_, admin) = app.admin_token().await;
    let (user, token) = app.signed_in("old@example.com").await;
    let p = app.product(&admin, "OLD", 100, 5).await;
    let order = body(
        app.order(&token, &user, json!([{"productId": p, "quantity": 1}]))
            .await,
    )
    .await["data"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    app.client
        .delete(app.url(&format!("/api/v1/products/{p}")))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("sent");
    let (s, c, _) = error_code(
        app.order(&token, &user, json!([{"productId": p, "quantity": 1}]))
            .await,
    )
    .await;
    assert_eq!((s, c.as_str()), (422, "PRODUCT_RETIRED"));
    let cancel = app
        .client
        .post(app.url(&format!("/api/v1/orders/{order}/cancel")))
        .bearer_auth(&token)
        .send()
        .await
        .expect("sent");
    assert_eq!(
        cancel.status(),
        200,
        "an order of a retired product can still be cancelled"
    );
    assert_eq!(app.stock(&p).await, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_gives_the_stock_back_once_and_only_for_owner_or_admin() {
    let app = spawn_app().await;
    let (_, admin) = app.admin_token().await;
    let (user, token) = app.signed_in("cancel@example.com").await;
    let (_, stranger) = app.signed_in("stranger@example.com").await;
    let p = app.product(&admin, "C", 100, 4).await;
    let order = body(
        app.order(&token, &user, json!([{"productId": p, "quantity": 3}]))
            .await,
    )
    .await["data"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let cancel = |who: String| {
        app.client
            .post(app.url(&format!("/api/v1/orders/{order}/cancel")))
            .bearer_auth(who)
            .send()
    };
    assert_eq!(
        cancel(stranger).await.expect("sent").status(),
        404,
        "another user's order reads as unknown"
    );
    let response = cancel(token.clone()).await.expect("sent");
    assert_eq!(response.status(), 200);
    assert_eq!(body(response).await["data"]["status"], "cancelled");
    assert_eq!(app.stock(&p).await, 4);
    let (s, c, _) = error_code(cancel(admin).await.expect("sent")).await;
    assert_eq!((s, c.as_str()), (422, "ORDER_NOT_CANCELLABLE"));
    let unknown = app
        .client
        .post(app.url(&format!("/api/v1/orders/{}/cancel", uuid::Uuid::now_v7())))
        .bearer_auth(&token)
        .send()
        .await
        .expect("sent");
    assert_eq!(unknown.status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_repeated_with_its_idempotency_key_is_placed_once() {
    let app = spawn_app().await;
    let (_, admin) = app.admin_token().await;
    let (user, token) = app.signed_in("idem-order@example.com").await;
    let p = app.product(&admin, "I", 100, 10).await;
    let send = || {
        app.client
            .post(app.url(&format!("/api/v1/users/{user}/orders")))
            .bearer_auth(&token)
            .header("Idempotency-Key", "order-1")
            .json(&json!({"items": [{"productId": p, "quantity": 2}]}))
            .send()
    };
    let first = body(send().await.expect("sent")).await["data"]["id"].clone();
    let again = send().await.expect("sent");
    assert_eq!(again.status(), 201);
    assert_eq!(body(again).await["data"]["id"], first);
    assert_eq!(app.stock(&p).await, 8);
}

/// N clients race for a product with stock S: never more than S units sold, stock never
/// negative, and at every event the units are either in stock or in exactly one live order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_orders_never_sell_more_than_the_stock() {
    let app = spawn_app().await;
    let (_, admin) = app.admin_token().await;
    const STOCK: i64 = 25;
    let product = app.product(&admin, "HOT", 999, STOCK).await;
    let mut buyers = Vec::new();
    for i in 0..8 {
        buyers.push(app.signed_in(&format!("racer{i}@example.com")).await);
    }
    let (app_ref, product_ref) = (&app, &product);
    let attempts = (0..40).map(|i| {
        let (user, token) = buyers[i % buyers.len()].clone();
        let items = json!([{"productId": product_ref, "quantity": 1 + (i % 3) as i64}]);
        async move { (app_ref.order(&token, &user, items).await, token) }
    });
    let responses = futures::future::join_all(attempts).await;
    let mut sold = 0;
    let mut placed = Vec::new();
    for (response, token) in responses {
        let status = response.status().as_u16();
        assert!(
            status == 201 || status == 422,
            "clients see 201 or 422 under contention, got {status}"
        );
        if status == 201 {
            let order = body(response).await["data"].clone();
            sold += order["lines"][0]["quantity"].as_i64().expect("quantity");
            placed.push((order["id"].as_str().expect("id").to_owned(), token));
        }
    }
    assert!(sold <= STOCK, "sold {sold} of {STOCK}");
    assert!(
        placed.len() < 40,
        "demand exceeded the stock, so some orders must have been refused"
    );
    assert_eq!(app.stock(&product).await, STOCK - sold);
    // Cancel a few concurrently while more orders race in.
    let cancels = placed.iter().take(3).map(|(order, token)| {
        app.client
            .post(app.url(&format!("/api/v1/orders/{order}/cancel")))
            .bearer_auth(token)
            .send()
    });
    let more = (0..10).map(|i| {
        let (user, token) = buyers[i % buyers.len()].clone();
        async move {
            app_ref
                .order(&token, &user, json!([{"productId": product_ref, "quantity": 1}]))
                .await
        }
    });
    let (cancelled, _) = futures::join!(
        futures::future::join_all(cancels),
        futures::future::join_all(more)
    );
    assert!(
        cancelled
            .iter()
            .all(|r| r.as_ref().map(|r| r.status() == 200).unwrap_or(false))
    );

    // Replay the product's events: stock never negative, and stock + units in live orders
    // is the initial stock after every single event.
    let events: Vec<(String, Value)> = sqlx::query_as(
        "SELECT event_type, data FROM events WHERE stream_id = $1::uuid ORDER BY stream_version",
    )
    .bind(&product)
    .fetch_all(&app.db.pool)
    .await
    .expect("events");
    let mut live: std::collections::HashMap<String, i64> = std::collections::HashMap::new();
    for (event_type, data) in &events {
        let stock = data["stock"].as_i64().expect("stock after every event");
        assert!(stock >= 0, "negative stock after {event_type}");
        match event_type.as_str() {
            "product.stock_reserved" => {
                assert!(
                    live.insert(data["orderId"].to_string(), data["quantity"].as_i64().expect("q"))
                        .is_none()
                );
            }
            "product.stock_released" => {
                assert!(
                    live.remove(&data["orderId"].to_string()).is_some(),
                    "released an order that held nothing"
                );
            }
            _ => {}
        }
        assert_eq!(
            stock + live.values().sum::<i64>(),
            STOCK,
            "units conserved after {event_type}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ids_of_another_kind_read_as_unknown_not_as_errors() {
    let app = spawn_app().await;
    let (_, admin) = app.admin_token().await;
    let (user, token) = app.signed_in("kinds@example.com").await;
    let product = app.product(&admin, "KIND", 100, 5).await;
    let cancel = app
        .client
        .post(app.url(&format!("/api/v1/orders/{product}/cancel")))
        .bearer_auth(&token)
        .send()
        .await
        .expect("sent");
    assert_eq!(cancel.status(), 404, "a product id is no order");
    let (s, c, _) = error_code(
        app.order(&token, &user, json!([{"productId": user, "quantity": 1}]))
            .await,
    )
    .await;
    assert_eq!(
        (s, c.as_str()),
        (422, "UNKNOWN_PRODUCT"),
        "a user id is no product"
    );
    let patch = app
        .client
        .patch(app.url(&format!("/api/v1/products/{user}")))
        .bearer_auth(&admin)
        .json(&json!({"name": "x"}))
        .send()
        .await
        .expect("sent");
    assert_eq!(patch.status(), 404, "a user id is no product");
}
