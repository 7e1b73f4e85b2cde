//! `GET /metrics` on all four services after real traffic: the HTTP metrics by route
//! template, the events appended and the outbox, the projections' progress and lag, the
//! consumers, the side effects and dead letters, Redis' breaker and the argon2 queue.

mod support;

use serde_json::json;
use std::time::Duration;
use support::Stack;
use testkit::eventually;

const WAIT: Duration = Duration::from_secs(30);

/// The value of the sample `name{labels}` (labels as Prometheus writes them, in order of
/// the label names), if exposed.
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (metric, rest) = series.split_once('{').unwrap_or((series, "}"));
            if metric != name {
                return None;
            }
            let wanted = labels
                .iter()
                .all(|(label, value)| rest.contains(&format!("{label}=\"{value}\"")));
            wanted.then(|| value.parse().ok()).flatten()
        })
}

async fn scrape(http: &reqwest::Client, base: &str) -> String {
    let response = http.get(format!("{base}/metrics")).send().await.expect("scrape");
    assert_eq!(response.status(), 200, "{base}/metrics");
    let content_type = response.headers()["content-type"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    response.text().await.expect("text")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_service_exposes_its_metrics_after_real_traffic() {
    let stack = Stack::start().await;
    let http = reqwest::Client::new();
    let response = http
        .post(format!("{}/api/v1/auth/register", stack.command))
        .json(&json!({"email": "grace@example.com", "name": "Grace", "password": "cobol1959x"}))
        .send()
        .await
        .expect("register");
    assert_eq!(response.status(), 201);
    let unknown = http
        .get(format!(
            "{}/api/v1/products/{}",
            stack.query,
            uuid::Uuid::now_v7()
        ))
        .send()
        .await
        .expect("read");
    assert_eq!(unknown.status(), 404);

    let command = scrape(&http, &stack.command).await;
    let created = [
        ("method", "POST"),
        ("route", "/api/v1/auth/register"),
        ("status", "201"),
    ];
    assert_eq!(
        sample(&command, "http_requests_total", &created),
        Some(1.0),
        "{command}"
    );
    assert!(sample(&command, "http_request_duration_seconds_count", &created) >= Some(1.0));
    assert!(sample(&command, "events_appended_total", &[("stream_type", "user")]) >= Some(1.0));
    assert!(sample(&command, "argon2_queue_wait_seconds_count", &[]) >= Some(1.0));
    assert!(sample(&command, "outbox_depth", &[]).is_some(), "{command}");
    let query = scrape(&http, &stack.query).await;
    let not_found = [
        ("method", "GET"),
        ("route", "/api/v1/products/{id}"),
        ("status", "404"),
    ];
    assert_eq!(
        sample(&query, "http_requests_total", &not_found),
        Some(1.0),
        "{query}"
    );
    assert_eq!(sample(&query, "redis_breaker_open", &[]), Some(0.0), "{query}");

    // The registration travels: relay, projector, worker.
    let command = eventually(WAIT, "the relay to publish", || async {
        let text = scrape(&http, &stack.command).await;
        (sample(&text, "outbox_publish_lag_seconds_count", &[]) >= Some(1.0)
            && sample(&text, "outbox_depth", &[]) == Some(0.0))
        .then_some(text)
    })
    .await;
    assert!(command.contains("# HELP outbox_depth"), "described: {command}");
    let projector = eventually(WAIT, "the projector to apply the registration", || async {
        let text = scrape(&http, &stack.projector).await;
        (sample(
            &text,
            "projection_events_applied_total",
            &[("projection", "users")],
        ) >= Some(1.0)
            && sample(&text, "projection_lag_events", &[("projection", "users")]) == Some(0.0))
        .then_some(text)
    })
    .await;
    assert_eq!(
        sample(&projector, "projection_lag_seconds", &[("projection", "users")]),
        Some(0.0)
    );
    for consumer in ["projector-users", "projector-orders"] {
        let labels = [("consumer", consumer)];
        assert_eq!(
            sample(&projector, "jetstream_consumer_pending", &labels),
            Some(0.0),
            "{consumer}"
        );
        assert!(sample(&projector, "jetstream_consumer_ack_pending", &labels).is_some());
        assert!(sample(&projector, "jetstream_consumer_redelivered", &labels).is_some());
    }
    let workers = eventually(WAIT, "the welcome email", || async {
        let text = scrape(&http, &stack.workers).await;
        let sent = [("effect", "welcome_email"), ("outcome", "done")];
        (sample(&text, "side_effects_total", &sent) >= Some(1.0)).then_some(text)
    })
    .await;
    assert_eq!(
        sample(&workers, "dead_letters", &[("effect", "welcome_email")]),
        Some(0.0),
        "{workers}"
    );
    assert!(
        workers.contains("jetstream_consumer_pending{consumer=\"workers-welcome-email\"}"),
        "{workers}"
    );
}
