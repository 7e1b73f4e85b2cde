//! `/api/v2` beside `/api/v1`: the v2 user carries a summary of their orders; the v1 user
//! keeps its exact shape and points at its successor.

use crate::helpers::{NewUser, spawn_app};
use crate::shop::{NewLine, NewProduct};
use chrono::{Duration, Utc};
use domain::user::Role;
use reqwest::StatusCode;
use reqwest::header::{ETAG, IF_NONE_MATCH};
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread")]
async fn the_v2_user_sums_up_their_orders_and_v1_stays_as_it_was() {
    let app = spawn_app().await;
    let ada = app.seed(NewUser::named("Ada")).await;
    let token = app.token(ada.id, Role::User);
    let mug = app.seed_product(NewProduct::named("mug")).await;
    let line = |quantity| NewLine {
        product: &mug,
        quantity,
        unit_price_cents: 250,
    };
    let start = Utc::now() - Duration::days(1);
    app.seed_order(ada.id, start, false, &[line(2)]).await;
    app.seed_order(ada.id, start + Duration::hours(1), true, &[line(9)])
        .await;
    let latest = app
        .seed_order(ada.id, start + Duration::hours(2), false, &[line(1)])
        .await;

    let (status, v2) = app.get_json("/api/v2/me", Some(&token)).await;
    assert_eq!(status, StatusCode::OK, "{v2}");
    let orders = &v2["data"]["orders"];
    assert_eq!(orders["count"], 2, "the cancelled order is left out");
    assert_eq!(
        orders["totalSpent"],
        json!([{"currency": "EUR", "amountCents": 750}])
    );
    assert_eq!(
        orders["lastOrderAt"]
            .as_str()
            .map(|t| t.parse::<chrono::DateTime<Utc>>().expect("time")),
        Some(latest.placed_at)
    );
    let (status, by_id) = app
        .get_json(&format!("/api/v2/users/{}", ada.id), Some(&token))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(by_id["data"], v2["data"]);

    // v1: the same user fields, nothing added, and a pointer to v2.
    let v1 = app.get("/api/v1/me", Some(&token)).await;
    assert_eq!(v1.headers()["deprecation"], "@1796169600");
    assert_eq!(v1.headers()["link"], "</api/v2/me>; rel=\"successor-version\"");
    let v1: Value = v1.json().await.expect("JSON");
    let mut without_orders = v2["data"].clone();
    without_orders.as_object_mut().expect("object").remove("orders");
    assert_eq!(v1["data"], without_orders);
    let by_id = app.get(&format!("/api/v1/users/{}", ada.id), Some(&token)).await;
    assert_eq!(
        by_id.headers()["link"],
        format!("</api/v2/users/{}>; rel=\"successor-version\"", ada.id).as_str()
    );
    // Errors of a replaced route say it too; the list, which is not replaced, does not.
    let unauthenticated = app.get("/api/v1/me", None).await;
    assert_eq!(unauthenticated.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(unauthenticated.headers()["deprecation"], "@1796169600");
    let list = app.get("/api/v1/users", Some(&app.admin_token().await)).await;
    assert!(!list.headers().contains_key("deprecation"));

    // The v2 ETag follows the orders too.
    let first = app.get("/api/v2/me", Some(&token)).await;
    let etag = first.headers()[ETAG].clone();
    let unchanged = app
        .client
        .get(format!("{}/api/v2/me", app.address))
        .bearer_auth(&token)
        .header(IF_NONE_MATCH, etag.clone())
        .send()
        .await
        .expect("sent");
    assert_eq!(unchanged.status(), StatusCode::NOT_MODIFIED);
    app.seed_order(ada.id, Utc::now(), false, &[line(4)]).await;
    let changed = app
        .client
        .get(format!("{}/api/v2/me", app.address))
        .bearer_auth(&token)
        .header(IF_NONE_MATCH, etag)
        .send()
        .await
        .expect("sent");
    assert_eq!(changed.status(), StatusCode::OK);
    let body: Value = changed.json().await.expect("JSON");
    assert_eq!(body["data"]["orders"]["count"], 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_document_shows_both_versions_and_marks_the_replaced_routes() {
    let app = spawn_app().await;
    let (_, document) = app.get_json("/openapi.json", None).await;
    let paths = &document["paths"];
    assert!(paths["/api/v2/me"]["get"].is_object());
    assert!(paths["/api/v2/users/{id}"]["get"].is_object());
    assert_eq!(paths["/api/v1/me"]["get"]["deprecated"], true);
    assert_eq!(paths["/api/v1/users/{id}"]["get"]["deprecated"], true);
    assert!(
        paths["/api/v1/users"]["get"]["deprecated"].is_null(),
        "the list is not replaced"
    );
}
