//! Reviews on the command API: only buyers, one per product and user (also under
//! concurrency), the author edits with If-Match, the author or an admin deletes.

use crate::helpers::{TestApp, body, error_code, spawn_app};
use futures::future::join_all;
use reqwest::Response;
use serde_json::{Value, json};

impl TestApp {
    async fn review(&self, token: &str, product: &str, review: Value) -> Response {
        self.client
            .post(self.url(&format!("/api/v1/products/{product}/reviews")))
            .bearer_auth(token)
            .json(&review)
            .send()
            .await
            .expect("sent")
    }

    /// A signed-in user with a placed order of `product`.
    async fn buyer(&self, email: &str, product: &str) -> (String, String) {
        let (user, token) = self.signed_in(email).await;
        let placed = self
            .order(&token, &user, json!([{"productId": product, "quantity": 1}]))
            .await;
        assert_eq!(placed.status(), 201);
        (user, token)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_buyer_reviews_a_product_once_and_others_may_not() {
    let app = spawn_app().await;
    let (_, admin) = app.admin_token().await;
    let mug = app.product(&admin, "MUG", 1250, 50).await;
    let (buyer, token) = app.buyer("buyer@example.com", &mug).await;
    let response = app
        .review(
            &token,
            &mug,
            json!({"rating": 5, "comment": "  Warm and sturdy. "}),
        )
        .await;
    assert_eq!(response.status(), 201);
    let location = response.headers()["location"]
        .to_str()
        .expect("location")
        .to_owned();
    assert_eq!(response.headers()["etag"], "\"1\"");
    let review = body(response).await["data"].clone();
    assert_eq!(
        location,
        format!(
            "/api/v1/products/{mug}/reviews/{}",
            review["id"].as_str().expect("id")
        )
    );
    assert_eq!(review["productId"], mug.as_str());
    assert_eq!(review["userId"], buyer.as_str());
    assert_eq!(
        (review["rating"].clone(), review["comment"].clone()),
        (json!(5), json!("Warm and sturdy."))
    );
    assert_eq!(review["version"], 1);
    assert!(review["position"].as_i64().is_some_and(|p| p > 0), "{review}");

    let again = app.review(&token, &mug, json!({"rating": 1})).await;
    assert_eq!(error_code(again).await.0, 409);

    let (_, stranger) = app.signed_in("stranger@example.com").await;
    let (status, code, _) = error_code(app.review(&stranger, &mug, json!({"rating": 3})).await).await;
    assert_eq!((status, code.as_str()), (422, "REVIEW_NOT_ALLOWED"));

    let unknown = uuid::Uuid::now_v7().to_string();
    assert_eq!(
        error_code(app.review(&token, &unknown, json!({"rating": 3})).await)
            .await
            .0,
        404
    );
    assert_eq!(
        app.count("SELECT count(*) FROM events WHERE stream_type = 'review'")
            .await,
        1,
        "refused reviews append nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_order_does_not_make_a_buyer() {
    let app = spawn_app().await;
    let (_, admin) = app.admin_token().await;
    let tea = app.product(&admin, "TEA", 399, 10).await;
    let (user, token) = app.signed_in("changed-mind@example.com").await;
    let placed = app
        .order(&token, &user, json!([{"productId": tea, "quantity": 1}]))
        .await;
    let order = body(placed).await["data"]["id"].as_str().expect("id").to_owned();
    let cancelled = app
        .client
        .post(app.url(&format!("/api/v1/orders/{order}/cancel")))
        .bearer_auth(&token)
        .send()
        .await
        .expect("sent");
    assert_eq!(cancelled.status(), 200);
    let (status, code, _) = error_code(app.review(&token, &tea, json!({"rating": 2})).await).await;
    assert_eq!((status, code.as_str()), (422, "REVIEW_NOT_ALLOWED"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn review_input_is_validated() {
    let app = spawn_app().await;
    let (_, admin) = app.admin_token().await;
    let mug = app.product(&admin, "MUG", 1250, 50).await;
    let (_, token) = app.buyer("picky@example.com", &mug).await;
    let long = "x".repeat(2001);
    for bad in [
        json!({"rating": 0}),
        json!({"rating": 6}),
        json!({"rating": 4.5}),
        json!({"rating": "5"}),
        json!({}),
        json!({"rating": 3, "comment": long}),
        json!({"rating": 3, "stars": 3}),
        json!([{"rating": 3}]),
    ] {
        let (status, code, _) = error_code(app.review(&token, &mug, bad.clone()).await).await;
        assert_eq!((status, code.as_str()), (400, "VALIDATION_ERROR"), "{bad}");
    }
    let ok = app
        .review(&token, &mug, json!({"rating": 3, "comment": "é".repeat(2000)}))
        .await;
    assert_eq!(ok.status(), 201);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_reviews_by_one_user_of_one_product_make_exactly_one() {
    let app = spawn_app().await;
    let (_, admin) = app.admin_token().await;
    let mug = app.product(&admin, "MUG", 1250, 50).await;
    let (_, token) = app.buyer("eager@example.com", &mug).await;
    let attempts = (0..8).map(|n| app.review(&token, &mug, json!({"rating": 1 + n % 5})));
    let statuses: Vec<u16> = join_all(attempts)
        .await
        .iter()
        .map(|r| r.status().as_u16())
        .collect();
    assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 1, "{statuses:?}");
    assert!(statuses.iter().all(|s| *s == 201 || *s == 409), "{statuses:?}");
    assert_eq!(
        app.count("SELECT count(*) FROM events WHERE event_type = 'review.written'")
            .await,
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_author_edits_with_if_match_and_the_author_or_an_admin_deletes() {
    let app = spawn_app().await;
    let (_, admin) = app.admin_token().await;
    let mug = app.product(&admin, "MUG", 1250, 50).await;
    let (_, token) = app.buyer("author@example.com", &mug).await;
    let (_, other) = app.buyer("other@example.com", &mug).await;
    let written = body(
        app.review(&token, &mug, json!({"rating": 4, "comment": "Nice"}))
            .await,
    )
    .await;
    let path = format!(
        "/api/v1/products/{mug}/reviews/{}",
        written["data"]["id"].as_str().expect("id")
    );
    let patch = |token: &str, if_match: Option<&str>, change: Value| {
        let mut request = app.client.patch(app.url(&path)).bearer_auth(token).json(&change);
        if let Some(version) = if_match {
            request = request.header("If-Match", version);
        }
        request.send()
    };
    let edited = patch(&token, Some("\"1\""), json!({"rating": 2, "comment": null}))
        .await
        .expect("sent");
    assert_eq!(edited.status(), 200);
    let edited = body(edited).await["data"].clone();
    assert_eq!(
        (
            edited["rating"].clone(),
            edited["comment"].clone(),
            edited["version"].clone()
        ),
        (json!(2), Value::Null, json!(2))
    );
    let stale = patch(&token, Some("\"1\""), json!({"rating": 5}))
        .await
        .expect("sent");
    assert_eq!(error_code(stale).await.0, 412);
    let foreign = patch(&other, None, json!({"rating": 1})).await.expect("sent");
    assert_eq!(error_code(foreign).await.0, 403);
    let empty = patch(&token, None, json!({})).await.expect("sent");
    assert_eq!(error_code(empty).await.0, 400);
    let wrong_product = app
        .client
        .patch(app.url(&format!(
            "/api/v1/products/{}/reviews/{}",
            uuid::Uuid::now_v7(),
            written["data"]["id"].as_str().expect("id")
        )))
        .bearer_auth(&token)
        .json(&json!({"rating": 1}))
        .send()
        .await
        .expect("sent");
    assert_eq!(error_code(wrong_product).await.0, 404);

    let delete = |token: &str| app.client.delete(app.url(&path)).bearer_auth(token).send();
    assert_eq!(error_code(delete(&other).await.expect("sent")).await.0, 403);
    assert_eq!(delete(&admin).await.expect("sent").status(), 204);
    assert_eq!(error_code(delete(&token).await.expect("sent")).await.0, 404);
    // Deleted, the author may review the product again.
    assert_eq!(app.review(&token, &mug, json!({"rating": 3})).await.status(), 201);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_review_repeated_with_its_idempotency_key_answers_the_first_answer() {
    let app = spawn_app().await;
    let (_, admin) = app.admin_token().await;
    let mug = app.product(&admin, "MUG", 1250, 50).await;
    let (_, token) = app.buyer("retry@example.com", &mug).await;
    let send = || {
        app.client
            .post(app.url(&format!("/api/v1/products/{mug}/reviews")))
            .bearer_auth(&token)
            .header("Idempotency-Key", "review-once")
            .json(&json!({"rating": 4, "comment": "Again"}))
            .send()
    };
    let first = send().await.expect("sent");
    assert_eq!(first.status(), 201);
    let first = body(first).await["data"].clone();
    let second = send().await.expect("sent");
    assert_eq!(second.status(), 201);
    assert_eq!(
        body(second).await["data"],
        first,
        "the stored answer, position included"
    );
    assert_eq!(
        app.count("SELECT count(*) FROM events WHERE event_type = 'review.written'")
            .await,
        1
    );
}
