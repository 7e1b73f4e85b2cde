//! The welcome email goes out once per event, whoever delivers it and how often.

use crate::helpers::TestApp;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registered_user_receives_a_welcome_email_greeting_them_by_name() {
    let app = TestApp::spawn().await;
    let event = app.register("Ada Lovelace", "ada@example.com").await;

    let emails = app.wait_for_emails(1).await;
    let email = &emails[0];
    assert_eq!(email.to, ["ada@example.com"]);
    assert_eq!(email.from, "no-reply@localhost");
    assert!(
        email.data.contains("Subject: Welcome, Ada Lovelace!"),
        "{}",
        email.data
    );
    assert!(email.data.contains("Hello Ada Lovelace,"), "{}", email.data);
    assert!(
        email.data.contains("To: \"Ada Lovelace\" <ada@example.com>"),
        "{}",
        email.data
    );
    assert!(
        email.data.contains("From: \"CQRS Backend\" <no-reply@localhost>"),
        "{}",
        email.data
    );
    assert!(
        email
            .data
            .contains(&format!("Message-ID: <welcome.{}@localhost>", event.id)),
        "{}",
        email.data
    );
    app.wait_until_handled(1).await;
    let recorded: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM side_effects WHERE event_id = $1 AND effect = 'welcome_email'",
    )
    .bind(event.id)
    .fetch_one(&app.db.pool)
    .await
    .expect("side effects");
    assert_eq!(recorded, 1);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_event_delivered_again_sends_no_second_email() {
    let app = TestApp::spawn().await;
    let event = app.register("Grace", "grace@example.com").await;
    app.wait_for_emails(1).await;
    app.wait_until_handled(1).await;

    app.republish(&event).await;
    app.wait_until_handled(2).await;

    let info = app.consumer_info().await.expect("consumer");
    assert_eq!(info.delivered.stream_sequence, 2, "the copy was delivered");
    assert_eq!(app.smtp.messages().len(), 1);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_competing_workers_send_one_email_per_event() {
    let app = TestApp::spawn_with(2, |_| {}).await;
    let mut events = Vec::new();
    for i in 0..6 {
        events.push(
            app.register(&format!("User {i}"), &format!("user{i}@example.com"))
                .await,
        );
    }
    // Every event arrives twice, so both workers may hold the same event at once.
    for event in &events {
        app.republish(event).await;
    }
    app.wait_until_handled(12).await;

    let mut recipients: Vec<String> = app.smtp.messages().into_iter().flat_map(|m| m.to).collect();
    recipients.sort();
    let expected: Vec<String> = (0..6).map(|i| format!("user{i}@example.com")).collect();
    assert_eq!(recipients, expected);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_that_is_not_an_event_envelope_is_acknowledged_and_skipped() {
    let app = TestApp::spawn().await;
    let subject = app.nats.stream.subject("user.registered");
    app.publish_raw(&subject, async_nats::HeaderMap::new(), b"not json".to_vec())
        .await;
    app.register("Alan", "alan@example.com").await;

    app.wait_until_handled(2).await;
    let emails = app.wait_for_emails(1).await;
    assert_eq!(emails.len(), 1);
    assert!(app.dead_letter_ids().await.is_empty());
    app.stop().await;
}
