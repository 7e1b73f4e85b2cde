//! Migrations: read models and side tables are reversible, the event store and the write
//! side forward-only; a revert undoes the newest reversible ones and refuses to cross a
//! forward-only one.

use runtime::migrations::{self, MigrationState};
use sqlx::{Connection, PgConnection};
use testkit::TestDb;

async fn exists(conn: &mut PgConnection, table: &str) -> bool {
    sqlx::query_scalar::<_, bool>("SELECT to_regclass($1) IS NOT NULL")
        .bind(table)
        .fetch_one(conn)
        .await
        .expect("to_regclass")
}

async fn notify_triggers(conn: &mut PgConnection) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM pg_trigger WHERE tgname LIKE '%\\_changes' AND NOT tgisinternal")
        .fetch_one(conn)
        .await
        .expect("triggers")
}

fn versions(states: &[MigrationState]) -> Vec<i64> {
    states.iter().map(|m| m.version).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn what_can_be_built_again_is_reversible_and_the_facts_are_forward_only() {
    let db = TestDb::new().await;
    let mut conn = PgConnection::connect(&db.url).await.expect("connect");
    let states = migrations::status(&mut conn).await.expect("status");
    assert!(states.iter().all(|m| m.applied), "{states:#?}");
    let kind = |reversible: bool| -> Vec<String> {
        states
            .iter()
            .filter(|m| m.reversible == reversible)
            .map(|m| m.description.clone())
            .collect()
    };
    assert_eq!(
        kind(false),
        ["event store", "auth", "side effects", "user authority", "reviews"],
        "forward-only"
    );
    for reversible in [
        "read models",
        "shop read models",
        "change notifications",
        "password reset tokens",
        "operator actions",
        "webhooks",
        "dead letter retries",
    ] {
        assert!(
            kind(true).iter().any(|d| d == reversible),
            "{reversible} is reversible"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_revert_undoes_the_newest_reversible_migrations_and_they_apply_again() {
    let db = TestDb::new().await;
    let mut conn = PgConnection::connect(&db.url).await.expect("connect");
    sqlx::query(
        "INSERT INTO operator_actions (id, actor_id, action, target, outcome)
         VALUES (gen_random_uuid(), gen_random_uuid(), 'dead_letter.discard', 'x', 'discarded')",
    )
    .execute(&mut conn)
    .await
    .expect("an action");
    let reverted = migrations::revert(&mut conn, 20261202000001)
        .await
        .expect("revert");
    assert_eq!(
        versions(&reverted),
        [
            20261203000003,
            20261203000002,
            20261203000001,
            20261202000003,
            20261202000002
        ]
    );
    assert!(!exists(&mut conn, "password_reset_tokens").await);
    assert!(!exists(&mut conn, "operator_actions").await);
    assert!(!exists(&mut conn, "webhooks").await);
    assert!(
        exists(&mut conn, "webhooks_archived").await,
        "endpoints are kept aside"
    );
    assert!(
        exists(&mut conn, "operator_actions_archived").await,
        "the record is kept aside"
    );
    assert!(notify_triggers(&mut conn).await > 0, "the older migration stays");

    let reverted = migrations::revert(&mut conn, 20261201000002)
        .await
        .expect("revert");
    assert_eq!(versions(&reverted), [20261202000001]);
    assert_eq!(notify_triggers(&mut conn).await, 0);
    let pending: Vec<i64> = migrations::status(&mut conn)
        .await
        .expect("status")
        .into_iter()
        .filter(|m| !m.applied)
        .map(|m| m.version)
        .collect();
    assert_eq!(
        pending,
        [
            20261202000001,
            20261202000002,
            20261202000003,
            20261203000001,
            20261203000002,
            20261203000003
        ]
    );

    migrations::migrate(&mut conn).await.expect("migrate again");
    assert!(exists(&mut conn, "password_reset_tokens").await);
    assert!(exists(&mut conn, "webhooks").await);
    assert!(!exists(&mut conn, "webhooks_archived").await);
    let kept: i64 = sqlx::query_scalar("SELECT count(*) FROM operator_actions")
        .fetch_one(&mut conn)
        .await
        .expect("count");
    assert_eq!(kept, 1, "the record came back");
    assert!(notify_triggers(&mut conn).await > 0);
    assert_eq!(
        migrations::revert(&mut conn, 20261203000003)
            .await
            .expect("revert")
            .len(),
        0,
        "nothing newer than the newest"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_revert_across_a_forward_only_migration_undoes_nothing() {
    let db = TestDb::new().await;
    let mut conn = PgConnection::connect(&db.url).await.expect("connect");
    let error = migrations::revert(&mut conn, 20261122000002)
        .await
        .expect_err("refused");
    let message = format!("{error:#}");
    assert!(
        message.contains("20261201000002") && message.contains("forward-only"),
        "{message}"
    );
    assert!(
        exists(&mut conn, "password_reset_tokens").await,
        "nothing was reverted"
    );
    assert!(exists(&mut conn, "users_view").await);
    assert!(
        migrations::status(&mut conn)
            .await
            .expect("status")
            .iter()
            .all(|m| m.applied)
    );
}
