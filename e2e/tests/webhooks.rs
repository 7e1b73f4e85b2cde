//! Webhooks through the running stack, as an admin and a subscriber meet them: registered
//! on the command API, delivered signed by the workers to a real HTTP receiver, listed
//! with status codes and timings, a failing endpoint retried, every change audited.

mod support;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::{ADMIN_EMAIL, ADMIN_PASSWORD, Stack};
use testkit::eventually;
use webhooks::signing;

type Inbox = Arc<Mutex<Vec<(String, HeaderMap, Bytes)>>>;

/// A subscriber's endpoint: `/ok` answers 200, `/broken` 500; every request is kept.
async fn receiver() -> (String, Inbox) {
    async fn hook(
        State(inbox): State<Inbox>,
        Path(name): Path<String>,
        headers: HeaderMap,
        body: Bytes,
    ) -> StatusCode {
        inbox.lock().expect("inbox").push((name.clone(), headers, body));
        if name == "ok" {
            StatusCode::OK
        } else {
            StatusCode::INTERNAL_SERVER_ERROR
        }
    }
    let inbox = Inbox::default();
    let router = Router::new()
        .route("/{name}", post(hook))
        .with_state(inbox.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    tokio::spawn(async move { axum::serve(listener, router).await });
    (base, inbox)
}

async fn data(response: reqwest::Response) -> Value {
    response.json::<Value>().await.expect("json")["data"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registered_endpoint_gets_signed_events_and_its_deliveries_are_listed() {
    let stack = Stack::start().await;
    let http = reqwest::Client::new();
    let (base, inbox) = receiver().await;
    let login = http
        .post(format!("{}/api/v1/auth/login", stack.command))
        .json(&json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}))
        .send()
        .await
        .expect("login");
    let admin = data(login).await["accessToken"]
        .as_str()
        .expect("token")
        .to_owned();
    let mut hooks = Vec::new();
    for name in ["ok", "broken"] {
        let response = http
            .post(format!("{}/api/v1/webhooks", stack.command))
            .bearer_auth(&admin)
            // A token of the subscriber's own in the URL, which must not reach the logs.
            .json(&json!({"url": format!("{base}/{name}?token=sub-token-{name}"), "eventTypes": ["user.registered"]}))
            .send()
            .await
            .expect("register the endpoint");
        assert_eq!(response.status(), 201);
        hooks.push(data(response).await);
    }
    let registered = http
        .post(format!("{}/api/v1/auth/register", stack.command))
        .json(&json!({"email": "hooked@example.com", "name": "Hooked", "password": "listen1234x"}))
        .send()
        .await
        .expect("register");
    assert_eq!(registered.status(), 201);
    let user_id = data(registered).await["id"].as_str().expect("id").to_owned();

    let (headers, body) = eventually(Duration::from_secs(30), "the delivery to /ok", || async {
        let inbox = inbox.lock().expect("inbox");
        inbox
            .iter()
            .find(|(name, _, _)| name == "ok")
            .map(|(_, h, b)| (h.clone(), b.clone()))
    })
    .await;
    let signature = headers[signing::SIGNATURE_HEADER].to_str().expect("ascii");
    let secret = hooks[0]["secret"].as_str().expect("secret");
    signing::verify(secret, signature, &body, chrono_now(), 300).expect("signed with the endpoint's secret");
    let event: Value = serde_json::from_slice(&body).expect("an event envelope");
    assert_eq!(
        (event["type"].as_str(), event["streamId"].as_str()),
        (Some("user.registered"), Some(user_id.as_str()))
    );
    assert_eq!(event["data"]["email"], "hooked@example.com");

    let deliveries = |hook: &Value| {
        let url = format!(
            "{}/api/v1/webhooks/{}/deliveries",
            stack.command,
            hook["id"].as_str().expect("id")
        );
        let request = http.get(url).bearer_auth(&admin);
        async move { data(request.send().await.expect("deliveries")).await }
    };
    let delivered = eventually(
        Duration::from_secs(30),
        "the delivery to be listed as delivered",
        || async {
            let listed = deliveries(&hooks[0]).await;
            (listed[0]["status"] == "delivered").then_some(listed)
        },
    )
    .await;
    assert_eq!(delivered[0]["lastStatusCode"], 200);
    assert!(delivered[0]["lastDurationMs"].as_i64().is_some());
    let failing = eventually(
        Duration::from_secs(30),
        "the failed attempt to be listed",
        || async {
            let listed = deliveries(&hooks[1]).await;
            (listed[0]["lastStatusCode"] == 500).then_some(listed)
        },
    )
    .await;
    // Tried again later (the default backoff), not given up after one attempt.
    assert_eq!(failing[0]["status"], "pending");
    assert_eq!(failing[0]["lastError"], "HTTP 500 Internal Server Error");

    let metrics = http
        .get(format!("{}/metrics", stack.workers))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains("webhook_deliveries_total{outcome=\"delivered\"}"),
        "{metrics}"
    );
    assert!(metrics.contains("webhook_deliveries_pending"), "{metrics}");
    let actions = http
        .get(format!("{}/api/v1/operator-actions", stack.workers))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("operator actions");
    let actions = data(actions).await;
    let created = actions
        .as_array()
        .expect("a list")
        .iter()
        .filter(|a| a["action"] == "webhook.create")
        .count();
    assert_eq!(created, 2, "{actions}");

    // The registrations are logged with the URL's host only.
    let log = stack.log("command-api");
    let registered: Vec<Value> = log
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|line| line["message"] == "webhook registered")
        .collect();
    assert_eq!(registered.len(), 2, "{log}");
    assert!(
        registered.iter().all(|line| line["url.host"] == "127.0.0.1"),
        "{registered:?}"
    );
    for service in ["command-api", "workers"] {
        assert!(
            !stack.log(service).contains("sub-token"),
            "{service} logged a URL's query"
        );
    }
}

fn chrono_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs() as i64
}
