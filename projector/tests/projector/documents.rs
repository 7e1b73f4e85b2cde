//! The product and order documents in Redis follow their rows: written after each commit
//! of their own events, and (products) after each review of them.

use crate::support::TestEnv;
use readmodels::orders::OrderView;
use readmodels::products::ProductView;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn product_and_order_documents_follow_orders_reviews_and_cancellations() {
    let env = TestEnv::new().await;
    let projector = env.start().await;
    let (mug, _) = env.create_product("Mug", 1250, 10).await;
    let (order, _) = env.place_order(&[(mug, 2)]).await;
    env.publish_outbox().await;

    let placed = env
        .wait_for_cached::<OrderView>(order, "the placed order's document", |_| true)
        .await;
    assert_eq!(
        (placed.status.as_str(), placed.total_cents, placed.version),
        ("placed", 2500, 1)
    );
    assert_eq!(
        placed
            .lines
            .iter()
            .map(|l| (l.product_id, l.quantity))
            .collect::<Vec<_>>(),
        [(mug, 2)]
    );
    let reserved = env
        .wait_for_cached::<ProductView>(mug, "the product's document after the order", |p| p.version == 2)
        .await;
    assert_eq!((reserved.stock, reserved.review_count), (8, 0));

    // Reviews change the product's statistics, not its stream: its document follows.
    env.write_review(mug, 4).await;
    env.write_review(mug, 5).await;
    env.publish_outbox().await;
    let reviewed = env
        .wait_for_cached::<ProductView>(mug, "the product's document after two reviews", |p| {
            p.reviews_version == 2
        })
        .await;
    assert_eq!(
        (reviewed.version, reviewed.review_count, reviewed.average_rating),
        (2, 2, Some(4.5))
    );
    assert_eq!(reviewed.etag(), "2.2");

    env.cancel_order(order).await;
    env.publish_outbox().await;
    let cancelled = env
        .wait_for_cached::<OrderView>(order, "the cancelled order's document", |o| o.version == 2)
        .await;
    assert_eq!(cancelled.status, "cancelled");
    assert!(cancelled.cancelled_at.is_some());
    let released = env
        .wait_for_cached::<ProductView>(mug, "the product's document after the cancellation", |p| {
            p.version == 3
        })
        .await;
    assert_eq!(
        (released.stock, released.review_count, released.reviews_version),
        (10, 2, 2),
        "the product's own events keep its review statistics"
    );
    projector.stop().await;
    env.cleanup().await;
}
