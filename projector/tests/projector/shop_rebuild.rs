//! `projector rebuild` over the shop: the same products, orders, lines, `units_sold` and
//! best-seller set as the live projection, straight from the store.

use crate::shop_scripts::random_shop;
use crate::support::{TestEnv, WAIT};
use projector::{Projector, RebuildLimits};
use readmodels::cache::CacheLookup;
use readmodels::orders::OrderView;
use readmodels::products::ProductView;
use testkit::eventually;
use uuid::Uuid;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebuilding_gives_the_same_products_orders_and_top_set_as_live_projection() {
    let env = TestEnv::new().await;
    let script = random_shop(&env, 8, 80).await;
    let projector = env.start().await;
    env.publish_outbox().await;
    let (products, orders) = eventually(WAIT, "the live projection to catch up", || async {
        let products = env.product_rows().await;
        let orders = env.order_rows().await;
        script.matches(&products, &orders).then_some((products, orders))
    })
    .await;
    env.wait_until_all_idle().await;
    let top = eventually(WAIT, "the live top set", || async {
        let top = env.top().await;
        (top == script.top()).then_some(top)
    })
    .await;
    projector.stop().await;

    let mut redis = env.redis.connection().await;
    let key = Projector::top_sellers(&env.settings()).key().to_owned();
    redis::cmd("ZADD")
        .arg(&key)
        .arg(99)
        .arg(Uuid::now_v7().to_string())
        .query_async::<()>(&mut redis)
        .await
        .expect("stray member");
    sqlx::query("UPDATE products_view SET units_sold = units_sold + 1000")
        .execute(&env.db.pool)
        .await
        .expect("corrupt units_sold");
    // Small batches and few rows in memory, so streams span several batches and flushes.
    let limits = RebuildLimits {
        batch_size: 16,
        users_in_memory: 5,
    };
    let report = projector::rebuild(&env.db.pool, &env.documents(), &redis, limits)
        .await
        .expect("rebuild");

    assert_eq!(env.product_rows().await, products);
    assert_eq!(env.order_rows().await, orders);
    assert_eq!(env.top().await, top, "stray member gone, scores from Postgres");
    assert_eq!((report.documents.products, report.documents.orders), (8, 80));
    assert_eq!(
        (report.products, report.orders, report.top_sellers),
        (8, 80, top.len() as u64)
    );
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&env.db.pool)
        .await
        .expect("count");
    assert_eq!(report.events, stored as u64);
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebuild_without_sales_leaves_no_top_set() {
    let env = TestEnv::new().await;
    let (mug, _) = env.create_product("Mug", 1250, 10).await;
    let (order, _) = env.place_order(&[(mug, 2)]).await;
    env.cancel_order(order).await;
    let mut redis = env.redis.connection().await;
    let key = Projector::top_sellers(&env.settings()).key().to_owned();
    redis::cmd("ZADD")
        .arg(&key)
        .arg(2)
        .arg(mug.to_string())
        .query_async::<()>(&mut redis)
        .await
        .expect("stale score");

    let report = projector::rebuild(&env.db.pool, &env.documents(), &redis, RebuildLimits::default())
        .await
        .expect("rebuild");

    assert_eq!((report.products, report.orders, report.top_sellers), (1, 1, 0));
    assert_eq!((report.documents.products, report.documents.orders), (1, 1));
    let CacheLookup::Hit(document) = env.cached::<ProductView>(mug).await else {
        panic!("the rebuild wrote the product's document");
    };
    assert_eq!((document.stock, document.version), (10, 3));
    let CacheLookup::Hit(document) = env.cached::<OrderView>(order).await else {
        panic!("the rebuild wrote the order's document");
    };
    assert_eq!((document.status.as_str(), document.version), ("cancelled", 2));
    let row = env.product_row(mug).await.expect("mug");
    assert_eq!((row.units_sold, row.stock, row.version), (0, 10, 3));
    assert_eq!(env.order_row(order).await.expect("order").status, "cancelled");
    assert!(env.top().await.is_empty());
    env.cleanup().await;
}
