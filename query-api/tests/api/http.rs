//! What every response shares: request ids, security headers, envelopes for unknown
//! routes, health and docs.

use crate::helpers::{assert_error, spawn_app};
use reqwest::StatusCode;
use reqwest::header::{REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS};
use serde_json::Value;

#[tokio::test(flavor = "multi_thread")]
async fn every_response_carries_a_request_id_and_echoes_the_one_sent() {
    let app = spawn_app().await;
    for path in ["/health/live", "/api/v1/me", "/nowhere"] {
        let response = app.get(path, None).await;
        let header = response.headers()["x-request-id"]
            .to_str()
            .expect("ASCII")
            .to_owned();
        assert!(!header.is_empty(), "{path}");
        let body: Value = response.json().await.expect("JSON");
        assert_eq!(body["meta"]["requestId"], header.as_str(), "{path}");

        let echoed = app
            .client
            .get(format!("{}{path}", app.address))
            .header("x-request-id", "trace-me-42")
            .send()
            .await
            .expect("answered");
        assert_eq!(echoed.headers()["x-request-id"], "trace-me-42", "{path}");
        let body: Value = echoed.json().await.expect("JSON");
        assert_eq!(body["meta"]["requestId"], "trace-me-42", "{path}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn security_headers_are_on_every_response() {
    let app = spawn_app().await;
    for path in ["/health/live", "/api/v1/users", "/nowhere"] {
        let response = app.get(path, None).await;
        let headers = response.headers();
        assert_eq!(headers[X_CONTENT_TYPE_OPTIONS], "nosniff", "{path}");
        assert_eq!(headers[X_FRAME_OPTIONS], "DENY", "{path}");
        assert_eq!(headers[REFERRER_POLICY], "no-referrer", "{path}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_route_is_a_404_envelope() {
    let app = spawn_app().await;
    let (status, body) = app
        .get_json("/api/v1/nothing-here", Some(&app.admin_token().await))
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "NOT_FOUND");
}

#[tokio::test(flavor = "multi_thread")]
async fn health_reports_live_and_ready_with_both_dependencies_up() {
    let app = spawn_app().await;
    let (status, body) = app.get_json("/health/live", None).await;
    assert_eq!(
        (status, body["data"]["status"].as_str()),
        (StatusCode::OK, Some("live"))
    );
    let (status, body) = app.get_json("/health/ready", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["checks"]["postgres"], "up");
    assert_eq!(body["data"]["checks"]["redis"], "up");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_openapi_document_describes_every_endpoint_and_docs_are_served() {
    let app = spawn_app().await;
    let response = app.get("/openapi.json", None).await;
    assert_eq!(response.status(), StatusCode::OK);
    let document: Value = response.json().await.expect("JSON");
    for path in [
        "/api/v1/me",
        "/api/v1/users",
        "/api/v1/users/{id}",
        "/api/v1/users/{id}/orders",
        "/api/v1/products",
        "/api/v1/products/top",
        "/api/v1/products/{id}",
        "/api/v1/orders/{id}",
        "/api/v1/products/{id}/reviews",
        "/health/live",
        "/health/ready",
    ] {
        assert!(document["paths"][path]["get"].is_object(), "{path} is documented");
    }
    // Every API operation takes the read-your-writes header; the lists below leave it out.
    for (path, item) in document["paths"].as_object().expect("paths") {
        let names: Vec<&str> = item["get"]["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p["name"].as_str())
            .collect();
        assert_eq!(
            names.contains(&"X-Consistency-Token"),
            path.starts_with("/api/"),
            "{path}"
        );
    }
    let token = |p: &&Value| p["name"] != "X-Consistency-Token";
    let parameters: Vec<&str> = document["paths"]["/api/v1/users"]["get"]["parameters"]
        .as_array()
        .expect("parameters")
        .iter()
        .filter(token)
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert_eq!(
        parameters,
        ["page", "perPage", "cursor", "limit", "role", "q", "sort", "order"]
    );
    assert!(
        document["paths"]["/health/ready"]["get"]["parameters"].is_null(),
        "health probes take no token"
    );
    let parameters = |path: &str| -> Vec<String> {
        document["paths"][path]["get"]["parameters"]
            .as_array()
            .expect("parameters")
            .iter()
            .filter(token)
            .filter_map(|p| p["name"].as_str().map(str::to_owned))
            .collect()
    };
    assert_eq!(
        parameters("/api/v1/products"),
        [
            "page",
            "perPage",
            "cursor",
            "limit",
            "q",
            "minPriceCents",
            "maxPriceCents",
            "inStock",
            "sort",
            "order"
        ]
    );
    assert_eq!(parameters("/api/v1/products/top"), ["limit"]);
    assert_eq!(
        parameters("/api/v1/users/{id}/orders"),
        [
            "id", "page", "perPage", "cursor", "limit", "status", "sort", "order"
        ]
    );
    // The catalogue is public; orders need a token.
    assert!(document["paths"]["/api/v1/products"]["get"]["security"].is_null());
    assert!(document["paths"]["/api/v1/orders/{id}"]["get"]["security"].is_array());
    for schema in [
        "UserView",
        "ErrorEnvelope",
        "ProductView",
        "TopProduct",
        "OrderView",
        "OrderLineView",
        "ReviewView",
        "ListMeta",
        "Pagination",
    ] {
        assert!(document["components"]["schemas"][schema].is_object(), "{schema}");
    }
    // The envelopes come from the generic web::Envelope / web::ListEnvelope: `data` is the
    // item (or a list of items), `meta` the request's (and the list's) metadata.
    let resolve = |schema: &Value| match schema["$ref"].as_str() {
        Some(reference) => {
            let name = reference.trim_start_matches("#/components/schemas/");
            document["components"]["schemas"][name].clone()
        }
        None => schema.clone(),
    };
    let ok = |path: &str| {
        resolve(&document["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["schema"])
    };
    let component = |name: &str| document["components"]["schemas"][name].clone();
    let item = ok("/api/v1/users/{id}");
    assert_eq!(item["properties"]["data"], component("UserView"), "{item}");
    assert_eq!(
        item["properties"]["meta"]["$ref"], "#/components/schemas/Meta",
        "{item}"
    );
    let list = ok("/api/v1/products/{id}/reviews");
    assert_eq!(list["properties"]["data"]["type"], "array", "{list}");
    assert_eq!(
        list["properties"]["data"]["items"],
        component("ReviewView"),
        "{list}"
    );
    assert_eq!(
        list["properties"]["meta"]["$ref"], "#/components/schemas/ListMeta",
        "{list}"
    );
    let error = &document["paths"]["/api/v1/orders/{id}"]["get"]["responses"]["404"]["content"]["application/json"]
        ["schema"];
    assert_eq!(error["$ref"], "#/components/schemas/ErrorEnvelope", "{error}");
    assert!(document["components"]["securitySchemes"]["bearer"].is_object());

    let docs = app.get("/docs/", None).await;
    assert_eq!(docs.status(), StatusCode::OK);
}
