//! Webhook deliveries against a real HTTP receiver: signed, retried, dead after the last
//! attempt, a slow endpoint that does not hold up the others, endpoints that disable
//! themselves by failing, and replay from a position.

use crate::helpers::{TestApp, WAIT};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use eventstore::EventEnvelope;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use testkit::eventually;
use uuid::Uuid;
use webhooks::signing;
use webhooks::{Delivery, DeliveryStatus, NewWebhook, Webhook, WebhookWithSecret, Webhooks};

/// One request the receiver got.
#[derive(Clone, Debug)]
struct Received {
    path: String,
    headers: HeaderMap,
    body: Bytes,
}

/// How the receiver answers on one path.
#[derive(Clone, Copy)]
struct Behaviour {
    status: u16,
    delay: Duration,
}

#[derive(Clone, Default)]
struct Shared {
    received: Arc<Mutex<Vec<Received>>>,
    behaviour: Arc<Mutex<HashMap<String, Behaviour>>>,
}

/// An HTTP server standing in for a subscriber: records every request (before it
/// answers) and answers each path as told (200 at once by default).
struct Receiver {
    address: SocketAddr,
    shared: Shared,
}

impl Receiver {
    async fn start() -> Self {
        let shared = Shared::default();
        let router = Router::new()
            .route("/{name}", post(hook))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the receiver");
        let address = listener.local_addr().expect("receiver address");
        tokio::spawn(async move { axum::serve(listener, router).await });
        Self { address, shared }
    }

    fn url(&self, name: &str) -> String {
        format!("http://{}/{name}", self.address)
    }

    fn answer(&self, name: &str, status: u16, delay: Duration) {
        self.shared
            .behaviour
            .lock()
            .expect("receiver state")
            .insert(format!("/{name}"), Behaviour { status, delay });
    }

    fn received(&self, name: &str) -> Vec<Received> {
        let path = format!("/{name}");
        self.shared
            .received
            .lock()
            .expect("receiver state")
            .iter()
            .filter(|r| r.path == path)
            .cloned()
            .collect()
    }

    async fn wait_for(&self, name: &str, count: usize) -> Vec<Received> {
        eventually(WAIT, &format!("{count} request(s) on /{name}"), || async {
            let received = self.received(name);
            (received.len() >= count).then_some(received)
        })
        .await
    }
}

async fn hook(
    State(shared): State<Shared>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let path = format!("/{name}");
    shared.received.lock().expect("receiver state").push(Received {
        path: path.clone(),
        headers,
        body,
    });
    let behaviour = shared
        .behaviour
        .lock()
        .expect("receiver state")
        .get(&path)
        .copied();
    let behaviour = behaviour.unwrap_or(Behaviour {
        status: 200,
        delay: Duration::ZERO,
    });
    tokio::time::sleep(behaviour.delay).await;
    StatusCode::from_u16(behaviour.status).expect("a status code")
}

async fn register_endpoint(app: &TestApp, url: &str, types: &[&str]) -> WebhookWithSecret {
    Webhooks::new(app.db.pool.clone())
        .create(
            &NewWebhook {
                url: url.to_owned(),
                event_types: types.iter().map(|t| (*t).to_owned()).collect(),
                description: Some("test receiver".to_owned()),
            },
            Uuid::now_v7(),
            None,
        )
        .await
        .expect("register the endpoint")
}

async fn deliveries(app: &TestApp, webhook: &Webhook) -> Vec<Delivery> {
    Webhooks::new(app.db.pool.clone())
        .deliveries(webhook.id, None, None, 1, 100)
        .await
        .expect("deliveries")
        .0
}

/// Waits until the endpoint has a delivery in `status` for `event`, and returns it.
async fn wait_for_status(app: &TestApp, webhook: &Webhook, event: Uuid, status: DeliveryStatus) -> Delivery {
    eventually(WAIT, &format!("a {status:?} delivery of {event}"), || async {
        deliveries(app, webhook)
            .await
            .into_iter()
            .find(|d| d.event_id == event && d.status == status)
    })
    .await
}

async fn endpoint(app: &TestApp, id: Uuid) -> Webhook {
    Webhooks::new(app.db.pool.clone())
        .find(id)
        .await
        .expect("find")
        .expect("the endpoint exists")
}

fn header<'a>(received: &'a Received, name: &str) -> &'a str {
    received
        .headers
        .get(name)
        .unwrap_or_else(|| panic!("header {name}"))
        .to_str()
        .expect("ascii header")
}

/// What `webhooks/examples/verify.py` (the receiver's check the README shows) says of a
/// delivery.
fn python_verify(secret: &str, signature: &str, body: &[u8]) -> String {
    use std::io::Write;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../webhooks/examples/verify.py");
    let mut child = std::process::Command::new("python3")
        .arg(script)
        .env("WEBHOOK_SECRET", secret)
        .env("WEBHOOK_SIGNATURE", signature)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(body)
        .expect("body written");
    let output = child.wait_with_output().expect("python3 ends");
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_matching_event_is_posted_signed_and_its_delivery_listed_with_status_and_timing() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    let before = app.register("Ada", "ada@example.com").await;
    let users = register_endpoint(&app, &receiver.url("users"), &["user.registered"]).await;
    let orders = register_endpoint(&app, &receiver.url("orders"), &["order.placed"]).await;

    let event = app.register("Grace", "grace@example.com").await;
    let received = receiver.wait_for("users", 1).await;
    let request = &received[0];
    assert_eq!(header(request, "content-type"), "application/json");
    assert_eq!(header(request, signing::ID_HEADER), event.id.to_string());
    assert_eq!(header(request, signing::EVENT_TYPE_HEADER), "user.registered");
    let signature = header(request, signing::SIGNATURE_HEADER);
    let timestamp: i64 = header(request, signing::TIMESTAMP_HEADER)
        .parse()
        .expect("unix seconds");
    assert!(
        signature.starts_with(&format!("t={timestamp},v1=")),
        "{signature}"
    );
    let now = chrono::Utc::now().timestamp();
    signing::verify(&users.secret, signature, &request.body, now, 300).expect("the signature verifies");
    assert_eq!(
        signing::verify("whsec_another", signature, &request.body, now, 300),
        Err(signing::VerifyError::Mismatch)
    );
    // The README's Python snippet agrees.
    assert_eq!(python_verify(&users.secret, signature, &request.body), "valid");
    assert_eq!(python_verify(&orders.secret, signature, &request.body), "invalid");
    let body: EventEnvelope = serde_json::from_slice(&request.body).expect("the body is the event envelope");
    assert_eq!(body.id, event.id);
    assert_eq!(body.data, event.data);
    assert_eq!(body.position, event.position);

    let delivery = wait_for_status(&app, &users.webhook, event.id, DeliveryStatus::Delivered).await;
    assert_eq!(header(request, signing::DELIVERY_HEADER), delivery.id.to_string());
    assert_eq!((delivery.attempts, delivery.last_status_code), (1, Some(200)));
    assert!(delivery.last_duration_ms.is_some_and(|ms| ms >= 0));
    assert!(delivery.delivered_at.is_some());
    let detail = Webhooks::new(app.db.pool.clone())
        .delivery(users.webhook.id, delivery.id)
        .await
        .expect("delivery")
        .expect("the delivery exists");
    assert_eq!(detail.attempt_log.len(), 1);
    assert_eq!(detail.attempt_log[0].status_code, Some(200));
    assert_eq!(detail.attempt_log[0].error, None);

    // Only events appended after the endpoint was registered, of its types.
    let listed = deliveries(&app, &users.webhook).await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert!(listed.iter().all(|d| d.event_id != before.id));
    assert!(deliveries(&app, &orders.webhook).await.is_empty());
    assert!(receiver.received("orders").is_empty());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_answering_500_is_retried_then_dead_and_an_operator_retry_delivers_it() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    receiver.answer("failing", 500, Duration::ZERO);
    let failing = register_endpoint(&app, &receiver.url("failing"), &["*"]).await;
    let healthy = register_endpoint(&app, &receiver.url("healthy"), &["user.registered"]).await;

    let event = app.register("Edsger", "edsger@example.com").await;
    let dead = wait_for_status(&app, &failing.webhook, event.id, DeliveryStatus::Dead).await;
    // The test settings allow three attempts.
    assert_eq!(dead.attempts, 3);
    assert_eq!(dead.last_status_code, Some(500));
    assert_eq!(dead.last_error.as_deref(), Some("HTTP 500 Internal Server Error"));
    let store = Webhooks::new(app.db.pool.clone());
    let detail = store
        .delivery(failing.webhook.id, dead.id)
        .await
        .expect("the database")
        .expect("found");
    let attempts: Vec<(i32, Option<i32>)> = detail
        .attempt_log
        .iter()
        .map(|a| (a.attempt, a.status_code))
        .collect();
    assert_eq!(attempts, [(1, Some(500)), (2, Some(500)), (3, Some(500))]);
    let copies = receiver.received("failing");
    assert_eq!(copies.len(), 3);
    assert!(
        copies
            .iter()
            .all(|r| header(r, signing::ID_HEADER) == event.id.to_string())
    );
    // The failing endpoint held up nothing.
    wait_for_status(&app, &healthy.webhook, event.id, DeliveryStatus::Delivered).await;
    assert_eq!(receiver.received("healthy").len(), 1);
    assert_eq!(endpoint(&app, failing.webhook.id).await.consecutive_failures, 3);

    receiver.answer("failing", 204, Duration::ZERO);
    let retried = store
        .retry_delivery(failing.webhook.id, dead.id, Uuid::now_v7())
        .await
        .expect("the database")
        .expect("found");
    assert_eq!((retried.status, retried.attempts), (DeliveryStatus::Pending, 0));
    let delivered = wait_for_status(&app, &failing.webhook, event.id, DeliveryStatus::Delivered).await;
    assert_eq!((delivered.attempts, delivered.last_status_code), (1, Some(204)));
    assert_eq!(receiver.received("failing").len(), 4);
    assert_eq!(endpoint(&app, failing.webhook.id).await.consecutive_failures, 0);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_endpoint_times_out_without_holding_up_the_others() {
    let app = TestApp::spawn_with(1, |s| s.webhooks.timeout = Duration::from_secs(4)).await;
    let receiver = Receiver::start().await;
    receiver.answer("slow", 200, Duration::from_secs(60));
    let slow = register_endpoint(&app, &receiver.url("slow"), &["user.registered"]).await;
    let fast = register_endpoint(&app, &receiver.url("fast"), &["user.registered"]).await;

    let mut events = Vec::new();
    for (name, email) in [
        ("Alan", "alan@example.com"),
        ("Barbara", "barbara@example.com"),
        ("Donald", "donald@example.com"),
    ] {
        events.push(app.register(name, email).await);
    }
    // Every event reaches the fast endpoint while the slow one still holds its first
    // requests (at most two at once, the test's `WEBHOOK_PER_ENDPOINT`).
    receiver.wait_for("fast", 3).await;
    for event in &events {
        wait_for_status(&app, &fast.webhook, event.id, DeliveryStatus::Delivered).await;
    }
    let slow_now = deliveries(&app, &slow.webhook).await;
    assert!(
        slow_now.iter().all(|d| d.last_error.is_none()),
        "the slow endpoint's first attempts had not ended yet: {slow_now:?}"
    );
    assert!(receiver.received("slow").len() <= 2);

    let timed_out = eventually(WAIT, "a timed-out attempt on the slow endpoint", || async {
        deliveries(&app, &slow.webhook)
            .await
            .into_iter()
            .find(|d| d.last_error.is_some())
    })
    .await;
    assert_eq!(timed_out.last_error.as_deref(), Some("no answer within 4000 ms"));
    assert_eq!(timed_out.last_status_code, None);
    assert!(
        timed_out.last_duration_ms.is_some_and(|ms| ms >= 4000),
        "{timed_out:?}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_that_keeps_failing_is_disabled_with_the_reason_and_resumes_with_what_waited_when_enabled()
 {
    let app = TestApp::spawn_with(1, |s| s.webhooks.policy.disable_after = 2).await;
    let receiver = Receiver::start().await;
    receiver.answer("flaky", 503, Duration::ZERO);
    receiver.answer("gone", 410, Duration::ZERO);
    let flaky = register_endpoint(&app, &receiver.url("flaky"), &["user.registered"]).await;
    let gone = register_endpoint(&app, &receiver.url("gone"), &["user.registered"]).await;

    let first = app.register("Ken", "ken@example.com").await;
    let store = Webhooks::new(app.db.pool.clone());
    let disabled = eventually(WAIT, "the flaky endpoint to be disabled", || async {
        let webhook = endpoint(&app, flaky.webhook.id).await;
        (!webhook.enabled).then_some(webhook)
    })
    .await;
    assert_eq!(
        disabled.disabled_reason.as_deref(),
        Some("2 failed attempts in a row; the last: HTTP 503 Service Unavailable")
    );
    assert!(disabled.disabled_at.is_some());
    assert!(disabled.version > flaky.webhook.version);
    let gone_now = eventually(WAIT, "the gone endpoint to be disabled", || async {
        let webhook = endpoint(&app, gone.webhook.id).await;
        (!webhook.enabled).then_some(webhook)
    })
    .await;
    assert_eq!(
        gone_now.disabled_reason.as_deref(),
        Some("the endpoint answered 410 Gone")
    );
    assert_eq!(receiver.received("gone").len(), 1);

    // Disabled: its delivery waits, and so do those of new events, unsent.
    let second = app.register("Dennis", "dennis@example.com").await;
    let waiting = eventually(WAIT, "the new event's delivery to wait", || async {
        let waiting = deliveries(&app, &flaky.webhook).await;
        (waiting.len() == 2).then_some(waiting)
    })
    .await;
    let mut waiting: Vec<(Uuid, DeliveryStatus, i32)> = waiting
        .iter()
        .map(|d| (d.event_id, d.status, d.attempts))
        .collect();
    waiting.sort_by_key(|(event, ..)| *event);
    let mut expected = vec![
        (first.id, DeliveryStatus::Pending, 2),
        (second.id, DeliveryStatus::Pending, 0),
    ];
    expected.sort_by_key(|(event, ..)| *event);
    assert_eq!(waiting, expected);
    let gone_second = eventually(WAIT, "the gone endpoint's new delivery", || async {
        deliveries(&app, &gone.webhook)
            .await
            .into_iter()
            .find(|d| d.event_id == second.id)
    })
    .await;
    assert_eq!(
        (gone_second.status, gone_second.attempts),
        (DeliveryStatus::Pending, 0)
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.received("flaky").len(), 2);
    assert_eq!(receiver.received("gone").len(), 1);

    // Enabled again (the receiver fixed), what waited goes out: the event from before
    // it was disabled and the one from while it was.
    receiver.answer("flaky", 200, Duration::ZERO);
    let patch = webhooks::WebhookPatch {
        enabled: Some(true),
        ..Default::default()
    };
    let webhooks::Guarded::Done(enabled) = store
        .update(flaky.webhook.id, &patch, Some(disabled.version), Uuid::now_v7())
        .await
        .expect("update")
    else {
        panic!("the endpoint is at the version read");
    };
    assert!(enabled.enabled);
    assert_eq!((enabled.disabled_reason, enabled.consecutive_failures), (None, 0));
    wait_for_status(&app, &flaky.webhook, first.id, DeliveryStatus::Delivered).await;
    let resumed = wait_for_status(&app, &flaky.webhook, second.id, DeliveryStatus::Delivered).await;
    assert_eq!((resumed.attempts, resumed.last_status_code), (1, Some(200)));
    let sent: Vec<String> = receiver
        .received("flaky")
        .iter()
        .map(|r| header(r, signing::ID_HEADER).to_owned())
        .collect();
    assert!(sent.contains(&second.id.to_string()), "{sent:?}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_sends_stored_events_again_from_a_position() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    let earlier = app.register("Barbara", "barbara@example.com").await;
    let hook = register_endpoint(&app, &receiver.url("replayed"), &["user.registered"]).await;
    let later = app.register("Leslie", "leslie@example.com").await;
    let delivered = wait_for_status(&app, &hook.webhook, later.id, DeliveryStatus::Delivered).await;

    let store = Webhooks::new(app.db.pool.clone());
    let queued = store
        .replay(hook.webhook.id, earlier.position, None)
        .await
        .expect("the database");
    assert_eq!(queued, Some(2));
    let received = receiver.wait_for("replayed", 3).await;
    let ids: Vec<String> = received
        .iter()
        .map(|r| header(r, signing::ID_HEADER).to_owned())
        .collect();
    assert_eq!(ids[0], later.id.to_string());
    let mut replayed = ids[1..].to_vec();
    replayed.sort();
    let mut expected = vec![earlier.id.to_string(), later.id.to_string()];
    expected.sort();
    assert_eq!(replayed, expected);
    wait_for_status(&app, &hook.webhook, earlier.id, DeliveryStatus::Delivered).await;
    let again = wait_for_status(&app, &hook.webhook, later.id, DeliveryStatus::Delivered).await;
    // The same delivery, sent again: receivers drop the copy by `Webhook-Id`.
    assert_eq!(again.id, delivered.id);
    // A replay bounded above, and one of an unknown endpoint.
    assert_eq!(
        store
            .replay(hook.webhook.id, 1, Some(earlier.position))
            .await
            .expect("the database"),
        Some(1)
    );
    assert_eq!(
        store.replay(Uuid::now_v7(), 1, None).await.expect("the database"),
        None
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_private_networks_allowed_a_delivery_to_loopback_fails_as_not_allowed_and_sends_nothing() {
    let app = TestApp::spawn_with(1, |s| {
        s.webhooks.networks = webhooks::NetworkPolicy::PublicOnly;
    })
    .await;
    let receiver = Receiver::start().await;
    // Stored directly, as an endpoint registered before the check (or by another path)
    // would be: the workers refuse it at delivery time whatever the registration said.
    let literal = register_endpoint(&app, &receiver.url("literal"), &["user.registered"]).await;
    let named = format!("http://localhost:{}/named", receiver.address.port());
    let named = register_endpoint(&app, &named, &["user.registered"]).await;

    let event = app.register("Radia", "radia@example.com").await;
    for hook in [&literal, &named] {
        let dead = wait_for_status(&app, &hook.webhook, event.id, DeliveryStatus::Dead).await;
        assert_eq!((dead.attempts, dead.last_status_code), (3, None));
        let error = dead.last_error.as_deref().unwrap_or_default();
        assert!(error.starts_with("address not allowed: "), "{error}");
        let detail = Webhooks::new(app.db.pool.clone())
            .delivery(hook.webhook.id, dead.id)
            .await
            .expect("the database")
            .expect("found");
        assert!(detail.attempt_log.iter().all(|a| {
            a.error
                .as_deref()
                .is_some_and(|e| e.starts_with("address not allowed"))
        }));
    }
    assert!(receiver.received("literal").is_empty());
    assert!(receiver.received("named").is_empty());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn freed_slots_go_to_the_endpoints_with_the_fewest_deliveries_in_flight() {
    let db = testkit::TestDb::new().await;
    let store = Webhooks::new(db.pool.clone());
    let mut endpoints = Vec::new();
    for name in ["first", "second", "third"] {
        let created = store
            .create(
                &NewWebhook {
                    url: format!("https://example.com/{name}"),
                    event_types: vec!["*".to_owned()],
                    description: None,
                },
                Uuid::now_v7(),
                None,
            )
            .await
            .expect("endpoint");
        for position in 0..5 {
            sqlx::query(
                "INSERT INTO webhook_deliveries (id, webhook_id, event_id, event_type, position, next_attempt_at)
                 VALUES ($1, $2, $3, 'user.registered', $4, now() - make_interval(secs => $4))",
            )
            .bind(Uuid::now_v7())
            .bind(created.webhook.id)
            .bind(Uuid::now_v7())
            .bind(f64::from(position))
            .execute(&db.pool)
            .await
            .expect("delivery");
        }
        endpoints.push(created.webhook.id);
    }
    // The first two are busy; the one freed slot goes to the idle third, though the
    // others were created first and have deliveries as old.
    let in_flight = [(endpoints[0], 2), (endpoints[1], 1)];
    let claimed = store
        .claim(1, 4, &in_flight, Duration::from_secs(30))
        .await
        .expect("claim");
    assert_eq!(
        claimed.iter().map(|c| c.webhook_id).collect::<Vec<_>>(),
        [endpoints[2]]
    );
    let claimed = store
        .claim(
            2,
            4,
            &[(endpoints[0], 2), (endpoints[1], 1), (endpoints[2], 2)],
            Duration::from_secs(30),
        )
        .await
        .expect("claim");
    assert!(
        claimed.iter().all(|c| c.webhook_id == endpoints[1]),
        "the least busy next"
    );
    assert_eq!(claimed.len(), 2);
}
