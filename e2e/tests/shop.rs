//! The shop, end to end: an admin creates products, a user orders, the confirmation
//! email arrives, the order shows in the user's list and in the best sellers, and a
//! cancellation restores the stock everywhere.

mod support;

use serde_json::{Value, json};
use std::time::Duration;
use support::{ADMIN_EMAIL, ADMIN_PASSWORD, Stack};
use testkit::eventually;

const WAIT: Duration = Duration::from_secs(30);

async fn data(response: reqwest::Response) -> Value {
    response.json::<Value>().await.expect("JSON body")["data"].clone()
}

async fn login(http: &reqwest::Client, stack: &Stack, email: &str, password: &str) -> Value {
    let response = http
        .post(format!("{}/api/v1/auth/login", stack.command))
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .expect("login");
    assert_eq!(response.status(), 200, "login of {email}");
    data(response).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_reaches_the_mailbox_the_order_list_and_the_best_sellers_and_a_cancel_undoes_it() {
    let stack = Stack::start().await;
    let http = reqwest::Client::new();
    let admin = login(&http, &stack, ADMIN_EMAIL, ADMIN_PASSWORD).await["accessToken"]
        .as_str()
        .expect("t")
        .to_owned();

    // The admin creates two products.
    let mut products = Vec::new();
    for (sku, price, stock) in [("MUG-1", 1250, 10), ("TEA-1", 399, 20)] {
        let response = http
            .post(format!("{}/api/v1/products", stack.command))
            .bearer_auth(&admin)
            .json(&json!({"sku": sku, "name": format!("Product {sku}"), "description": "", "priceCents": price, "currency": "EUR", "stock": stock}))
            .send()
            .await
            .expect("create product");
        assert_eq!(response.status(), 201);
        products.push(data(response).await["id"].as_str().expect("id").to_owned());
    }

    // A user registers and orders.
    let response = http
        .post(format!("{}/api/v1/auth/register", stack.command))
        .json(&json!({"email": "grace@example.com", "name": "Grace Hopper", "password": "cobol1959x"}))
        .send()
        .await
        .expect("register");
    assert_eq!(response.status(), 201);
    let user_id = data(response).await["id"].as_str().expect("id").to_owned();
    let token = login(&http, &stack, "grace@example.com", "cobol1959x").await["accessToken"]
        .as_str()
        .expect("t")
        .to_owned();
    let response = http
        .post(format!("{}/api/v1/users/{user_id}/orders", stack.command))
        .bearer_auth(&token)
        .json(&json!({"items": [{"productId": products[0], "quantity": 3}, {"productId": products[1], "quantity": 1}]}))
        .send()
        .await
        .expect("order");
    assert_eq!(response.status(), 201);
    let order = data(response).await;
    let order_id = order["id"].as_str().expect("id").to_owned();
    assert_eq!(order["totalCents"], 3 * 1250 + 399);

    // The confirmation email arrives with the lines, the total and the currency.
    let mail = eventually(WAIT, "the order confirmation email", || async {
        stack
            .smtp
            .messages()
            .into_iter()
            .find(|m| m.to.contains(&"grace@example.com".to_owned()) && m.data.contains("41.49"))
    })
    .await;
    assert!(
        mail.data.contains("Product MUG-1") && mail.data.contains("EUR"),
        "{}",
        mail.data
    );

    // The order is in the user's list, and the mug leads the best sellers.
    let orders = eventually(WAIT, "the order in the user's order list", || async {
        let response = http
            .get(format!("{}/api/v1/users/{user_id}/orders", stack.query))
            .bearer_auth(&token)
            .send()
            .await
            .ok()?;
        let list = data(response).await;
        (list.as_array()?.len() == 1).then_some(list)
    })
    .await;
    assert_eq!(orders[0]["id"], order_id.as_str());
    assert_eq!(orders[0]["lines"][0]["name"], "Product MUG-1");
    eventually(WAIT, "the best sellers", || async {
        let response = http
            .get(format!("{}/api/v1/products/top?limit=10", stack.query))
            .send()
            .await
            .ok()?;
        let top = data(response).await;
        let first = top.as_array()?.first()?.clone();
        (first["id"] == products[0].as_str() && first["unitsSold"] == 3).then_some(())
    })
    .await;
    eventually(WAIT, "the stock taken in the query API", || async {
        let response = http
            .get(format!("{}/api/v1/products/{}", stack.query, products[0]))
            .send()
            .await
            .ok()?;
        (data(response).await["stock"] == 7).then_some(())
    })
    .await;

    // Cancelling restores the stock everywhere and takes the units out of the best sellers.
    let response = http
        .post(format!("{}/api/v1/orders/{order_id}/cancel", stack.command))
        .bearer_auth(&token)
        .send()
        .await
        .expect("cancel");
    assert_eq!(response.status(), 200);
    eventually(WAIT, "the stock restored in the query API", || async {
        let response = http
            .get(format!("{}/api/v1/products/{}", stack.query, products[0]))
            .send()
            .await
            .ok()?;
        (data(response).await["stock"] == 10).then_some(())
    })
    .await;
    eventually(
        WAIT,
        "the cancellation in the order list and the best sellers",
        || async {
            let response = http
                .get(format!("{}/api/v1/orders/{order_id}", stack.query))
                .bearer_auth(&token)
                .send()
                .await
                .ok()?;
            if data(response).await["status"] != "cancelled" {
                return None;
            }
            let response = http
                .get(format!("{}/api/v1/products/top?limit=10", stack.query))
                .send()
                .await
                .ok()?;
            let top = data(response).await;
            top.as_array()?
                .iter()
                .all(|p| p["unitsSold"].as_i64().unwrap_or(0) == 0 || p["id"] != products[0].as_str())
                .then_some(())
        },
    )
    .await;
    stack.nats.cleanup().await;
}
