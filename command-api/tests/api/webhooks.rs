//! `/api/v1/webhooks`: admins register endpoints (the secret shown once), change them
//! with `If-Match`, delete them, and list, retry and replay their deliveries.

use crate::helpers::{TestApp, body, error_code, spawn_app, spawn_with};
use serde_json::{Value, json};
use std::time::Duration;
use testkit::eventually;

async fn register(app: &TestApp, token: &str, request: Value) -> reqwest::Response {
    app.client
        .post(app.url("/api/v1/webhooks"))
        .bearer_auth(token)
        .json(&request)
        .send()
        .await
        .expect("sent")
}

async fn get(app: &TestApp, token: &str, path: &str) -> reqwest::Response {
    app.client
        .get(app.url(path))
        .bearer_auth(token)
        .send()
        .await
        .expect("sent")
}

async fn registered(app: &TestApp, token: &str, types: Value) -> Value {
    let response = register(
        app,
        token,
        json!({"url": "https://subscriber.example.com/hooks", "eventTypes": types}),
    )
    .await;
    assert_eq!(response.status(), 201);
    body(response).await["data"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_registers_an_endpoint_and_sees_its_secret_once() {
    let app = spawn_app().await;
    let (admin_id, admin) = app.admin_token().await;
    let response = register(
        &app,
        &admin,
        json!({"url": "https://subscriber.example.com/hooks", "eventTypes": ["order.placed", "order.placed", "user.registered"],
               "description": "  orders for the warehouse  "}),
    )
    .await;
    assert_eq!(response.status(), 201);
    assert_eq!(response.headers()["etag"], "\"1\"");
    let location = response.headers()["location"].to_str().expect("ascii").to_owned();
    let data = body(response).await["data"].clone();
    let id = data["id"].as_str().expect("an id").to_owned();
    assert_eq!(location, format!("/api/v1/webhooks/{id}"));
    let secret = data["secret"].as_str().expect("the secret");
    assert!(secret.starts_with("whsec_") && secret.len() == 70, "{secret}");
    assert_eq!(data["url"], "https://subscriber.example.com/hooks");
    assert_eq!(data["eventTypes"], json!(["order.placed", "user.registered"]));
    assert_eq!(data["description"], "orders for the warehouse");
    assert_eq!(
        (data["enabled"].as_bool(), data["version"].as_i64()),
        (Some(true), Some(1))
    );
    assert_eq!(data["createdBy"], admin_id);

    let shown = get(&app, &admin, &location).await;
    assert_eq!(shown.status(), 200);
    assert_eq!(shown.headers()["etag"], "\"1\"");
    let shown = body(shown).await["data"].clone();
    assert!(shown.get("secret").is_none(), "{shown}");
    assert_eq!(shown["id"], id.as_str());
    let listed = body(get(&app, &admin, "/api/v1/webhooks?perPage=10").await).await;
    assert_eq!(listed["data"].as_array().map(Vec::len), Some(1));
    assert!(listed["data"][0].get("secret").is_none());
    assert_eq!(listed["meta"]["pagination"]["total"], 1);
    assert!(!serde_json::to_string(&listed).expect("json").contains(secret));

    // Admins only; nobody without a token.
    let (_, user) = app.signed_in("subscriber@example.com").await;
    let refused = register(
        &app,
        &user,
        json!({"url": "https://x.example.com/", "eventTypes": ["*"]}),
    )
    .await;
    assert_eq!(error_code(refused).await.1, "FORBIDDEN");
    assert_eq!(get(&app, &user, "/api/v1/webhooks").await.status(), 403);
    let anonymous = app
        .client
        .get(app.url("/api/v1/webhooks"))
        .send()
        .await
        .expect("sent");
    assert_eq!(anonymous.status(), 401);
    assert_eq!(app.count("SELECT count(*) FROM webhooks").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_endpoint_is_400_naming_every_field_and_nothing_is_stored() {
    let app = spawn_app().await;
    let (_, admin) = app.admin_token().await;
    let (status, code, answer) = error_code(
        register(
            &app,
            &admin,
            json!({"url": "ftp://files.example.com/", "eventTypes": ["order.shipped"], "description": "x".repeat(501)}),
        )
        .await,
    )
    .await;
    assert_eq!((status, code.as_str()), (400, "VALIDATION_ERROR"));
    let mut fields: Vec<&str> = answer["error"]["details"]
        .as_array()
        .expect("details")
        .iter()
        .filter_map(|d| d["field"].as_str())
        .collect();
    fields.sort_unstable();
    assert_eq!(fields, ["description", "eventTypes", "url"], "{answer}");
    for bad in [
        json!({"url": "https://user:pw@example.com/", "eventTypes": ["*"]}),
        json!({"url": "https://example.com/", "eventTypes": []}),
        json!({"url": "https://example.com/", "eventTypes": ["*"], "secret": "mine"}),
        json!({"url": "https://example.com/"}),
        json!({"url": 7, "eventTypes": ["*"]}),
    ] {
        let (status, code, _) = error_code(register(&app, &admin, bad.clone()).await).await;
        assert_eq!((status, code.as_str()), (400, "VALIDATION_ERROR"), "{bad}");
    }
    assert_eq!(app.count("SELECT count(*) FROM webhooks").await, 0);
    let (status, code, _) = error_code(get(&app, &admin, "/api/v1/webhooks/not-a-uuid").await).await;
    assert_eq!((status, code.as_str()), (400, "VALIDATION_ERROR"));
    let (status, code, _) = error_code(
        get(
            &app,
            &admin,
            &format!("/api/v1/webhooks/{}", uuid::Uuid::now_v7()),
        )
        .await,
    )
    .await;
    assert_eq!((status, code.as_str()), (404, "NOT_FOUND"));
    let (status, _, _) = error_code(get(&app, &admin, "/api/v1/webhooks?perPage=101").await).await;
    assert_eq!(status, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_on_localhost_or_an_internal_address_is_refused_unless_private_networks_are_allowed() {
    let app = spawn_app().await;
    let (_, admin) = app.admin_token().await;
    let internal = [
        "http://127.0.0.1:9000/hooks",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.8/hooks",
        "http://192.168.1.20:8080/",
        "http://[::1]/hooks",
        "http://[fd00::1]/hooks",
        "http://localhost:3000/hooks",
    ];
    for url in internal {
        let (status, code, answer) =
            error_code(register(&app, &admin, json!({"url": url, "eventTypes": ["*"]})).await).await;
        assert_eq!((status, code.as_str()), (400, "VALIDATION_ERROR"), "{url}");
        let detail = &answer["error"]["details"][0];
        assert_eq!(detail["field"], "url", "{answer}");
        assert!(
            detail["message"]
                .as_str()
                .is_some_and(|m| m.contains("internal address")),
            "{answer}"
        );
    }
    assert_eq!(app.count("SELECT count(*) FROM webhooks").await, 0);
    // A change of URL is checked the same way.
    let hook = registered(&app, &admin, json!(["*"])).await;
    let (status, _, answer) = error_code(
        app.client
            .patch(app.url(&format!("/api/v1/webhooks/{}", hook["id"].as_str().expect("id"))))
            .bearer_auth(&admin)
            .header("If-Match", "*")
            .json(&json!({"url": "http://169.254.169.254/"}))
            .send()
            .await
            .expect("sent"),
    )
    .await;
    assert_eq!(
        (status, answer["error"]["details"][0]["field"].as_str()),
        (400, Some("url"))
    );

    let open = spawn_with(|s| s.webhook_networks = webhooks::NetworkPolicy::AllowPrivate).await;
    let (_, admin) = open.admin_token().await;
    for url in internal {
        let response = register(&open, &admin, json!({"url": url, "eventTypes": ["*"]})).await;
        assert_eq!(response.status(), 201, "{url}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_is_changed_with_if_match_given_a_new_secret_and_deleted() {
    let app = spawn_app().await;
    let (admin_id, admin) = app.admin_token().await;
    let hook = registered(&app, &admin, json!(["*"])).await;
    let path = format!("/api/v1/webhooks/{}", hook["id"].as_str().expect("id"));
    let patch = |etag: &'static str, change: Value| {
        app.client
            .patch(app.url(&path))
            .bearer_auth(&admin)
            .header("If-Match", etag)
            .json(&change)
    };

    let changed = patch(
        "\"1\"",
        json!({"enabled": false, "eventTypes": ["order.cancelled"], "description": "paused"}),
    )
    .send()
    .await
    .expect("sent");
    assert_eq!(changed.status(), 200);
    assert_eq!(changed.headers()["etag"], "\"2\"");
    let data = body(changed).await["data"].clone();
    assert_eq!(data["enabled"], false);
    assert_eq!(data["disabledReason"], "disabled by an administrator");
    assert_eq!(data["eventTypes"], json!(["order.cancelled"]));
    assert_eq!(data["description"], "paused");
    assert_eq!(data["url"], "https://subscriber.example.com/hooks");

    let stale = patch("\"1\"", json!({"enabled": true}))
        .send()
        .await
        .expect("sent");
    assert_eq!(error_code(stale).await.0, 412);
    let (status, _, answer) = error_code(patch("*", json!({})).send().await.expect("sent")).await;
    assert_eq!(status, 400, "{answer}");
    let (status, _, answer) = error_code(
        patch("*", json!({"url": "not a url"}))
            .send()
            .await
            .expect("sent"),
    )
    .await;
    assert_eq!(
        (status, answer["error"]["details"][0]["field"].as_str()),
        (400, Some("url"))
    );
    let resumed = patch("\"2\"", json!({"enabled": true, "description": null}))
        .send()
        .await
        .expect("sent");
    let data = body(resumed).await["data"].clone();
    assert_eq!(
        (data["enabled"].as_bool(), data["version"].as_i64()),
        (Some(true), Some(3))
    );
    assert_eq!(
        (data["disabledReason"].clone(), data["description"].clone()),
        (Value::Null, Value::Null)
    );

    let rotated = app
        .client
        .post(app.url(&format!("{path}/secret")))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("sent");
    assert_eq!(rotated.status(), 200);
    assert_eq!(rotated.headers()["etag"], "\"4\"");
    let secret = body(rotated).await["data"]["secret"]
        .as_str()
        .expect("secret")
        .to_owned();
    assert!(secret.starts_with("whsec_"));
    assert_ne!(Some(secret.as_str()), hook["secret"].as_str());

    let delete = |etag: &'static str| {
        app.client
            .delete(app.url(&path))
            .bearer_auth(&admin)
            .header("If-Match", etag)
            .send()
    };
    assert_eq!(delete("\"3\"").await.expect("sent").status(), 412);
    assert_eq!(delete("\"4\"").await.expect("sent").status(), 204);
    assert_eq!(get(&app, &admin, &path).await.status(), 404);
    assert_eq!(delete("*").await.expect("sent").status(), 404);

    // Every change is in the operator actions, by whom; refused ones are not.
    let actions: Vec<(String, String, String)> =
        sqlx::query_as("SELECT action, target, actor_id::text FROM operator_actions ORDER BY at, id")
            .fetch_all(&app.db.pool)
            .await
            .expect("actions");
    let id = hook["id"].as_str().expect("id");
    let expected: Vec<(String, String, String)> = [
        "webhook.create",
        "webhook.update",
        "webhook.update",
        "webhook.rotate_secret",
        "webhook.delete",
    ]
    .iter()
    .map(|action| ((*action).to_owned(), id.to_owned(), admin_id.clone()))
    .collect();
    assert_eq!(actions, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_queues_stored_events_whose_deliveries_are_listed_shown_and_retried() {
    let app = spawn_app().await;
    let (_, admin) = app.admin_token().await;
    app.user("first@example.com").await;
    let hook = registered(&app, &admin, json!(["user.registered"])).await;
    let id = hook["id"].as_str().expect("id").to_owned();
    let last: i64 = app.count("SELECT max(position) FROM events").await;
    let registrations = app
        .count("SELECT count(*) FROM events WHERE event_type = 'user.registered'")
        .await;

    let replay = |request: Value| {
        app.client
            .post(app.url(&format!("/api/v1/webhooks/{id}/replay")))
            .bearer_auth(&admin)
            .json(&request)
            .send()
    };
    let accepted = replay(json!({"fromPosition": 1})).await.expect("sent");
    assert_eq!(accepted.status(), 202);
    let data = body(accepted).await["data"].clone();
    assert_eq!(
        (data["fromPosition"].as_i64(), data["toPosition"].as_i64()),
        (Some(1), Some(last))
    );
    let deliveries = format!("/api/v1/webhooks/{id}/deliveries");
    let listed = eventually(Duration::from_secs(10), "the replayed deliveries", || async {
        let listed = body(
            get(
                &app,
                &admin,
                &format!("{deliveries}?status=pending&eventType=user.registered"),
            )
            .await,
        )
        .await;
        (listed["meta"]["pagination"]["total"].as_i64() == Some(registrations)).then_some(listed)
    })
    .await;
    let first = listed["data"][0].clone();
    assert_eq!(
        (first["status"].as_str(), first["attempts"].as_i64()),
        (Some("pending"), Some(0))
    );
    assert_eq!(first["eventType"], "user.registered");
    assert_eq!(first["webhookId"], id.as_str());
    let none = body(get(&app, &admin, &format!("{deliveries}?status=dead")).await).await;
    assert_eq!(none["meta"]["pagination"]["total"], 0);

    let delivery = format!("{deliveries}/{}", first["id"].as_str().expect("delivery id"));
    let shown = body(get(&app, &admin, &delivery).await).await["data"].clone();
    assert_eq!(shown["id"], first["id"]);
    assert_eq!(shown["attemptLog"], json!([]));
    let retried = app
        .client
        .post(app.url(&format!("{delivery}/retry")))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("sent");
    assert_eq!(retried.status(), 202);
    assert_eq!(body(retried).await["data"]["status"], "pending");
    let audited = app
        .count("SELECT count(*) FROM operator_actions WHERE action IN ('webhook.replay', 'webhook.retry_delivery')")
        .await;
    assert_eq!(audited, 2);

    // Bad requests.
    for bad in [
        json!({"fromPosition": 0}),
        json!({"fromPosition": 5, "toPosition": 4}),
        json!({}),
    ] {
        assert_eq!(replay(bad.clone()).await.expect("sent").status(), 400, "{bad}");
    }
    let (status, code, _) = error_code(replay(json!({"fromPosition": 1_000_000})).await.expect("sent")).await;
    assert_eq!(
        (status, code.as_str()),
        (422, "NOTHING_TO_REPLAY"),
        "past the last event"
    );
    for query in [
        "?status=lost",
        "?eventType=order.shipped",
        "?eventType=*",
        "?page=0",
    ] {
        let (status, code, _) = error_code(get(&app, &admin, &format!("{deliveries}{query}")).await).await;
        assert_eq!((status, code.as_str()), (400, "VALIDATION_ERROR"), "{query}");
    }
    let unknown = uuid::Uuid::now_v7();
    assert_eq!(
        get(&app, &admin, &format!("/api/v1/webhooks/{unknown}/deliveries"))
            .await
            .status(),
        404
    );
    assert_eq!(
        get(&app, &admin, &format!("{deliveries}/{unknown}"))
            .await
            .status(),
        404
    );
    let unknown_replay = app
        .client
        .post(app.url(&format!("/api/v1/webhooks/{unknown}/replay")))
        .bearer_auth(&admin)
        .json(&json!({"fromPosition": 1}))
        .send()
        .await
        .expect("sent");
    assert_eq!(unknown_replay.status(), 404);
}

fn refs<'a>(value: &'a Value, found: &mut Vec<&'a str>) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                match (key.as_str(), inner) {
                    ("$ref", Value::String(target)) => found.push(target),
                    _ => refs(inner, found),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|inner| refs(inner, found)),
        _ => {}
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_describes_every_webhook_route_with_schemas_that_resolve() {
    let app = spawn_app().await;
    let openapi = body(
        app.client
            .get(app.url("/openapi.json"))
            .send()
            .await
            .expect("sent"),
    )
    .await;
    for (path, methods) in [
        ("/api/v1/webhooks", &["post", "get"][..]),
        ("/api/v1/webhooks/{id}", &["get", "patch", "delete"]),
        ("/api/v1/webhooks/{id}/secret", &["post"]),
        ("/api/v1/webhooks/{id}/deliveries", &["get"]),
        ("/api/v1/webhooks/{id}/deliveries/{deliveryId}", &["get"]),
        ("/api/v1/webhooks/{id}/deliveries/{deliveryId}/retry", &["post"]),
        ("/api/v1/webhooks/{id}/replay", &["post"]),
    ] {
        for method in methods {
            let operation = &openapi["paths"][path][method];
            assert!(operation.is_object(), "{method} {path} is documented");
            assert!(
                operation["responses"]["503"].is_object(),
                "{method} {path} documents 503"
            );
        }
    }
    let mut found = Vec::new();
    refs(&openapi, &mut found);
    assert!(
        found.iter().any(|r| r.ends_with("WebhookWithSecret")),
        "{found:?}"
    );
    for target in found {
        let name = target.trim_start_matches("#/components/schemas/");
        assert!(
            openapi["components"]["schemas"][name].is_object(),
            "{target} resolves"
        );
    }
    // The one answer with the secret says so in its schema.
    let schemas = &openapi["components"]["schemas"];
    let with_secret = [
        &schemas["WebhookWithSecret"],
        &schemas["Envelope_WebhookWithSecret"],
    ];
    assert!(
        with_secret
            .iter()
            .any(|schema| schema.to_string().contains("\"secret\"")),
        "{with_secret:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registration_retried_with_its_idempotency_key_gives_the_same_endpoint_and_secret() {
    let app = spawn_app().await;
    let (_, admin) = app.admin_token().await;
    let request = json!({"url": "https://subscriber.example.com/hooks", "eventTypes": ["order.placed"]});
    let send = |request: Value, key: &'static str| {
        app.client
            .post(app.url("/api/v1/webhooks"))
            .bearer_auth(&admin)
            .header("Idempotency-Key", key)
            .json(&request)
            .send()
    };
    let first = send(request.clone(), "register-1").await.expect("sent");
    assert_eq!(first.status(), 201);
    let first = body(first).await["data"].clone();
    let again = send(request.clone(), "register-1").await.expect("sent");
    assert_eq!(again.status(), 201);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(
        again.headers()["location"],
        format!("/api/v1/webhooks/{}", first["id"].as_str().expect("id")).as_str()
    );
    let again = body(again).await["data"].clone();
    assert_eq!((&again["id"], &again["secret"]), (&first["id"], &first["secret"]));
    let listed = body(get(&app, &admin, "/api/v1/webhooks").await).await;
    assert_eq!(listed["meta"]["pagination"]["total"], 1, "one endpoint, not two");

    let other = json!({"url": "https://other.example.com/hooks", "eventTypes": ["order.placed"]});
    let reused = send(other, "register-1").await.expect("sent");
    assert_eq!(reused.status(), 422);
    assert_eq!(error_code(reused).await.1, "IDEMPOTENCY_KEY_REUSED");
}
