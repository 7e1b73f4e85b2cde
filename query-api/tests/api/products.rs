//! `GET /api/v1/products/{id}` and the validation of `GET /api/v1/products`: public,
//! ETags, retired products, and parameters refused by name.

use crate::helpers::{NewUser, refused_fields, spawn_app};
use crate::shop::NewProduct;
use reqwest::StatusCode;
use reqwest::header::{CACHE_CONTROL, ETAG, IF_NONE_MATCH};
use serde_json::json;
use uuid::Uuid;

#[tokio::test(flavor = "multi_thread")]
async fn a_product_is_readable_without_a_token_with_its_version_as_etag() {
    let app = spawn_app().await;
    let product = app
        .seed_product(NewProduct {
            version: 4,
            ..NewProduct::named("Teapot")
        })
        .await;
    let path = format!("/api/v1/products/{}", product.id);

    let response = app.get(&path, None).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[ETAG], "\"4\"");
    assert_eq!(response.headers()[CACHE_CONTROL], "public, no-cache");
    let body: serde_json::Value = response.json().await.expect("JSON");
    assert_eq!(body["data"], json!(product));
    assert_eq!(
        body["data"],
        json!({
            "id": product.id, "sku": "TEAPOT", "name": "Teapot", "description": "All about Teapot",
            "priceCents": 1000, "currency": "EUR", "stock": 5, "retired": false, "version": 4,
            "createdAt": product.created_at, "updatedAt": product.updated_at,
            "reviewCount": 0, "averageRating": null,
        })
    );

    let url = format!("{}{path}", app.address);
    let send = |tag: &'static str| app.client.get(&url).header(IF_NONE_MATCH, tag).send();
    let not_modified = send("\"4\"").await.expect("answered");
    assert_eq!(not_modified.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(not_modified.headers()[ETAG], "\"4\"");
    assert!(not_modified.bytes().await.expect("body").is_empty());
    let stale = send("\"3\"").await.expect("answered");
    assert_eq!(stale.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_retired_product_is_readable_by_id_but_not_listed() {
    let app = spawn_app().await;
    let on_sale = app.seed_product(NewProduct::named("kettle")).await;
    let retired = app
        .seed_product(NewProduct {
            retired: true,
            ..NewProduct::named("kettle classic")
        })
        .await;

    let (status, body) = app
        .get_json(&format!("/api/v1/products/{}", retired.id), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["retired"], true);
    assert_eq!(body["data"], json!(retired));

    for query in ["", "?q=kettle", "?limit=10"] {
        let (status, body) = app.get_json(&format!("/api/v1/products{query}"), None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["data"], json!([on_sale]), "{query}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_product_is_not_found_and_a_malformed_id_is_refused_naming_id() {
    let app = spawn_app().await;
    let (status, body) = app
        .get_json(&format!("/api/v1/products/{}", Uuid::now_v7()), None)
        .await;
    crate::helpers::assert_error(status, &body, StatusCode::NOT_FOUND, "NOT_FOUND");
    let (status, body) = app.get_json("/api/v1/products/not-a-uuid", None).await;
    assert_eq!(refused_fields(status, &body), ["id"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_product_list_parameters_are_refused_naming_the_parameter() {
    let app = spawn_app().await;
    for name in ["one", "two"] {
        app.seed_product(NewProduct::named(name)).await;
    }
    let (_, first) = app
        .get_json("/api/v1/products?limit=1&sort=priceCents&minPriceCents=5", None)
        .await;
    let price_cursor = first["meta"]["pagination"]["nextCursor"]
        .as_str()
        .expect("a cursor")
        .to_owned();
    app.seed(NewUser::named("someone")).await;
    app.seed(NewUser::named("another")).await;
    let (_, users) = app
        .get_json("/api/v1/users?limit=1", Some(&app.admin_token().await))
        .await;
    let users_cursor = users["meta"]["pagination"]["nextCursor"]
        .as_str()
        .expect("a users cursor")
        .to_owned();
    let long_q = "x".repeat(101);
    let same = "sort=priceCents&minPriceCents=5";

    let cases = [
        ("perPage=101".to_owned(), "perPage"),
        ("perPage=0".to_owned(), "perPage"),
        ("page=0".to_owned(), "page"),
        ("page=x".to_owned(), "page"),
        ("limit=0".to_owned(), "limit"),
        ("limit=101".to_owned(), "limit"),
        ("page=1&limit=5".to_owned(), "limit"),
        ("sort=stock".to_owned(), "sort"),
        ("sort=createdat".to_owned(), "sort"),
        ("order=sideways".to_owned(), "order"),
        ("role=admin".to_owned(), "role"),
        ("minPriceCents=-1".to_owned(), "minPriceCents"),
        ("maxPriceCents=-5".to_owned(), "maxPriceCents"),
        ("minPriceCents=abc".to_owned(), "minPriceCents"),
        ("maxPriceCents=1.5".to_owned(), "maxPriceCents"),
        ("minPriceCents=99999999999999999999".to_owned(), "minPriceCents"),
        ("minPriceCents=10&maxPriceCents=9".to_owned(), "minPriceCents"),
        ("inStock=yes".to_owned(), "inStock"),
        (format!("q={long_q}"), "q"),
        ("q=a%00b".to_owned(), "q"),
        ("cursor=garbage".to_owned(), "cursor"),
        (format!("cursor={price_cursor}"), "cursor"),
        (format!("cursor={price_cursor}&sort=priceCents"), "cursor"),
        (format!("cursor={price_cursor}&{same}&order=desc"), "cursor"),
        (format!("cursor={price_cursor}&{same}&inStock=true"), "cursor"),
        (format!("cursor={price_cursor}&{same}&q=one"), "cursor"),
        (format!("cursor={price_cursor}&{same}&page=2"), "cursor"),
        (format!("cursor={users_cursor}"), "cursor"),
    ];
    for (query, field) in cases {
        let (status, body) = app.get_json(&format!("/api/v1/products?{query}"), None).await;
        assert_eq!(refused_fields(status, &body), vec![field], "{query}");
    }
    let (status, body) = app
        .get_json(&format!("/api/v1/products?cursor={price_cursor}&{same}"), None)
        .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the cursor works with its own parameters: {body}"
    );
}
