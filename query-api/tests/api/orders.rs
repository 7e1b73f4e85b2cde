//! `GET /api/v1/users/{id}/orders` and `GET /api/v1/orders/{id}`: owners and
//! administrators only, newest first, lines included, status filter, both page modes.

use crate::helpers::{TestApp, assert_error, refused_fields, spawn_app};
use crate::shop::{NewLine, NewProduct, ids, walk};
use chrono::{Duration, Utc};
use domain::user::Role;
use query_api::orders::OrderView;
use reqwest::StatusCode;
use reqwest::header::{ETAG, IF_NONE_MATCH};
use serde_json::json;
use uuid::Uuid;

/// `count` orders of `user`, placed an hour apart (oldest first), every third one
/// cancelled, each with one to three lines.
async fn seed_orders(app: &TestApp, user: Uuid, count: usize) -> Vec<OrderView> {
    let mug = app.seed_product(NewProduct::named("mug")).await;
    let tea = app.seed_product(NewProduct::named("tea")).await;
    let pot = app.seed_product(NewProduct::named("pot")).await;
    let catalogue = [&mug, &tea, &pot];
    let start = Utc::now() - Duration::days(2);
    let mut orders = Vec::new();
    for i in 0..count {
        let lines: Vec<NewLine> = (0..=(i % 3))
            .map(|l| NewLine {
                product: catalogue[l],
                quantity: (i + l + 1) as i64,
                unit_price_cents: 100 * (l as i64 + 1),
            })
            .collect();
        let placed_at = start + Duration::hours(i as i64);
        orders.push(app.seed_order(user, placed_at, i % 3 == 2, &lines).await);
    }
    orders
}

fn newest_first(orders: &[OrderView]) -> Vec<Uuid> {
    orders.iter().rev().map(|o| o.order_id).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_users_orders_come_newest_first_with_their_lines_in_both_modes() {
    let app = spawn_app().await;
    let user = Uuid::now_v7();
    let orders = seed_orders(&app, user, 7).await;
    seed_orders(&app, Uuid::now_v7(), 2).await;
    let token = app.token(user, Role::User);
    let path = format!("/api/v1/users/{user}/orders");

    let (status, body) = app.get_json(&path, Some(&token)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let expected: Vec<&OrderView> = orders.iter().rev().collect();
    assert_eq!(body["data"], json!(expected));
    assert_eq!(
        body["meta"]["pagination"],
        json!({"page": 1, "perPage": 20, "total": 7, "totalPages": 1, "hasNext": false, "hasPrev": false})
    );
    let first = &body["data"][0];
    assert_eq!(first["id"], json!(orders[6].order_id));
    assert_eq!(first["lines"].as_array().map(Vec::len), Some(1));
    assert_eq!(
        first["lines"][0],
        json!({"productId": orders[6].lines[0].product_id, "sku": "MUG", "name": "mug",
               "quantity": 7, "unitPriceCents": 100, "lineTotalCents": 700})
    );
    assert_eq!(body["data"][1]["status"], "cancelled");
    assert!(body["data"][1]["cancelledAt"].is_string());
    assert_eq!(body["data"][1]["lines"].as_array().map(Vec::len), Some(3));

    let (_, page2) = app
        .get_json(&format!("{path}?page=2&perPage=3"), Some(&token))
        .await;
    assert_eq!(ids(&page2), newest_first(&orders)[3..6]);
    assert_eq!(page2["meta"]["pagination"]["totalPages"], 3);
    assert_eq!(
        walk(&app, &format!("{path}?limit=2"), Some(&token)).await,
        newest_first(&orders)
    );
    let oldest_first: Vec<Uuid> = orders.iter().map(|o| o.order_id).collect();
    assert_eq!(
        walk(
            &app,
            &format!("{path}?limit=3&sort=placedAt&order=asc"),
            Some(&token)
        )
        .await,
        oldest_first
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_status_filter_keeps_placed_or_cancelled_orders() {
    let app = spawn_app().await;
    let user = Uuid::now_v7();
    let orders = seed_orders(&app, user, 6).await;
    let token = app.token(user, Role::User);
    let of = |cancelled: bool| -> Vec<Uuid> {
        orders
            .iter()
            .rev()
            .filter(|o| (o.status == "cancelled") == cancelled)
            .map(|o| o.order_id)
            .collect()
    };
    for (status, expected) in [("placed", of(false)), ("cancelled", of(true))] {
        let path = format!("/api/v1/users/{user}/orders?status={status}");
        let (code, body) = app.get_json(&path, Some(&token)).await;
        assert_eq!(code, StatusCode::OK, "{body}");
        assert_eq!(ids(&body), expected, "{status}");
        assert_eq!(body["meta"]["pagination"]["total"], expected.len());
        assert_eq!(
            walk(&app, &format!("{path}&limit=1"), Some(&token)).await,
            expected
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn only_the_owner_or_an_admin_may_list_a_users_orders() {
    let app = spawn_app().await;
    let owner = Uuid::now_v7();
    let orders = seed_orders(&app, owner, 2).await;
    let path = format!("/api/v1/users/{owner}/orders");

    let (status, body) = app.get_json(&path, Some(&app.user_token().await)).await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "FORBIDDEN");
    let (status, body) = app.get_json(&path, None).await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    let (status, body) = app.get_json(&path, Some(&app.admin_token().await)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(ids(&body), newest_first(&orders));
    let nobody = format!("/api/v1/users/{}/orders", Uuid::now_v7());
    let (status, body) = app.get_json(&nobody, Some(&app.admin_token().await)).await;
    assert_eq!((status, &body["data"]), (StatusCode::OK, &json!([])));
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_order_list_parameters_are_refused_naming_the_parameter() {
    let app = spawn_app().await;
    let owner = Uuid::now_v7();
    seed_orders(&app, owner, 3).await;
    let token = app.token(owner, Role::User);
    let path = format!("/api/v1/users/{owner}/orders");
    let (_, first) = app.get_json(&format!("{path}?limit=1"), Some(&token)).await;
    let cursor = first["meta"]["pagination"]["nextCursor"]
        .as_str()
        .expect("a cursor")
        .to_owned();

    let cases = [
        ("status=shipped".to_owned(), "status"),
        ("sort=totalCents".to_owned(), "sort"),
        ("order=newest".to_owned(), "order"),
        ("perPage=101".to_owned(), "perPage"),
        ("limit=0".to_owned(), "limit"),
        ("page=2&cursor=x".to_owned(), "cursor"),
        ("q=tea".to_owned(), "q"),
        ("cursor=nonsense".to_owned(), "cursor"),
        (format!("cursor={cursor}&status=placed"), "cursor"),
        (format!("cursor={cursor}&order=asc"), "cursor"),
    ];
    for (query, field) in cases {
        let (status, body) = app.get_json(&format!("{path}?{query}"), Some(&token)).await;
        assert_eq!(refused_fields(status, &body), vec![field], "{query}");
    }
    // A cursor only continues the list of the user it was made for.
    let other = format!("/api/v1/users/{}/orders?cursor={cursor}", Uuid::now_v7());
    let (status, body) = app.get_json(&other, Some(&app.admin_token().await)).await;
    assert_eq!(refused_fields(status, &body), ["cursor"]);
    let (status, body) = app
        .get_json("/api/v1/users/not-a-uuid/orders", Some(&token))
        .await;
    assert_eq!(refused_fields(status, &body), ["id"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_order_is_read_by_its_owner_or_an_admin_and_is_not_found_for_anyone_else() {
    let app = spawn_app().await;
    let owner = Uuid::now_v7();
    let order = seed_orders(&app, owner, 3).await.remove(2);
    let path = format!("/api/v1/orders/{}", order.order_id);

    for token in [app.token(owner, Role::User), app.admin_token().await] {
        let response = app.get(&path, Some(&token)).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()[ETAG], "\"2\"");
        let body: serde_json::Value = response.json().await.expect("JSON");
        assert_eq!(body["data"], json!(order));
        assert_eq!(body["data"]["lines"].as_array().map(Vec::len), Some(3));
    }
    // Another user's order looks exactly like an unknown one.
    let stranger = app.user_token().await;
    let unknown = format!("/api/v1/orders/{}", Uuid::now_v7());
    for (path, token) in [
        (&path, &stranger),
        (&unknown, &stranger),
        (&unknown, &app.admin_token().await),
    ] {
        let (status, body) = app.get_json(path, Some(token)).await;
        assert_error(status, &body, StatusCode::NOT_FOUND, "NOT_FOUND");
        assert_eq!(body["error"]["message"], "order not found");
    }
    let (status, body) = app.get_json(&path, None).await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    let (status, body) = app
        .get_json("/api/v1/orders/123", Some(&app.admin_token().await))
        .await;
    assert_eq!(refused_fields(status, &body), ["id"]);

    let not_modified = app
        .client
        .get(format!("{}{path}", app.address))
        .bearer_auth(app.token(owner, Role::User))
        .header(IF_NONE_MATCH, "\"2\"")
        .send()
        .await
        .expect("answered");
    assert_eq!(not_modified.status(), StatusCode::NOT_MODIFIED);
}
