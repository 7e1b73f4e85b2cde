//! Shutting down lets the message in flight finish.

use crate::helpers::{TestApp, WAIT};
use futures::future::BoxFuture;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use testkit::eventually;
use tokio::sync::Semaphore;
use workers::mail::{MailError, Mailer, OutgoingMail};

/// A mailer that holds every email until released.
struct GateMailer {
    started: AtomicBool,
    sent: AtomicUsize,
    gate: Semaphore,
}

impl GateMailer {
    fn new() -> Self {
        Self {
            started: AtomicBool::new(false),
            sent: AtomicUsize::new(0),
            gate: Semaphore::new(0),
        }
    }
}

impl Mailer for GateMailer {
    fn send<'a>(&'a self, _: &'a OutgoingMail) -> BoxFuture<'a, Result<(), MailError>> {
        Box::pin(async move {
            self.started.store(true, Ordering::SeqCst);
            let _permit = self
                .gate
                .acquire()
                .await
                .map_err(|_| MailError::transient("closed"))?;
            self.sent.fetch_add(1, Ordering::SeqCst);
            Ok(())
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutting_down_finishes_the_email_in_flight_and_records_it() {
    let mailer = Arc::new(GateMailer::new());
    let mut app = TestApp::spawn_custom(1, |_| {}, Some(mailer.clone())).await;
    let event = app.register("Ada", "ada@example.com").await;
    eventually(WAIT, "the email to be in flight", || async {
        mailer.started.load(Ordering::SeqCst).then_some(())
    })
    .await;

    app.cancel();
    let url = app.url("/health/live");
    eventually(WAIT, "the HTTP server to stop accepting", || async {
        reqwest::get(&url).await.is_err().then_some(())
    })
    .await;
    mailer.gate.add_permits(1);
    app.shutdown().await;

    assert_eq!(mailer.sent.load(Ordering::SeqCst), 1);
    let recorded: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM side_effects WHERE event_id = $1)")
        .bind(event.id)
        .fetch_one(&app.db.pool)
        .await
        .expect("side effects");
    assert!(
        recorded,
        "the finished email was recorded before the process stopped"
    );
    eventually(WAIT, "the message to be acknowledged", || async {
        let info = app.consumer_info().await?;
        (info.ack_floor.stream_sequence == 1 && info.num_ack_pending == 0).then_some(())
    })
    .await;
    app.stop().await;
}
