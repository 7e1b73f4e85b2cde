//! Reviews, end to end through the four services: a buyer reviews a product, the review
//! shows in the product's list and in its count and average, an edit changes them, a
//! deletion takes the review out again.

mod support;

use serde_json::{Value, json};
use std::time::Duration;
use support::{ADMIN_EMAIL, ADMIN_PASSWORD, Stack};
use testkit::eventually;

const WAIT: Duration = Duration::from_secs(30);

async fn data(response: reqwest::Response) -> Value {
    response.json::<Value>().await.expect("JSON body")["data"].clone()
}

async fn token(http: &reqwest::Client, stack: &Stack, email: &str, password: &str) -> String {
    let response = http
        .post(format!("{}/api/v1/auth/login", stack.command))
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .expect("login");
    assert_eq!(response.status(), 200, "login of {email}");
    data(response).await["accessToken"]
        .as_str()
        .expect("token")
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_buyers_review_reaches_the_product_and_its_list_and_leaves_with_its_deletion() {
    let stack = Stack::start().await;
    let http = reqwest::Client::new();
    let admin = token(&http, &stack, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let response = http
        .post(format!("{}/api/v1/products", stack.command))
        .bearer_auth(&admin)
        .json(&json!({"sku": "KETTLE", "name": "Kettle", "description": "", "priceCents": 2999, "currency": "EUR", "stock": 5}))
        .send()
        .await
        .expect("create product");
    assert_eq!(response.status(), 201);
    let product = data(response).await["id"].as_str().expect("id").to_owned();

    let response = http
        .post(format!("{}/api/v1/auth/register", stack.command))
        .json(&json!({"email": "ada@example.com", "name": "Ada", "password": "engine1843x"}))
        .send()
        .await
        .expect("register");
    let user = data(response).await["id"].as_str().expect("id").to_owned();
    let buyer = token(&http, &stack, "ada@example.com", "engine1843x").await;
    let reviews = format!("{}/api/v1/products/{product}/reviews", stack.command);

    // Not a buyer yet.
    let refused = http
        .post(&reviews)
        .bearer_auth(&buyer)
        .json(&json!({"rating": 5}))
        .send()
        .await
        .expect("review");
    assert_eq!(refused.status(), 422);

    let ordered = http
        .post(format!("{}/api/v1/users/{user}/orders", stack.command))
        .bearer_auth(&buyer)
        .json(&json!({"items": [{"productId": product, "quantity": 1}]}))
        .send()
        .await
        .expect("order");
    assert_eq!(ordered.status(), 201);
    let written = http
        .post(&reviews)
        .bearer_auth(&buyer)
        .json(&json!({"rating": 5, "comment": "Boils fast."}))
        .send()
        .await
        .expect("review");
    assert_eq!(written.status(), 201);
    let review = data(written).await;
    let review_id = review["id"].as_str().expect("id").to_owned();
    assert_eq!(review["userId"], user.as_str());

    let product_url = format!("{}/api/v1/products/{product}", stack.query);
    let list_url = format!("{}/api/v1/products/{product}/reviews", stack.query);
    let numbers = |count: i64, average: Value| {
        let http = http.clone();
        let url = product_url.clone();
        async move {
            let response = http.get(&url).send().await.ok()?;
            let product = data(response).await;
            (product["reviewCount"] == count && product["averageRating"] == average).then_some(product)
        }
    };
    eventually(WAIT, "the review in the product's numbers", || {
        numbers(1, json!(5.0))
    })
    .await;
    let list = data(http.get(&list_url).send().await.expect("list")).await;
    assert_eq!(list[0]["id"], review_id.as_str());
    assert_eq!(list[0]["comment"], "Boils fast.");

    let edited = http
        .patch(format!("{reviews}/{review_id}"))
        .bearer_auth(&buyer)
        .header("If-Match", "\"1\"")
        .json(&json!({"rating": 2}))
        .send()
        .await
        .expect("edit");
    assert_eq!(edited.status(), 200);
    eventually(WAIT, "the edited rating in the product's numbers", || {
        numbers(1, json!(2.0))
    })
    .await;

    let deleted = http
        .delete(format!("{reviews}/{review_id}"))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("delete");
    assert_eq!(deleted.status(), 204);
    eventually(WAIT, "no review left in the product's numbers", || {
        numbers(0, Value::Null)
    })
    .await;
    let list = data(http.get(&list_url).send().await.expect("list")).await;
    assert_eq!(list, json!([]));
}
