//! The live projection of product and order events: `products_view`, `orders_view`,
//! `order_lines_view`, `units_sold` and the Redis best-seller set.

use crate::shop_scripts::random_shop;
use crate::support::{TestEnv, WAIT};
use domain::money::Cents;
use domain::product::{ProductCommand, ProductName};
use testkit::eventually;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_product_lives_through_updates_restocks_and_retirement_in_products_view() {
    let env = TestEnv::new().await;
    let projector = env.start().await;
    let (id, created) = env.create_product("Mug", 1250, 10).await;
    env.product(
        id,
        ProductCommand::Update {
            name: Some(ProductName::parse("Big mug").expect("name")),
            description: None,
            price_cents: Some(Cents::new(1500).expect("price")),
        },
    )
    .await;
    env.product(id, ProductCommand::Restock { quantity: 5 }).await;
    let retired = env.product(id, ProductCommand::Retire).await;
    env.publish_outbox().await;

    let row = env.wait_for_product(id, 4).await;
    assert_eq!(row.sku, created.data["sku"].as_str().expect("sku"));
    assert_eq!(
        (row.name.as_str(), row.description.as_str()),
        ("Big mug", "A test product")
    );
    assert_eq!((row.price_cents, row.currency.as_str()), (1500, "EUR"));
    assert_eq!((row.stock, row.retired, row.units_sold), (15, true, 0));
    assert_eq!(row.created_at, created.occurred_at);
    assert_eq!(row.updated_at, retired[0].occurred_at);
    projector.stop().await;
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn placing_an_order_fills_orders_lines_and_units_sold_in_postgres_and_redis() {
    let env = TestEnv::new().await;
    let projector = env.start().await;
    let (mug, _) = env.create_product("Mug", 1250, 10).await;
    let (tea, _) = env.create_product("Tea", 499, 100).await;
    let (order, stored) = env.place_order(&[(tea, 4), (mug, 3)]).await;
    env.publish_outbox().await;

    let row = env.wait_for_order(order, 1).await;
    assert_eq!((row.status.as_str(), row.cancelled_at), ("placed", None));
    assert_eq!(
        (row.total_cents, row.currency.as_str(), row.line_count),
        (4 * 499 + 3 * 1250, "EUR", 2)
    );
    assert_eq!(
        row.user_id.to_string(),
        stored[0].data["userId"].as_str().expect("user")
    );
    assert_eq!(
        (row.placed_at, row.updated_at),
        (stored[0].occurred_at, stored[0].occurred_at)
    );
    let lines: Vec<_> = row
        .lines
        .iter()
        .map(|l| {
            (
                l.line_no,
                l.product_id,
                l.name.as_str(),
                l.quantity,
                l.unit_price_cents,
                l.line_total_cents,
            )
        })
        .collect();
    assert_eq!(
        lines,
        vec![(0, tea, "Tea", 4, 499, 1996), (1, mug, "Mug", 3, 1250, 3750)]
    );

    let mug_row = env.wait_for_product(mug, 2).await;
    assert_eq!((mug_row.units_sold, mug_row.stock), (3, 7));
    let tea_row = env.wait_for_product(tea, 2).await;
    assert_eq!((tea_row.units_sold, tea_row.stock), (4, 96));
    eventually(WAIT, "best-seller scores", || async {
        (env.score(mug).await == Some(3) && env.score(tea).await == Some(4)).then_some(())
    })
    .await;
    assert_eq!(env.top().await, vec![(tea.to_string(), 4), (mug.to_string(), 3)]);
    projector.stop().await;
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_an_order_subtracts_its_units_and_removes_a_product_without_sales_from_the_top_set() {
    let env = TestEnv::new().await;
    let projector = env.start().await;
    let (mug, _) = env.create_product("Mug", 1250, 10).await;
    let (tea, _) = env.create_product("Tea", 499, 100).await;
    let (first, _) = env.place_order(&[(mug, 2), (tea, 1)]).await;
    let (second, _) = env.place_order(&[(mug, 3)]).await;
    env.publish_outbox().await;
    env.wait_for_order(second, 1).await;
    eventually(WAIT, "both products scored", || async {
        (env.score(mug).await == Some(5) && env.score(tea).await == Some(1)).then_some(())
    })
    .await;

    let cancelled = env.cancel_order(first).await;
    env.publish_outbox().await;
    let row = env.wait_for_order(first, 2).await;
    assert_eq!(row.status, "cancelled");
    assert_eq!(
        row.cancelled_at,
        Some(cancelled.last().expect("cancel").occurred_at)
    );
    assert_eq!(row.lines.len(), 2, "the lines stay as ordered");
    eventually(WAIT, "units taken back", || async {
        let mug_row = env.product_row(mug).await?;
        let tea_row = env.product_row(tea).await?;
        (mug_row.units_sold == 3 && tea_row.units_sold == 0 && mug_row.stock == 7 && tea_row.stock == 100)
            .then_some(())
    })
    .await;
    eventually(WAIT, "the top set to follow", || async {
        (env.top().await == vec![(mug.to_string(), 3)]).then_some(())
    })
    .await;
    assert_eq!(env.score(tea).await, None);
    projector.stop().await;
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn order_events_delivered_again_or_out_of_order_count_their_units_once() {
    let env = TestEnv::new().await;
    let projector = env.start().await;
    let (mug, _) = env.create_product("Mug", 1250, 50).await;
    env.publish_outbox().await;
    env.wait_for_product(mug, 1).await;
    // The row exists: the order events adjust it.
    let (kept, kept_events) = env.place_order(&[(mug, 2)]).await;
    let (dropped, dropped_events) = env.place_order(&[(mug, 7)]).await;
    env.publish_outbox().await;
    env.wait_for_order(dropped, 1).await;
    let cancel_events = env.cancel_order(dropped).await;
    env.publish_outbox().await;
    env.wait_for_order(dropped, 2).await;
    env.wait_until_all_idle().await;
    let before = (env.product_rows().await, env.order_rows().await);

    // Copies under fresh message ids beat JetStream's de-duplication.
    env.republish(&kept_events[0]).await;
    env.republish(&dropped_events[0]).await;
    env.republish(cancel_events.last().expect("cancel")).await;
    env.republish(&kept_events[0]).await;
    env.wait_until_all_idle().await;

    assert_eq!((env.product_rows().await, env.order_rows().await), before);
    let mug_row = env.product_row(mug).await.expect("mug");
    assert_eq!(mug_row.units_sold, 2);
    assert_eq!(env.order_row(kept).await.expect("kept").status, "placed");
    assert_eq!(env.score(mug).await, Some(2));

    // A cancellation delivered before its placement: the placement is filled in first.
    let (late, late_events) = env.place_order(&[(mug, 4)]).await;
    let late_cancel = env.cancel_order(late).await;
    env.republish(late_cancel.last().expect("cancel")).await;
    let row = env.wait_for_order(late, 2).await;
    assert_eq!((row.status.as_str(), row.lines.len()), ("cancelled", 1));
    env.republish(&late_events[0]).await;
    env.publish_outbox().await;
    env.wait_until_all_idle().await;
    assert_eq!(env.product_row(mug).await.expect("mug").units_sold, 2);
    assert_eq!(env.score(mug).await, Some(2));
    projector.stop().await;
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_projected_before_their_product_are_counted_when_the_product_row_is_created() {
    let env = TestEnv::new().await;
    let (mug, created) = env.create_product("Mug", 1250, 50).await;
    let (first, first_events) = env.place_order(&[(mug, 2)]).await;
    let (second, _) = env.place_order(&[(mug, 5)]).await;
    let cancel_events = env.cancel_order(second).await;
    let (_, third_events) = env.place_order(&[(mug, 1)]).await;
    let projector = env.start().await;

    // Only the order events reach the projector at first (the relay never ran).
    env.republish(&first_events[0]).await;
    env.republish(cancel_events.last().expect("cancel")).await;
    env.wait_for_order(first, 1).await;
    env.wait_for_order(second, 2).await;
    assert_eq!(env.product_row(mug).await, None, "no product row yet");
    assert_eq!(env.score(mug).await, None);

    env.republish(&created).await;
    let row = env.wait_for_product(mug, 1).await;
    assert_eq!(
        row.units_sold, 2,
        "the placed order counted, the cancelled one not"
    );
    eventually(WAIT, "the score of the new row", || async {
        (env.score(mug).await == Some(2)).then_some(())
    })
    .await;

    // Then everything, the republished events again among it.
    env.republish(&third_events[0]).await;
    env.publish_outbox().await;
    env.wait_until_all_idle().await;
    let row = env.product_row(mug).await.expect("mug");
    assert_eq!((row.units_sold, row.stock, row.version), (3, 47, 5));
    assert_eq!(env.score(mug).await, Some(3));
    projector.stop().await;
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_count_units_sold_exactly_once_over_many_orders() {
    let env = TestEnv::new().await;
    let script = random_shop(&env, 6, 60).await;
    let first = env.start().await;
    let second = env.start().await;
    env.publish_outbox().await;

    eventually(WAIT, "every product and order projected", || async {
        script
            .matches(&env.product_rows().await, &env.order_rows().await)
            .then_some(())
    })
    .await;
    env.wait_until_all_idle().await;
    eventually(WAIT, "the top set to match", || async {
        (env.top().await == script.top()).then_some(())
    })
    .await;
    first.stop().await;
    second.stop().await;
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn best_sellers_lost_in_redis_are_re_seeded_from_postgres_by_themselves() {
    let env = TestEnv::new().await;
    let projector = env.start().await;
    let (mug, _) = env.create_product("Mug", 1250, 10).await;
    let (tea, _) = env.create_product("Tea", 499, 100).await;
    env.place_order(&[(tea, 4), (mug, 3)]).await;
    env.place_order(&[(tea, 2)]).await;
    env.publish_outbox().await;
    let expected = vec![(tea.to_string(), 6), (mug.to_string(), 3)];
    eventually(WAIT, "the ranking", || async {
        (env.top().await == expected).then_some(())
    })
    .await;

    // Redis restarted empty (only this test's keys: the server is shared).
    let top = projector::Projector::top_sellers(&env.settings());
    let mut conn = env.redis.connection().await;
    let _: () = redis::cmd("DEL")
        .arg(top.key())
        .arg(top.seeded_key())
        .query_async(&mut conn)
        .await
        .expect("DEL");

    // A late score write may refill the set before the healer marks it complete again:
    // wait for both.
    let seeded = eventually(WAIT, "the ranking re-seeded and marked complete", || async {
        let seeded: bool = redis::cmd("EXISTS")
            .arg(top.seeded_key())
            .query_async(&mut env.redis.connection().await)
            .await
            .expect("EXISTS");
        (seeded && env.top().await == expected).then_some(seeded)
    })
    .await;
    assert!(seeded, "the set is marked complete again");
    assert_eq!(env.top().await, expected);
    projector.stop().await;
    env.cleanup().await;
}
