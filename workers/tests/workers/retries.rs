//! Failures are retried with backoff, and the last failure becomes a dead letter.

use crate::helpers::TestApp;
use serde_json::Value;
use uuid::Uuid;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_email_refused_twice_is_delivered_after_retries() {
    let app = TestApp::spawn().await;
    app.smtp.refuse_next(2);
    app.register("Barbara", "barbara@example.com").await;

    let emails = app.wait_for_emails(1).await;
    assert_eq!(emails[0].to, ["barbara@example.com"]);
    app.wait_until_handled(1).await;
    assert_eq!(app.smtp.messages().len(), 1);
    assert!(app.dead_letter_ids().await.is_empty());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_email_refused_on_every_attempt_becomes_one_dead_letter() {
    let app = TestApp::spawn_with(1, |s| s.retry.max_attempts = 2).await;
    app.smtp.refuse_next(usize::MAX);
    let event = app.register("Edsger", "edsger@example.com").await;

    let ids = app.wait_for_dead_letters(1).await;
    app.wait_until_handled(1).await;
    assert_eq!(app.dead_letter_ids().await.len(), 1);
    let (event_id, effect, subject, stored, error, attempts, status): (
        Uuid,
        String,
        String,
        Value,
        String,
        i32,
        String,
    ) = sqlx::query_as(
        "SELECT event_id, effect, subject, event, error, attempts, status FROM dead_letters WHERE id = $1",
    )
    .bind(ids[0])
    .fetch_one(&app.db.pool)
    .await
    .expect("dead letter");
    assert_eq!(event_id, event.id);
    assert_eq!(effect, "welcome_email");
    assert_eq!(subject, app.nats.stream.subject("user.registered"));
    assert_eq!(stored, serde_json::to_value(&event).expect("json"));
    assert_eq!(attempts, 2);
    assert!(error.contains("451"), "{error}");
    assert_eq!(status, "dead");
    assert!(app.smtp.messages().is_empty());

    // Once dead-lettered, a redelivery leaves it to operators, even when SMTP works again.
    app.smtp.refuse_next(0);
    app.republish(&event).await;
    app.wait_until_handled(2).await;
    assert!(app.smtp.messages().is_empty());
    assert_eq!(app.dead_letter_ids().await, ids);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_consumer_endpoint_shows_a_message_waiting_for_its_retry() {
    let app = TestApp::spawn_with(1, |s| {
        s.retry.base = std::time::Duration::from_secs(30);
        s.retry.max = std::time::Duration::from_secs(30);
    })
    .await;
    app.smtp.refuse_next(usize::MAX);
    app.register("Donald", "donald@example.com").await;
    let admin = app.token(domain::user::Role::Admin).await;

    let consumer = testkit::eventually(crate::helpers::WAIT, "a pending retry", || async {
        let body: Value = app
            .http
            .get(app.url("/api/v1/consumers"))
            .bearer_auth(&admin)
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        let consumer = body["data"][0].clone();
        (consumer["numAckPending"] == 1 && consumer["deliveredStreamSequence"] == 1).then_some(consumer)
    })
    .await;
    assert_eq!(consumer["name"], "workers-welcome-email");
    assert_eq!(consumer["stream"], app.nats.stream.name.as_str());
    assert_eq!(
        consumer["filterSubject"],
        app.nats.stream.subject("user.registered").as_str()
    );
    assert_eq!(consumer["numPending"], 0);
    assert!(consumer["numRedelivered"].is_u64());
    app.stop().await;
}
