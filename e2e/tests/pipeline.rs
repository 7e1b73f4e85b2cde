//! The whole pipeline for users and auth: HTTP command → Postgres → outbox relay →
//! JetStream → projector (Postgres + Redis) and workers (SMTP) → query API, plus an
//! independent subscriber on NATS.

mod support;

use async_nats::jetstream::{self, consumer::pull};
use futures::StreamExt;
use serde_json::{Value, json};
use std::time::Duration;
use support::Stack;
use testkit::eventually;

const WAIT: Duration = Duration::from_secs(30);

async fn data(response: reqwest::Response) -> Value {
    response.json::<Value>().await.expect("JSON body")["data"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registration_reaches_the_mailbox_the_query_api_and_subscribers() {
    let stack = Stack::start().await;
    let http = reqwest::Client::new();

    // An independent subscriber with its own durable consumer, as another service would.
    let js = jetstream::new(stack.nats.client().await);
    let stream = js
        .get_stream(&stack.nats.stream.name)
        .await
        .expect("the services created the stream");
    let consumer = stream
        .create_consumer(pull::Config {
            durable_name: Some("e2e-subscriber".into()),
            filter_subject: stack.nats.stream.subject("user.registered"),
            ..Default::default()
        })
        .await
        .expect("subscriber consumer");

    // Register.
    let request_id = format!("e2e-{}", uuid::Uuid::new_v4());
    let response = http
        .post(format!("{}/api/v1/auth/register", stack.command))
        .header("x-request-id", &request_id)
        .json(&json!({"email": "Ada@Example.com", "name": "Ada Lovelace", "password": "analytical1"}))
        .send()
        .await
        .expect("register");
    assert_eq!(response.status(), 201);
    assert_eq!(response.headers()["x-request-id"], request_id.as_str());
    let user = data(response).await;
    let user_id = user["id"].as_str().expect("id").to_owned();

    // The welcome email arrives at a real SMTP server, to the user, greeting them by name.
    let mail = eventually(WAIT, "the welcome email", || async {
        stack
            .smtp
            .messages()
            .into_iter()
            .find(|m| m.to.contains(&"ada@example.com".to_owned()))
    })
    .await;
    assert!(
        mail.data.contains("Ada Lovelace"),
        "the email greets the user by name:\n{}",
        mail.data
    );

    // Log in, then read yourself from the query API once the projector has caught up.
    let response = http
        .post(format!("{}/api/v1/auth/login", stack.command))
        .json(&json!({"email": "ada@example.com", "password": "analytical1"}))
        .send()
        .await
        .expect("login");
    assert_eq!(response.status(), 200);
    let token = data(response).await["accessToken"]
        .as_str()
        .expect("token")
        .to_owned();
    let me = eventually(WAIT, "the user in the query API", || async {
        let response = http
            .get(format!("{}/api/v1/me", stack.query))
            .bearer_auth(&token)
            .send()
            .await
            .ok()?;
        if response.status() == 200 {
            Some(data(response).await)
        } else {
            None
        }
    })
    .await;
    assert_eq!(me["id"], user_id.as_str());
    assert_eq!(me["email"], "ada@example.com");
    assert_eq!(me["name"], "Ada Lovelace");
    assert_eq!(me["role"], "user");
    let mut redis = stack.redis.connection().await;
    let cached: Option<String> = redis::cmd("GET")
        .arg(format!("{}:user:{user_id}", stack.redis.prefix))
        .query_async(&mut redis)
        .await
        .expect("redis GET");
    assert!(
        cached.is_some_and(|doc| doc.contains("Ada Lovelace")),
        "the projector wrote the Redis document"
    );

    // The independent subscriber sees the event with the documented envelope.
    // The bootstrap admin registered first; find this user's event among the messages.
    let mut messages = consumer
        .fetch()
        .max_messages(10)
        .expires(Duration::from_secs(3))
        .messages()
        .await
        .expect("fetch");
    let mut found = None;
    while let Some(message) = messages.next().await {
        let message = message.expect("a message");
        let event: Value = serde_json::from_slice(&message.payload).expect("envelope JSON");
        message.ack().await.expect("ack");
        if event["streamId"] == user_id.as_str() {
            found = Some(event);
        }
    }
    let event = found.expect("the subscriber saw the user's registration");
    assert_eq!(event["type"], "user.registered");
    assert_eq!(event["schemaVersion"], 1);
    assert_eq!(event["streamType"], "user");
    assert_eq!(event["streamId"], user_id.as_str());
    assert_eq!(event["streamVersion"], 1);
    assert_eq!(event["correlationId"], request_id.as_str());
    assert_eq!(
        event["data"],
        json!({"email": "ada@example.com", "name": "Ada Lovelace", "role": "user"})
    );

    // A rename shows up in the query API; a deletion erases the user from it.
    let response = http
        .patch(format!("{}/api/v1/users/{user_id}", stack.command))
        .bearer_auth(&token)
        .header("If-Match", "\"1\"")
        .json(&json!({"name": "Countess Ada"}))
        .send()
        .await
        .expect("rename");
    assert_eq!(response.status(), 200);
    eventually(WAIT, "the rename in the query API", || async {
        let response = http
            .get(format!("{}/api/v1/users/{user_id}", stack.query))
            .bearer_auth(&token)
            .send()
            .await
            .ok()?;
        (data(response).await["name"] == "Countess Ada").then_some(())
    })
    .await;
    let response = http
        .delete(format!("{}/api/v1/users/{user_id}", stack.command))
        .bearer_auth(&token)
        .send()
        .await
        .expect("delete");
    assert_eq!(response.status(), 204);
    eventually(WAIT, "the deletion in the query API", || async {
        let response = http
            .get(format!("{}/api/v1/me", stack.query))
            .bearer_auth(&token)
            .send()
            .await
            .ok()?;
        (response.status() == 404).then_some(())
    })
    .await;
    let (email, name): (Option<String>, Option<String>) =
        sqlx::query_as("SELECT email, name FROM users_view WHERE id = $1::uuid")
            .bind(&user_id)
            .fetch_one(&stack.db.pool)
            .await
            .expect("tombstone row");
    assert_eq!(
        (email, name),
        (None, None),
        "personal data erased from the read model"
    );

    // Exactly one welcome email, and one JSON access-log line carrying the request id.
    let to_ada = stack
        .smtp
        .messages()
        .iter()
        .filter(|m| m.to.contains(&"ada@example.com".to_owned()))
        .count();
    assert_eq!(to_ada, 1, "exactly one welcome email");
    let log = stack.log("command-api");
    let line = log
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|l| l["requestId"] == request_id.as_str() && l["message"] == "request finished")
        .expect("an access log line for the request");
    assert_eq!(line["path"], "/api/v1/auth/register");
    assert_eq!(line["method"], "POST");
    assert_eq!(line["status"], 201);
    // The request is followed by its correlation id to the projection and to the email.
    let event_id = event["id"].as_str().expect("event id");
    for service in ["projector", "workers"] {
        let log = stack.log(service);
        let about_the_event: Vec<Value> = log
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|l| l["eventId"] == event_id)
            .collect();
        assert!(!about_the_event.is_empty(), "{service} logged the event:\n{log}");
        for line in &about_the_event {
            assert_eq!(line["correlationId"], request_id.as_str(), "{service}: {line}");
            assert_eq!(line["eventType"], "user.registered", "{service}: {line}");
        }
    }
    let workers = stack.log("workers");
    assert!(
        workers
            .lines()
            .any(|l| l.contains(event_id) && l.contains("welcome_email")),
        "the welcome email's lines name the event and the effect:\n{workers}"
    );
    assert!(!log.contains("analytical1"), "the password never appears in logs");
    stack.nats.cleanup().await;
}
