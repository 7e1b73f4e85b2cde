//! The outbox relay against real Postgres and NATS: pipelined batches publish every
//! committed event once, in position order, with `Nats-Msg-Id` = event id, also when
//! several relays share the outbox or NATS was away.

use async_nats::jetstream;
use domain::user::{Email, Role, UserEvent, UserName};
use eventstore::{EventMetadata, EventStore, OutboxRelay, StreamSettings, ensure_stream};
use std::collections::HashSet;
use std::time::Duration;
use testkit::{NatsServer, TestDb, TestNats, eventually};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(30);

/// Registers `users` users, `per_commit` per transaction; returns their event ids.
async fn register(store: &EventStore, users: usize, per_commit: usize) -> Vec<Uuid> {
    let mut ids = Vec::with_capacity(users);
    for chunk in (0..users).collect::<Vec<_>>().chunks(per_commit) {
        let mut unit = store.begin().await.expect("begin");
        for i in chunk {
            let event = UserEvent::Registered {
                email: Email::parse(&format!("user{i}@example.com")).expect("email"),
                name: UserName::parse("Relay").expect("name"),
                role: Role::User,
            };
            let stored = unit
                .append(Uuid::now_v7(), 0, &[event], &EventMetadata::default())
                .await
                .expect("append");
            ids.extend(stored.iter().map(|e| e.id));
        }
        unit.commit().await.expect("commit");
    }
    ids
}

/// Event ids of the stream's messages in stream order; each `Nats-Msg-Id` is checked.
async fn published(jetstream: &jetstream::Context, stream: &StreamSettings) -> Vec<Uuid> {
    let mut handle = jetstream.get_stream(&stream.name).await.expect("stream");
    let last = handle.info().await.expect("info").state.last_sequence;
    let mut ids = Vec::new();
    for sequence in 1..=last {
        let message = handle.get_raw_message(sequence).await.expect("message");
        let event: eventstore::EventEnvelope = serde_json::from_slice(&message.payload).expect("envelope");
        let message_id = message
            .headers
            .get(async_nats::header::NATS_MESSAGE_ID)
            .map(|v| v.to_string());
        assert_eq!(
            message_id,
            Some(event.id.to_string()),
            "Nats-Msg-Id is the event id"
        );
        ids.push(event.id);
    }
    ids
}

async fn outbox_rows(db: &TestDb) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM outbox")
        .fetch_one(&db.pool)
        .await
        .expect("outbox count")
}

fn relay(db: &TestDb, store: &EventStore, jetstream: &jetstream::Context, nats: &TestNats) -> OutboxRelay {
    OutboxRelay::new(
        db.pool.clone(),
        jetstream.clone(),
        nats.stream.clone(),
        store.appended_signal(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_is_published_in_full_batches_through_a_narrow_window_in_position_order() {
    let db = TestDb::new().await;
    let nats = TestNats::new();
    let jetstream = jetstream::new(nats.client().await);
    ensure_stream(&jetstream, &nats.stream).await.expect("stream");
    let store = EventStore::new(db.pool.clone());
    let ids = register(&store, 250, 25).await;

    let relay = relay(&db, &store, &jetstream, &nats)
        .with_batch_size(100)
        .with_max_in_flight(8);
    let mut passes = Vec::new();
    loop {
        match relay.publish_batch().await.expect("pass") {
            0 => break,
            published => passes.push(published),
        }
    }
    assert_eq!(passes, [100, 100, 50]);
    assert_eq!(outbox_rows(&db).await, 0);
    // One relay sends in position order, so the stream holds the events in commit order.
    assert_eq!(published(&jetstream, &nats.stream).await, ids);
    nats.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relays_sharing_one_outbox_publish_every_event_committed_meanwhile() {
    let db = TestDb::new().await;
    let nats = TestNats::new();
    let jetstream = jetstream::new(nats.client().await);
    ensure_stream(&jetstream, &nats.stream).await.expect("stream");
    let store = EventStore::new(db.pool.clone());
    let shutdown = CancellationToken::new();
    let relays: Vec<_> = (0..3)
        .map(|_| {
            let relay = relay(&db, &store, &jetstream, &nats)
                .with_batch_size(50)
                .with_max_in_flight(16);
            tokio::spawn(relay.run(shutdown.clone()))
        })
        .collect();
    // Commits land while the relays run, from two writers at once.
    let (first, second) = tokio::join!(register(&store, 300, 7), register(&store, 300, 11));

    let count = first.len() + second.len();
    let stream = eventually(WAIT, "every event in JetStream", || async {
        let ids = published(&jetstream, &nats.stream).await;
        (ids.len() >= count).then_some(ids)
    })
    .await;
    eventually(WAIT, "the outbox to drain", || async {
        (outbox_rows(&db).await == 0).then_some(())
    })
    .await;
    shutdown.cancel();
    for relay in relays {
        relay.await.expect("relay stopped");
    }
    let expected: HashSet<Uuid> = first.into_iter().chain(second).collect();
    let in_stream: HashSet<Uuid> = stream.iter().copied().collect();
    assert_eq!(stream.len(), count, "each event once");
    assert_eq!(in_stream, expected, "no event skipped");
    nats.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_committed_while_nats_is_away_stay_in_the_outbox_until_it_returns() {
    let db = TestDb::new().await;
    let mut server = NatsServer::reserve();
    let nats = TestNats::on(server.url.clone());
    let client = runtime::connect_nats(&nats.url).await.expect("client");
    let jetstream = jetstream::new(client);
    let store = EventStore::new(db.pool.clone());
    let ids = register(&store, 40, 10).await;

    let relay = relay(&db, &store, &jetstream, &nats).with_max_in_flight(4);
    assert!(relay.publish_batch().await.is_err(), "nothing is acknowledged");
    assert_eq!(outbox_rows(&db).await, 40, "every row is kept");

    server.start().await;
    eventually(WAIT, "the stream", || async {
        ensure_stream(&jetstream, &nats.stream).await.ok()
    })
    .await;
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut total = 0;
    while outbox_rows(&db).await > 0 {
        assert!(tokio::time::Instant::now() < deadline, "the outbox drains");
        match relay.publish_batch().await {
            Ok(published) => total += published,
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    assert_eq!(total, 40);
    // Publishes the client buffered during the outage may land first: same ids, once each.
    let stream = published(&jetstream, &nats.stream).await;
    assert_eq!(stream.len(), ids.len());
    assert_eq!(
        stream.into_iter().collect::<HashSet<_>>(),
        ids.into_iter().collect::<HashSet<_>>()
    );
}
