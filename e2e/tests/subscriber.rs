//! The README's example subscriber against the running stack: its own durable consumer
//! replays every event from the start, handles each once, resumes where it stopped, and a
//! replayed delivery (a new consumer over the same events, sharing the record of handled
//! ids) handles nothing twice.

mod support;

use serde_json::{Value, json};
use std::path::Path;
use std::time::Duration;
use support::Stack;
use testkit::eventually;

/// Runs the subscriber until it has been idle for a second; the events it handled.
fn run_subscriber(stack: &Stack, consumer: &str, seen_file: &Path) -> Vec<Value> {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_example_subscriber"))
        .arg(consumer)
        .arg(stack.nats.stream.stream_type_filter("user"))
        .env("NATS_URL", &stack.nats.url)
        .env("EVENTS_STREAM", &stack.nats.stream.name)
        .env("SEEN_FILE", seen_file)
        .env("EXIT_WHEN_IDLE_MS", "1000")
        .output()
        .expect("the subscriber runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect()
}

async fn register(http: &reqwest::Client, stack: &Stack, email: &str) {
    let response = http
        .post(format!("{}/api/v1/auth/register", stack.command))
        .json(&json!({"email": email, "name": "Sub Scriber", "password": "listen1234x"}))
        .send()
        .await
        .expect("register");
    assert_eq!(response.status(), 201);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_subscriber_replays_from_the_start_resumes_and_handles_each_event_once() {
    let stack = Stack::start().await;
    let http = reqwest::Client::new();
    let dir = std::env::temp_dir().join(format!("subscriber-{}", testkit::unique_suffix()));
    std::fs::create_dir_all(&dir).expect("dir");
    let seen = dir.join("billing.seen");
    register(&http, &stack, "first@example.com").await;
    register(&http, &stack, "second@example.com").await;
    // The admin bootstrap and the two registrations, once published.
    let published = eventually(Duration::from_secs(30), "the relay to publish", || async {
        let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE stream_type = 'user'")
            .fetch_one(&stack.db.pool)
            .await
            .ok()?;
        let outbox: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox")
            .fetch_one(&stack.db.pool)
            .await
            .ok()?;
        (stored >= 3 && outbox == 0).then_some(stored as usize)
    })
    .await;

    let handled = run_subscriber(&stack, "billing", &seen);
    assert_eq!(
        handled.len(),
        published,
        "every user event from the start: {handled:?}"
    );
    assert!(
        handled
            .iter()
            .all(|event| event["type"].as_str().is_some_and(|t| t.starts_with("user.")))
    );

    // Resumes after its last acknowledgement: only what is new.
    register(&http, &stack, "third@example.com").await;
    let later = eventually(Duration::from_secs(30), "the third registration", || async {
        let events = run_subscriber(&stack, "billing", &seen);
        (!events.is_empty()).then_some(events)
    })
    .await;
    assert_eq!(later.len(), 1, "{later:?}");
    assert_eq!(later[0]["type"], "user.registered");

    // A second consumer replays the whole stream; with the same record of handled ids,
    // nothing is handled twice.
    let again = run_subscriber(&stack, "billing-replay", &seen);
    assert!(again.is_empty(), "handled twice: {again:?}");
    let fresh = run_subscriber(&stack, "audit", &dir.join("audit.seen"));
    assert_eq!(fresh.len(), published + 1);
    let _ = std::fs::remove_dir_all(&dir);
}
