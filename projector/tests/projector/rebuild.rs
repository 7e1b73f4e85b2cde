//! `projector rebuild`: the same table as the live projection, straight from the store.

use crate::scripts::{all_match, append_all, random_script};
use crate::support::{TestEnv, WAIT, email, registered, renamed};
use domain::user::Role;
use projector::RebuildLimits;
use readmodels::users::CacheLookup;
use testkit::eventually;
use uuid::Uuid;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebuilding_from_the_event_store_produces_the_same_table_as_live_projection() {
    let env = TestEnv::new().await;
    let scripts: Vec<_> = (0..120).map(|i| random_script(i, 5)).collect();
    let total = append_all(&env, &scripts).await;
    env.publish_outbox().await;
    let projector = env.start().await;
    let live = eventually(WAIT, "the live projection to catch up", || async {
        let rows = env.rows().await;
        all_match(&scripts, &rows).then_some(rows)
    })
    .await;
    env.wait_until_idle().await;
    projector.stop().await;

    let mut redis = env.redis.connection().await;
    let stray = env.cache().key(Uuid::now_v7());
    redis::cmd("SET")
        .arg(&stray)
        .arg(r#"{"version": 9, "deleted": true}"#)
        .query_async::<()>(&mut redis)
        .await
        .expect("stray key");
    // Small batches and few users in memory, so users span several batches and flushes.
    let limits = RebuildLimits {
        batch_size: 64,
        users_in_memory: 50,
    };
    let report = projector::rebuild(&env.db.pool, &env.documents(), &redis, limits)
        .await
        .expect("rebuild");

    assert_eq!(env.rows().await, live);
    assert_eq!(report.events, total as u64);
    assert_eq!(report.rows, scripts.len() as u64);
    assert!(
        report.cleared_documents > scripts.len() as u64,
        "old documents and the stray one"
    );
    let exists: bool = redis::cmd("EXISTS")
        .arg(&stray)
        .query_async(&mut redis)
        .await
        .expect("exists");
    assert!(!exists, "a document without a row does not survive a rebuild");
    for row in &live {
        let cached = env.cache().get(&mut redis, row.id).await.expect("redis");
        match row.view() {
            Some(view) => assert_eq!(cached, CacheLookup::Hit(view)),
            None => assert_eq!(cached, CacheLookup::Absent),
        }
    }
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_projection_continues_after_a_rebuild() {
    let env = TestEnv::new().await;
    let scripts: Vec<_> = (0..10).map(|i| random_script(i, 2)).collect();
    append_all(&env, &scripts).await;
    let id = Uuid::now_v7();
    env.append(id, 0, &[registered(&email(), "Before", Role::User)])
        .await;
    env.publish_outbox().await;
    let report = projector::rebuild(
        &env.db.pool,
        &env.documents(),
        &env.redis.connection().await,
        RebuildLimits::default(),
    )
    .await
    .expect("rebuild");
    assert_eq!(report.rows, 11);

    // The consumer then delivers everything again: duplicates of rebuilt rows, skipped.
    let projector = env.start().await;
    env.wait_until_idle().await;
    let rows = env.rows().await;
    assert!(
        scripts
            .iter()
            .all(|s| rows.iter().any(|row| s.expected.matches(row)))
    );
    env.append(id, 1, &[renamed("After")]).await;
    env.publish_outbox().await;
    let row = env.wait_for_version(id, 2).await;
    assert_eq!(row.name.as_deref(), Some("After"));
    projector.stop().await;
    env.cleanup().await;
}
