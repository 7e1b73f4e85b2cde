//! Read-your-writes through the four services: a write's `X-Consistency-Token`, sent with
//! the next read, makes the query API answer with that write, at once from the client's
//! point of view (no polling).

mod support;

use serde_json::{Value, json};
use support::{ADMIN_EMAIL, ADMIN_PASSWORD, Stack};

async fn data(response: reqwest::Response) -> Value {
    response.json::<Value>().await.expect("JSON body")["data"].clone()
}

fn token_of(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("x-consistency-token")
        .unwrap_or_else(|| panic!("a consistency token on {}", response.url()))
        .to_str()
        .expect("ascii")
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_read_back_with_its_token_is_always_there() {
    let stack = Stack::start().await;
    let http = reqwest::Client::new();
    let login = |email: &'static str, password: &'static str| {
        let http = http.clone();
        let url = format!("{}/api/v1/auth/login", stack.command);
        async move {
            let response = http
                .post(url)
                .json(&json!({"email": email, "password": password}))
                .send()
                .await
                .expect("login");
            assert!(
                response.headers().get("x-consistency-token").is_none(),
                "a login appends nothing"
            );
            data(response).await["accessToken"]
                .as_str()
                .expect("token")
                .to_owned()
        }
    };
    let admin = login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let created = http
        .post(format!("{}/api/v1/products", stack.command))
        .bearer_auth(&admin)
        .json(&json!({"sku": "CUP-1", "name": "Cup", "description": "", "priceCents": 800, "currency": "EUR", "stock": 3}))
        .send()
        .await
        .expect("create");
    assert_eq!(created.status(), 201);
    let token = token_of(&created);
    let product = data(created).await["id"].as_str().expect("id").to_owned();
    let read = http
        .get(format!("{}/api/v1/products/{product}", stack.query))
        .header("X-Consistency-Token", &token)
        .send()
        .await
        .expect("read");
    assert_eq!(read.status(), 200, "the product, at once");

    let registered = http
        .post(format!("{}/api/v1/auth/register", stack.command))
        .json(&json!({"email": "lin@example.com", "name": "Lin", "password": "kernel1991x"}))
        .send()
        .await
        .expect("register");
    assert_eq!(registered.status(), 201);
    let user = data(registered).await["id"].as_str().expect("id").to_owned();
    let buyer = login("lin@example.com", "kernel1991x").await;
    for round in 0..5 {
        let renamed = http
            .patch(format!("{}/api/v1/users/{user}", stack.command))
            .bearer_auth(&buyer)
            .json(&json!({"name": format!("Lin {round}")}))
            .send()
            .await
            .expect("rename");
        assert_eq!(renamed.status(), 200);
        let token = token_of(&renamed);
        assert!(token.starts_with(&format!("v1;user:{user}:")), "{token}");
        let me = http
            .get(format!("{}/api/v1/me", stack.query))
            .bearer_auth(&buyer)
            .header("X-Consistency-Token", &token)
            .send()
            .await
            .expect("me");
        assert_eq!(me.status(), 200);
        assert_eq!(data(me).await["name"], format!("Lin {round}"));
    }

    let placed = http
        .post(format!("{}/api/v1/users/{user}/orders", stack.command))
        .bearer_auth(&buyer)
        .json(&json!({"items": [{"productId": product, "quantity": 2}]}))
        .send()
        .await
        .expect("order");
    assert_eq!(placed.status(), 201);
    let token = token_of(&placed);
    assert!(
        token.contains(&format!("product:{product}:2")),
        "the stock reservation too: {token}"
    );
    let order = data(placed).await["id"].as_str().expect("id").to_owned();
    let read = http
        .get(format!("{}/api/v1/orders/{order}", stack.query))
        .bearer_auth(&buyer)
        .header("X-Consistency-Token", &token)
        .send()
        .await
        .expect("read order");
    assert_eq!(read.status(), 200);
    assert_eq!(data(read).await["status"], "placed");
    let stock = http
        .get(format!("{}/api/v1/products/{product}", stack.query))
        .header("X-Consistency-Token", &token)
        .send()
        .await
        .expect("read product");
    assert_eq!(data(stock).await["stock"], 1);
}
