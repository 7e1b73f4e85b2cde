//! An external subscriber, as another team would write one (README, "Subscribing to
//! events"): its own durable JetStream consumer on the events stream, delivering from the
//! first event, handling each event once by its id, acknowledging after the handling is
//! recorded.
//!
//! ```sh
//! NATS_URL=nats://127.0.0.1:4222 cargo run -p e2e --bin example_subscriber -- billing 'events.order.>'
//! ```
//!
//! Arguments: the consumer's name, then the filter subject (default `events.>`).
//! Environment: `NATS_URL`, `EVENTS_STREAM` (`EVENTS`), `SEEN_FILE` (where handled event ids
//! are kept; default `<consumer>.seen`), `EXIT_WHEN_IDLE_MS` (stop after that long without
//! a message; default: run until stopped). Each handled event is printed as one JSON line.

use async_nats::jetstream::{self, consumer::pull};
use futures::StreamExt;
use std::collections::HashSet;
use std::io::Write;
use std::time::{Duration, Instant};

type Error = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let mut args = std::env::args().skip(1);
    let name = args
        .next()
        .ok_or("usage: example_subscriber <consumer> [filter subject]")?;
    let filter = args.next().unwrap_or_else(|| "events.>".to_owned());
    let env = |key: &str, default: &str| std::env::var(key).unwrap_or_else(|_| default.to_owned());
    let idle_exit = std::env::var("EXIT_WHEN_IDLE_MS")
        .ok()
        .and_then(|ms| ms.parse().ok())
        .map(Duration::from_millis);
    let seen_file = env("SEEN_FILE", &format!("{name}.seen"));

    let nats = async_nats::connect(env("NATS_URL", "nats://127.0.0.1:4222")).await?;
    let stream = jetstream::new(nats)
        .get_stream(env("EVENTS_STREAM", "EVENTS"))
        .await?;
    // Durable: a restart resumes where the last acknowledgement left off; a new name
    // replays the stream from its first event.
    let consumer = stream
        .get_or_create_consumer(
            &name,
            pull::Config {
                durable_name: Some(name.clone()),
                filter_subject: filter,
                deliver_policy: jetstream::consumer::DeliverPolicy::All,
                ack_policy: jetstream::consumer::AckPolicy::Explicit,
                ..Default::default()
            },
        )
        .await?;

    // Idempotent by event id: delivery is at least once (a redelivery after a crash, a
    // re-publish beyond the stream's duplicate window).
    let mut seen: HashSet<String> = std::fs::read_to_string(&seen_file)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect();
    let mut record = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&seen_file)?;
    let mut last_message = Instant::now();
    loop {
        let mut batch = consumer
            .fetch()
            .max_messages(100)
            .expires(Duration::from_millis(500))
            .messages()
            .await?;
        while let Some(message) = batch.next().await {
            let message = message?;
            last_message = Instant::now();
            let event: serde_json::Value = serde_json::from_slice(&message.payload)?;
            let id = event["id"].as_str().unwrap_or_default().to_owned();
            if seen.insert(id.clone()) {
                // The handling: here, one line per event.
                println!(
                    "{}",
                    serde_json::json!({
                        "id": id,
                        "type": event["type"],
                        "streamId": event["streamId"],
                        "streamVersion": event["streamVersion"],
                    })
                );
                writeln!(record, "{id}")?;
                record.sync_data()?;
            }
            message.ack().await?;
        }
        if idle_exit.is_some_and(|idle| last_message.elapsed() >= idle) {
            return Ok(());
        }
    }
}
