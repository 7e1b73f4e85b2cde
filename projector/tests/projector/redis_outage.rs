//! A Redis that hangs or restarts while the projector runs: Postgres read models keep
//! moving, and every Redis write that was missed (user, product and order documents,
//! best-seller scores) is made once Redis answers again.

use crate::support::{TestEnv, WAIT, renamed};
use readmodels::orders::OrderView;
use readmodels::products::ProductView;
use testkit::{RedisServer, eventually};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_missed_while_redis_hung_are_made_when_it_answers_again() {
    let mut env = TestEnv::new().await;
    let redis = RedisServer::start();
    env.redis.url = redis.url.clone();
    let projector = env.start().await;
    let (ada, _) = env.register("Ada").await;
    env.wait_for_document(ada, 1).await;
    let (mug, _) = env.create_product("Mug", 1250, 10).await;
    env.place_order(&[(mug, 2)]).await;
    env.publish_outbox().await;
    let before = vec![(mug.to_string(), 2)];
    eventually(WAIT, "the ranking", || async {
        (env.top().await == before).then_some(())
    })
    .await;

    // Frozen: the old document and the old score stay in Redis, unreachable.
    redis.pause();
    env.append(ada, 1, &[renamed("Ada Lovelace")]).await;
    let (order, _) = env.place_order(&[(mug, 3)]).await;
    env.write_review(mug, 4).await;
    env.publish_outbox().await;
    let row = env.wait_for_version(ada, 2).await;
    assert_eq!(
        row.name.as_deref(),
        Some("Ada Lovelace"),
        "Postgres goes on without Redis"
    );
    eventually(WAIT, "units sold in Postgres", || async {
        env.product_row(mug).await.filter(|p| p.units_sold == 5)
    })
    .await;

    redis.resume();
    let document = env.wait_for_document(ada, 2).await;
    assert_eq!(document["user"]["name"], "Ada Lovelace");
    let order = env
        .wait_for_cached::<OrderView>(order, "the order's document", |_| true)
        .await;
    assert_eq!((order.version, order.lines.len()), (1, 1));
    let product = env
        .wait_for_cached::<ProductView>(mug, "the product's document healed", |p| {
            p.version == 3 && p.review_count == 1
        })
        .await;
    assert_eq!(product.stock, 5);
    let after = vec![(mug.to_string(), 5)];
    eventually(WAIT, "the ranking healed", || async {
        (env.top().await == after).then_some(())
    })
    .await;
    projector.stop().await;
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_restarted_empty_gets_its_best_sellers_back_from_postgres() {
    let mut env = TestEnv::new().await;
    let mut redis = RedisServer::start();
    env.redis.url = redis.url.clone();
    let projector = env.start().await;
    let (mug, _) = env.create_product("Mug", 1250, 10).await;
    let (tea, _) = env.create_product("Tea", 499, 100).await;
    env.place_order(&[(tea, 4), (mug, 3)]).await;
    env.publish_outbox().await;
    let expected = vec![(tea.to_string(), 4), (mug.to_string(), 3)];
    eventually(WAIT, "the ranking", || async {
        (env.top().await == expected).then_some(())
    })
    .await;

    redis.restart();
    eventually(WAIT, "the ranking re-seeded", || async {
        (env.top().await == expected).then_some(())
    })
    .await;
    projector.stop().await;
    env.cleanup().await;
}
