//! Every committed event reaches JetStream, also when NATS was down at commit time.

use crate::helpers::{settings, start};
use futures::StreamExt;
use reqwest::Client;
use serde_json::json;
use std::time::Duration;
use testkit::{NatsServer, TestDb, TestNats, TestRedis, eventually};

async fn stream_messages(nats: &TestNats) -> Vec<eventstore::EventEnvelope> {
    let js = async_nats::jetstream::new(nats.client().await);
    let Ok(mut stream) = js.get_stream(&nats.stream.name).await else {
        return vec![];
    };
    let Ok(info) = stream.info().await else {
        return vec![];
    };
    let count = info.state.messages as usize;
    let mut events = Vec::new();
    for sequence in 1..=info.state.last_sequence {
        if let Ok(message) = stream.get_raw_message(sequence).await {
            let message_id = message
                .headers
                .get(async_nats::header::NATS_MESSAGE_ID)
                .map(|v| v.to_string());
            let event: eventstore::EventEnvelope =
                serde_json::from_slice(&message.payload).expect("an envelope");
            assert_eq!(
                message_id,
                Some(event.id.to_string()),
                "Nats-Msg-Id is the event id; headers {:?}",
                message.headers
            );
            events.push(event);
        }
    }
    assert_eq!(events.len(), count);
    events
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registrations_are_published_to_jetstream_with_their_subject() {
    let db = TestDb::new().await;
    let nats = TestNats::new();
    let redis = TestRedis::new();
    let (base, _stop) = start(settings(&db, &nats, &redis)).await;
    let client = async_nats::jetstream::new(nats.client().await);
    // An independent subscriber on the subject sees the event.
    let mut subscriber = nats
        .client()
        .await
        .subscribe(nats.stream.subject("user.registered"))
        .await
        .expect("subscribe");
    let response = Client::new()
        .post(format!("{base}/api/v1/auth/register"))
        .json(&json!({"email": "pub@example.com", "name": "Pub", "password": "password123"}))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 201);
    let message = tokio::time::timeout(Duration::from_secs(10), subscriber.next())
        .await
        .expect("in time")
        .expect("a message");
    let event: eventstore::EventEnvelope = serde_json::from_slice(&message.payload).expect("envelope");
    assert_eq!(event.event_type, "user.registered");
    assert_eq!(event.stream_version, 1);
    assert_eq!(event.data["email"], "pub@example.com");
    drop(client);
    eventually(Duration::from_secs(10), "the outbox to drain", || async {
        let left: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox")
            .fetch_one(&db.pool)
            .await
            .ok()?;
        (left == 0).then_some(())
    })
    .await;
    nats.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_nats_down_registrations_succeed_and_reach_jetstream_when_it_returns() {
    let db = TestDb::new().await;
    let mut server = NatsServer::reserve();
    let nats = TestNats::on(server.url.clone());
    let redis = TestRedis::new();
    let (base, _stop) = start(settings(&db, &nats, &redis)).await;
    let client = Client::new();
    for i in 0..5 {
        let response = client
            .post(format!("{base}/api/v1/auth/register"))
            .json(
                &json!({"email": format!("down{i}@example.com"), "name": "Down", "password": "password123"}),
            )
            .send()
            .await
            .expect("sent");
        assert_eq!(response.status(), 201, "NATS being down must not fail a write");
    }
    let pending: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox")
        .fetch_one(&db.pool)
        .await
        .expect("count");
    assert_eq!(pending, 5);

    server.start().await;
    let events = eventually(Duration::from_secs(30), "all events in JetStream", || async {
        let events = stream_messages(&nats).await;
        (events.len() == 5).then_some(events)
    })
    .await;
    let stored: Vec<uuid::Uuid> = sqlx::query_scalar("SELECT id FROM events ORDER BY position")
        .fetch_all(&db.pool)
        .await
        .expect("ids");
    let mut published: Vec<uuid::Uuid> = events.iter().map(|e| e.id).collect();
    published.sort();
    let mut expected = stored.clone();
    expected.sort();
    assert_eq!(published, expected);
    eventually(Duration::from_secs(10), "the outbox to drain", || async {
        let left: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox")
            .fetch_one(&db.pool)
            .await
            .ok()?;
        (left == 0).then_some(())
    })
    .await;
}
