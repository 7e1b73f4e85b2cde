//! Order confirmations are retried with backoff, become dead letters after the last
//! attempt, and are resolved by an operator's retry.

use crate::helpers::ORDER_CONFIRMATION_CONSUMER;
use crate::helpers::TestApp;
use crate::order_confirmation::{
    order_emails, place_order, recorded, registered_user, wait_for_order_emails,
};
use domain::user::Role;
use reqwest::StatusCode;
use serde_json::Value;
use uuid::Uuid;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_confirmation_refused_twice_is_delivered_after_retries() {
    let app = TestApp::spawn().await;
    let user_id = registered_user(&app, "Barbara", "barbara@example.com").await;
    app.smtp.refuse_next(2);
    let (_, sequence) = place_order(&app, user_id, &[("Bento box", "BENTO", 3, 1500)], "JPY").await;

    let emails = wait_for_order_emails(&app, 1).await;
    assert_eq!(emails[0].to, ["barbara@example.com"]);
    assert!(
        emails[0]
            .data
            .contains("- Bento box (SKU BENTO): 3 × 1500 JPY = 4500 JPY"),
        "{}",
        emails[0].data
    );
    assert!(emails[0].data.contains("Total: 4500 JPY"), "{}", emails[0].data);
    app.wait_until_handled_by(ORDER_CONFIRMATION_CONSUMER, sequence)
        .await;
    assert_eq!(order_emails(&app).len(), 1);
    assert!(app.dead_letter_ids().await.is_empty());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_confirmation_refused_on_every_attempt_becomes_a_dead_letter_that_an_operator_retries() {
    let app = TestApp::spawn_with(1, |s| s.retry.max_attempts = 2).await;
    let user_id = registered_user(&app, "Edsger", "edsger@example.com").await;
    app.smtp.refuse_next(usize::MAX);
    let (event, sequence) = place_order(&app, user_id, &[("Dates", "DATES", 2, 1250)], "KWD").await;

    let ids = app.wait_for_dead_letters(1).await;
    app.wait_until_handled_by(ORDER_CONFIRMATION_CONSUMER, sequence)
        .await;
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
    assert_eq!(effect, "order_confirmation");
    assert_eq!(subject, app.nats.stream.subject("order.placed"));
    assert_eq!(stored, serde_json::to_value(&event).expect("json"));
    assert_eq!(attempts, 2);
    assert!(error.contains("451"), "{error}");
    assert_eq!(status, "dead");
    assert!(order_emails(&app).is_empty());

    let admin = app.token(Role::Admin).await;
    let retry = app.url(&format!("/api/v1/dead-letters/{}/retry", ids[0]));
    app.smtp.refuse_next(0);
    let response = app
        .http
        .post(&retry)
        .bearer_auth(&admin)
        .send()
        .await
        .expect("retry");
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["data"]["status"], "resolved");
    assert_eq!(body["data"]["attempts"], 2);
    let emails = order_emails(&app);
    assert_eq!(emails.len(), 1);
    assert_eq!(emails[0].to, ["edsger@example.com"]);
    assert!(emails[0].data.contains("Total: 2.500 KWD"), "{}", emails[0].data);
    assert_eq!(recorded(&app, event.id).await, 1);

    let again = app
        .http
        .post(&retry)
        .bearer_auth(&admin)
        .send()
        .await
        .expect("retry");
    assert_eq!(again.status(), StatusCode::CONFLICT);
    assert_eq!(order_emails(&app).len(), 1);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_concurrency_of_one_both_consumers_of_the_process_make_progress() {
    // An idle consumer must not sit on the process's only permit.
    let app = TestApp::spawn_with(1, |s| s.concurrency = 1).await;
    let first = registered_user(&app, "Ada", "ada@example.com").await;
    place_order(&app, first, &[("Mug", "MUG", 1, 500)], "EUR").await;
    wait_for_order_emails(&app, 1).await;
    let second = registered_user(&app, "Bob", "bob@example.com").await;
    place_order(&app, second, &[("Mug", "MUG", 1, 500)], "EUR").await;
    let emails = wait_for_order_emails(&app, 2).await;
    assert_eq!(emails[1].to, ["bob@example.com"]);
    app.stop().await;
}
