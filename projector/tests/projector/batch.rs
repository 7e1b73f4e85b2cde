//! Batches: many deliveries in one transaction still apply each event exactly once and in
//! per-stream order, whatever the batch holds (redeliveries, several streams, events out of
//! order, poison), both through the model directly and through the live consumer.

use crate::support::{TestEnv, WAIT, email, registered, renamed, role_changed};
use domain::user::{Role, UserEvent};
use eventstore::EventEnvelope;
use projector::ProjectionError;
use projector::model::{Outcome, project_batch};
use projector::orders::Orders;
use projector::products::Products;
use projector::users::Users;
use testkit::eventually;
use uuid::Uuid;

fn outcomes<R>(results: &[Result<projector::model::Projected<R>, ProjectionError>]) -> Vec<Option<Outcome>> {
    results
        .iter()
        .map(|result| result.as_ref().ok().map(|projected| projected.outcome.clone()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_batch_applies_interleaved_streams_in_stream_order_and_skips_redeliveries() {
    let env = TestEnv::new().await;
    let (ada, bob) = (Uuid::now_v7(), Uuid::now_v7());
    let ada_events = env
        .append(
            ada,
            0,
            &[
                registered(&email(), "Ada", Role::User),
                renamed("Ada L."),
                role_changed(Role::Admin, Role::User),
            ],
        )
        .await;
    let bob_events = env
        .append(
            bob,
            0,
            &[registered(&email(), "Bob", Role::User), renamed("Bob B.")],
        )
        .await;
    // Ada's last event first (its gap comes from the store), then her earlier ones and a
    // redelivery of Bob's registration, interleaved with Bob's stream.
    let batch: Vec<EventEnvelope> = vec![
        ada_events[2].clone(),
        bob_events[0].clone(),
        ada_events[0].clone(),
        bob_events[0].clone(),
        bob_events[1].clone(),
        ada_events[1].clone(),
        bob_events[1].clone(),
    ];

    let results = project_batch::<Users>(&env.db.pool, &batch)
        .await
        .expect("batch committed");
    assert_eq!(
        outcomes(&results),
        [
            Some(Outcome::Applied { gap_filled: 2 }),
            Some(Outcome::Applied { gap_filled: 0 }),
            Some(Outcome::Duplicate),
            Some(Outcome::Duplicate),
            Some(Outcome::Applied { gap_filled: 0 }),
            Some(Outcome::Duplicate),
            Some(Outcome::Duplicate),
        ]
    );
    let ada_row = env.row(ada).await.expect("ada's row");
    assert_eq!(
        (ada_row.name.as_deref(), ada_row.role.as_str(), ada_row.version),
        (Some("Ada L."), "admin", 3)
    );
    assert_eq!(ada_row.created_at, ada_events[0].occurred_at);
    let bob_row = env.row(bob).await.expect("bob's row");
    assert_eq!((bob_row.name.as_deref(), bob_row.version), (Some("Bob B."), 2));
    assert!(results[1].as_ref().is_ok_and(|projected| projected.created));

    // The whole batch delivered again changes nothing.
    let again = project_batch::<Users>(&env.db.pool, &batch)
        .await
        .expect("batch committed");
    assert!(outcomes(&again).iter().all(|o| *o == Some(Outcome::Duplicate)));
    assert_eq!(env.row(ada).await, Some(ada_row));
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_redelivered_inside_its_batch_counts_its_units_once() {
    let env = TestEnv::new().await;
    let (mug, created) = env.create_product("Mug", 1250, 100).await;
    let (first, placed_first) = env.place_order(&[(mug, 3)]).await;
    let (second, placed_second) = env.place_order(&[(mug, 5)]).await;
    let cancelled = env.cancel_order(second).await;
    let order_event = |events: &[EventEnvelope]| {
        events
            .iter()
            .find(|event| event.stream_type == "order")
            .cloned()
            .expect("an order event")
    };
    project_batch::<Products>(&env.db.pool, &[created])
        .await
        .expect("product committed");

    let batch = vec![
        order_event(&placed_first),
        order_event(&placed_second),
        order_event(&placed_first),
        order_event(&cancelled),
        order_event(&placed_second),
        order_event(&cancelled),
    ];
    let results = project_batch::<Orders>(&env.db.pool, &batch)
        .await
        .expect("batch committed");
    assert_eq!(
        outcomes(&results),
        [
            Some(Outcome::Applied { gap_filled: 0 }),
            Some(Outcome::Applied { gap_filled: 0 }),
            Some(Outcome::Duplicate),
            Some(Outcome::Applied { gap_filled: 0 }),
            Some(Outcome::Duplicate),
            Some(Outcome::Duplicate),
        ]
    );
    let product = env.product_row(mug).await.expect("product row");
    assert_eq!(
        product.units_sold, 3,
        "the cancelled order counts nothing, the placed one once"
    );
    let orders = env.order_rows().await;
    let statuses: Vec<(Uuid, &str)> = orders.iter().map(|o| (o.id, o.status.as_str())).collect();
    let mut expected = vec![(first, "placed"), (second, "cancelled")];
    expected.sort();
    assert_eq!(statuses, expected);
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_delivery_fails_alone_and_the_rest_of_its_batch_commits() {
    let env = TestEnv::new().await;
    let id = Uuid::now_v7();
    let events = env
        .append(
            id,
            0,
            &[registered(&email(), "Ada", Role::User), renamed("Ada L.")],
        )
        .await;
    let mut stranger = events[0].clone();
    stranger.id = Uuid::now_v7();
    stranger.stream_id = Uuid::now_v7();
    stranger.stream_version = 2;

    let batch = vec![events[0].clone(), stranger.clone(), events[1].clone()];
    let results = project_batch::<Users>(&env.db.pool, &batch)
        .await
        .expect("batch committed");
    assert!(matches!(&results[1], Err(ProjectionError::NotInStore(event)) if *event == stranger.id));
    assert_eq!(
        outcomes(&results),
        [
            Some(Outcome::Applied { gap_filled: 0 }),
            None,
            Some(Outcome::Applied { gap_filled: 0 })
        ]
    );
    assert_eq!(env.row(id).await.map(|row| row.version), Some(2));
    assert_eq!(env.row(stranger.stream_id).await, None);
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_whose_transaction_fails_writes_nothing() {
    let env = TestEnv::new().await;
    let (mug, created) = env.create_product("Mug", 1250, 100).await;
    let (order, placed) = env.place_order(&[(mug, 2)]).await;
    project_batch::<Products>(&env.db.pool, &[created])
        .await
        .expect("product committed");
    let placed = placed
        .into_iter()
        .find(|event| event.stream_id == order)
        .expect("order placed");
    // The lines table is away: the order row would be inserted, then its lines fail.
    sqlx::query("ALTER TABLE order_lines_view RENAME TO order_lines_away")
        .execute(&env.db.pool)
        .await
        .expect("hide table");
    let failed = project_batch::<Orders>(&env.db.pool, std::slice::from_ref(&placed)).await;
    sqlx::query("ALTER TABLE order_lines_away RENAME TO order_lines_view")
        .execute(&env.db.pool)
        .await
        .expect("restore table");
    assert!(failed.is_err());
    assert_eq!(env.order_row(order).await, None);
    assert_eq!(env.product_row(mug).await.map(|p| p.units_sold), Some(0));

    let results = project_batch::<Orders>(&env.db.pool, &[placed])
        .await
        .expect("committed");
    assert_eq!(outcomes(&results), [Some(Outcome::Applied { gap_filled: 0 })]);
    assert_eq!(env.product_row(mug).await.map(|p| p.units_sold), Some(2));
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_with_republished_events_is_projected_once_by_the_live_consumer() {
    let env = TestEnv::new().await;
    let mut ids = Vec::new();
    for i in 0..200 {
        let id = Uuid::now_v7();
        env.append(
            id,
            0,
            &[
                registered(&email(), &format!("User {i}"), Role::User),
                renamed(&format!("User {i} v2")),
                UserEvent::PasswordChanged {},
            ],
        )
        .await;
        ids.push(id);
    }
    let (mug, _) = env.create_product("Mug", 1250, 1000).await;
    let mut placed = Vec::new();
    for _ in 0..20 {
        placed.extend(env.place_order(&[(mug, 2)]).await.1);
    }
    env.publish_outbox().await;
    // Every order placement and some user events again, under fresh message ids, so that
    // JetStream's de-duplication lets them through into the same backlog.
    for event in placed.iter().filter(|event| event.stream_type == "order") {
        env.republish(event).await;
    }
    for id in ids.iter().take(50) {
        for event in env.store.load(*id).await.expect("load") {
            env.republish(&event).await;
        }
    }

    let projector = env.start().await;
    for id in &ids {
        env.wait_for_version(*id, 3).await;
    }
    env.wait_until_all_idle().await;
    let product = eventually(WAIT, "the mug's units sold", || async {
        env.product_row(mug).await.filter(|row| row.units_sold > 0)
    })
    .await;
    assert_eq!(product.units_sold, 40, "each of 20 orders of 2 counted once");
    let rows = env.rows().await;
    assert_eq!(rows.len(), ids.len());
    assert!(
        rows.iter()
            .all(|row| row.version == 3 && row.name.as_deref().is_some_and(|n| n.ends_with("v2")))
    );
    assert_eq!(env.score(mug).await, Some(40));
    projector.stop().await;
    env.cleanup().await;
}
