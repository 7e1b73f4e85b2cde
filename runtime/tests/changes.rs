//! The change feed against a real Postgres: commits are told, rollbacks are not, and a
//! killed listening connection makes every cache read through until it is back.

use runtime::{ChangeFeed, StampedCache};
use std::time::Duration;
use testkit::{TestDb, eventually};

const WAIT: Duration = Duration::from_secs(10);

async fn live_feed(db: &TestDb) -> ChangeFeed {
    let feed = ChangeFeed::listen(&db.pool);
    eventually(WAIT, "the feed to go live", || async { feed.status().ok() }).await;
    feed
}

async fn insert_user(pool: &sqlx::PgPool) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO users_view (id, email, name, role, version, created_at, updated_at)
         VALUES ($1, 'a@example.com', 'A', 'user', 1, now(), now())",
    )
    .bind(uuid::Uuid::now_v7())
    .execute(pool)
    .await
    .map(|_| ())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_committed_change_is_told_and_a_rolled_back_one_is_not() {
    let db = TestDb::new().await;
    let feed = live_feed(&db).await;
    let before = feed.stamp(&["users_view"]).expect("live");
    let untouched = feed.stamp(&["reviews_view"]).expect("live");

    let mut tx = db.pool.begin().await.expect("begin");
    sqlx::query("UPDATE users_view SET name = 'x'")
        .execute(&mut *tx)
        .await
        .expect("update");
    tx.rollback().await.expect("rollback");
    // Two heartbeats: anything the rollback had sent would have arrived before them.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        feed.stamp(&["users_view"]),
        Some(before),
        "a rollback tells nothing"
    );

    insert_user(&db.pool).await.expect("insert");
    eventually(WAIT, "the insert to be told", || async {
        (feed.stamp(&["users_view"]) != Some(before)).then_some(())
    })
    .await;
    assert!(feed.is_live());
    assert_eq!(
        feed.stamp(&["reviews_view"]),
        Some(untouched),
        "other tables keep their stamp"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cache_entry_is_read_again_after_its_table_changed_in_postgres() {
    let db = TestDb::new().await;
    let feed = live_feed(&db).await;
    let cache: StampedCache<&str, i64> = StampedCache::new(feed.clone(), 16, Duration::from_secs(60));
    let count = || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM users_view")
            .fetch_one(&db.pool)
            .await
    };
    assert_eq!(
        cache
            .get_or_load("users", &["users_view"], count)
            .await
            .expect("read"),
        0
    );
    insert_user(&db.pool).await.expect("insert");
    eventually(WAIT, "the cache to read the new row", || async {
        let seen = cache.get_or_load("users", &["users_view"], count).await.ok()?;
        (seen == 1).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_listener_is_noticed_and_replaced() {
    let db = TestDb::new().await;
    let feed = live_feed(&db).await;
    let before = feed.stamp(&["users_view"]).expect("live");
    let killed: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE datname = current_database() AND query ILIKE 'LISTEN%') AS t",
    )
    .fetch_one(&db.pool)
    .await
    .expect("terminate the listener");
    assert_eq!(killed, 1, "one listening connection");
    eventually(WAIT, "the feed to come back", || async {
        let now = feed.stamp(&["users_view"])?;
        (now != before).then_some(())
    })
    .await;
    // Back and telling again.
    let back = feed.stamp(&["users_view"]).expect("live");
    insert_user(&db.pool).await.expect("insert");
    eventually(WAIT, "the insert to be told", || async {
        (feed.stamp(&["users_view"]) != Some(back)).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn exactly_the_told_tables_carry_the_trigger() {
    let db = TestDb::new().await;
    let mut triggered: Vec<String> = sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
         WHERE t.tgfoid = 'notify_row_changes'::regproc",
    )
    .fetch_all(&db.pool)
    .await
    .expect("read the triggers");
    triggered.sort();
    let mut told: Vec<String> = runtime::changes::TABLES.iter().map(|t| (*t).to_owned()).collect();
    told.sort();
    assert_eq!(triggered, told);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_table_whose_trigger_is_dropped_is_no_longer_cached() {
    let db = TestDb::new().await;
    let feed = live_feed(&db).await;
    assert!(feed.stamp(&["users_view"]).is_some());
    sqlx::query("DROP TRIGGER users_view_changes ON users_view")
        .execute(&db.pool)
        .await
        .expect("drop the trigger");
    eventually(WAIT, "the table to be untold", || async {
        feed.stamp(&["users_view"]).is_none().then_some(())
    })
    .await;
    assert!(feed.stamp(&["reviews_view"]).is_some(), "the others stay told");
    assert!(feed.status().is_err_and(|why| why.contains("users_view")));
}
