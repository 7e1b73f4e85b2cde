//! Unit tests of the bounded publish window, with an in-memory sender.

use super::*;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// Counts sends and acknowledgements outstanding, failing the ack it is told to.
#[derive(Default)]
struct Server {
    sent: AtomicUsize,
    outstanding: AtomicUsize,
    most_outstanding: AtomicUsize,
}

impl Server {
    fn send(
        self: &Arc<Self>,
        item: usize,
        fail_ack: Option<usize>,
    ) -> impl Future<Output = Result<impl Future<Output = Result<(), RelayError>>, RelayError>> {
        let server = self.clone();
        async move {
            server.sent.fetch_add(1, Ordering::SeqCst);
            let now = server.outstanding.fetch_add(1, Ordering::SeqCst) + 1;
            server.most_outstanding.fetch_max(now, Ordering::SeqCst);
            Ok(async move {
                tokio::time::sleep(Duration::from_millis((item % 3) as u64)).await;
                server.outstanding.fetch_sub(1, Ordering::SeqCst);
                match fail_ack {
                    Some(failing) if failing == item => Err(RelayError::Publish("no ack".into())),
                    _ => Ok(()),
                }
            })
        }
    }
}

#[tokio::test]
async fn acknowledgements_are_awaited_together_but_never_more_than_the_window() {
    let server = Arc::new(Server::default());
    let published = publish_all(0..200, 8, |i| *i, |i| server.send(i, None)).await;
    assert!(published.error.is_none());
    let mut acked = published.acked;
    acked.sort_unstable();
    assert_eq!(acked, (0..200).collect::<Vec<_>>());
    let most = server.most_outstanding.load(Ordering::SeqCst);
    assert_eq!(
        most, 8,
        "sends do not wait for each ack, and stay within the window"
    );
}

#[tokio::test]
async fn a_window_wider_than_the_batch_sends_everything_before_awaiting_any_ack() {
    let server = Arc::new(Server::default());
    let published = publish_all(0..10, 256, |i| *i, |i| server.send(i, None)).await;
    assert_eq!(published.acked.len(), 10);
    assert_eq!(server.most_outstanding.load(Ordering::SeqCst), 10);
}

#[tokio::test]
async fn a_failed_acknowledgement_stops_sending_and_keeps_its_item_unacknowledged() {
    let server = Arc::new(Server::default());
    let published = publish_all(0..100, 4, |i| *i, |i| server.send(i, Some(5))).await;
    assert!(matches!(published.error, Some(RelayError::Publish(_))));
    assert!(!published.acked.contains(&5));
    for earlier in 0..5 {
        assert!(published.acked.contains(&earlier), "{earlier} was acknowledged");
    }
    let sent = server.sent.load(Ordering::SeqCst);
    assert!(sent < 100, "sending stopped after the failure ({sent} sent)");
    assert_eq!(
        published.acked.len(),
        sent - 1,
        "everything sent but the failure is acknowledged"
    );
}

#[tokio::test]
async fn a_failed_send_sends_nothing_after_it() {
    let sent = AtomicUsize::new(0);
    let published = publish_all(
        0..10,
        4,
        |i| *i,
        |i| {
            sent.fetch_add(1, Ordering::SeqCst);
            async move {
                match i {
                    3 => Err(RelayError::Publish("not connected".into())),
                    _ => Ok(async { Ok(()) }),
                }
            }
        },
    )
    .await;
    assert!(published.error.is_some());
    let mut acked = published.acked;
    acked.sort_unstable();
    assert_eq!(acked, [0, 1, 2]);
    assert_eq!(sent.load(Ordering::SeqCst), 4);
}
