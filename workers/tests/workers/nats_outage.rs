//! The workers start while NATS is down, report it in readiness, and begin consuming
//! (creating the stream and consumer) once NATS is up.

use crate::helpers::WELCOME_CONSUMER;
use crate::helpers::{WAIT, test_settings};
use domain::user::{Email, Role, UserEvent, UserName};
use eventstore::{EventMetadata, EventStore, OutboxRelay};
use reqwest::StatusCode;
use testkit::{NatsServer, SmtpServer, TestDb, TestNats, eventually};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;
use workers::Application;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_started_before_nats_begin_consuming_once_it_is_up() {
    let db = TestDb::new().await;
    let smtp = SmtpServer::start().await;
    let mut server = NatsServer::reserve();
    let nats = TestNats::on(server.url.clone());
    let client = runtime::connect_nats(&nats.url)
        .await
        .expect("client that retries");
    let app = Application::build(test_settings(&db, &nats, &smtp), db.pool.clone(), client)
        .await
        .expect("build");
    let ready = format!("http://{}/health/ready", app.address());
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(app.run(shutdown.clone()));

    let response = reqwest::get(&ready).await.expect("ready");
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: serde_json::Value = response.json().await.expect("json");
    assert_eq!(body["error"]["details"][0]["field"], "nats");

    server.start().await;
    eventually(WAIT, "readiness with NATS up", || async {
        let status = reqwest::get(&ready).await.ok()?.status();
        (status == StatusCode::OK).then_some(())
    })
    .await;
    let jetstream = async_nats::jetstream::new(nats.client().await);
    eventually(WAIT, "the stream and consumer the workers create", || async {
        let stream = jetstream.get_stream(&nats.stream.name).await.ok()?;
        stream.consumer_info(WELCOME_CONSUMER).await.ok()
    })
    .await;

    let store = EventStore::new(db.pool.clone());
    let mut unit = store.begin().await.expect("begin");
    let event = UserEvent::Registered {
        email: Email::parse("late@example.com").expect("email"),
        name: UserName::parse("Late").expect("name"),
        role: Role::User,
    };
    unit.append(Uuid::now_v7(), 0, &[event], &EventMetadata::default())
        .await
        .expect("append");
    unit.commit().await.expect("commit");
    OutboxRelay::new(
        db.pool.clone(),
        jetstream,
        nats.stream.clone(),
        store.appended_signal(),
    )
    .publish_batch()
    .await
    .expect("relay");

    let emails = eventually(WAIT, "the welcome email", || async {
        let messages = smtp.messages();
        (!messages.is_empty()).then_some(messages)
    })
    .await;
    assert_eq!(emails[0].to, ["late@example.com"]);
    shutdown.cancel();
    running.await.expect("task").expect("served");
}
