//! The live projection of user events into Postgres and Redis.

use crate::support::{TestEnv, email, registered, renamed, role_changed};
use domain::user::{Role, UserEvent};
use readmodels::users::CacheLookup;
use uuid::Uuid;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registering_renaming_and_changing_role_end_up_in_postgres_and_redis() {
    let env = TestEnv::new().await;
    let projector = env.start().await;
    let id = Uuid::now_v7();
    let address = email();
    let first = env
        .append(id, 0, &[registered(&address, "Ada", Role::User)])
        .await;
    env.append(id, 1, &[renamed("Ada Lovelace")]).await;
    let last = env
        .append(
            id,
            2,
            &[
                role_changed(Role::Admin, Role::User),
                UserEvent::PasswordChanged {},
            ],
        )
        .await;
    env.publish_outbox().await;

    let row = env.wait_for_version(id, 4).await;
    assert_eq!(row.email.as_deref(), Some(address.as_str()));
    assert_eq!(row.name.as_deref(), Some("Ada Lovelace"));
    assert_eq!(row.role, "admin");
    assert_eq!(row.created_at, first[0].occurred_at);
    assert_eq!(row.updated_at, last[1].occurred_at);
    assert_eq!(row.deleted_at, None);

    env.wait_for_document(id, 4).await;
    let cached = env
        .cache()
        .get(&mut env.redis.connection().await, id)
        .await
        .expect("redis");
    assert_eq!(cached, CacheLookup::Hit(row.view().expect("live user")));
    projector.stop().await;
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_user_erases_email_and_name_and_leaves_a_redis_tombstone() {
    let env = TestEnv::new().await;
    let projector = env.start().await;
    let (id, registered_row) = env.register("Grace").await;
    let address = registered_row.email.expect("email");
    env.wait_for_document(id, 1).await;
    let deleted = env.append(id, 1, &[UserEvent::Deleted {}]).await;
    env.publish_outbox().await;

    let row = env.wait_for_version(id, 2).await;
    assert_eq!((row.email, row.name), (None, None));
    assert_eq!(row.deleted_at, Some(deleted[0].occurred_at));
    assert_eq!(
        readmodels::users::find_user(&env.db.pool, id)
            .await
            .expect("query"),
        None
    );

    let document = env.wait_for_document(id, 2).await;
    assert_eq!(document["deleted"], true);
    assert!(!document.to_string().contains(&address));
    assert!(!document.to_string().contains("Grace"));
    let cached = env
        .cache()
        .get(&mut env.redis.connection().await, id)
        .await
        .expect("redis");
    assert_eq!(cached, CacheLookup::Absent);
    projector.stop().await;
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_delivered_again_under_another_message_id_is_applied_once() {
    let env = TestEnv::new().await;
    let projector = env.start().await;
    let id = Uuid::now_v7();
    env.append(id, 0, &[registered(&email(), "First", Role::User)])
        .await;
    let second = env.append(id, 1, &[renamed("Second")]).await;
    env.append(id, 2, &[renamed("Third")]).await;
    env.publish_outbox().await;
    let before = env.wait_for_version(id, 3).await;

    env.republish(&second[0]).await;
    env.republish(&second[0]).await;
    let info = env.wait_until_idle().await;

    assert_eq!(info.delivered.stream_sequence, 5, "the copies were delivered");
    assert_eq!(env.row(id).await, Some(before));
    assert_eq!(env.wait_for_document(id, 3).await["user"]["name"], "Third");
    projector.stop().await;
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_registration_never_resurrects_a_deleted_user() {
    let env = TestEnv::new().await;
    let projector = env.start().await;
    let id = Uuid::now_v7();
    let registration = env
        .append(id, 0, &[registered(&email(), "Gone", Role::User)])
        .await;
    env.append(id, 1, &[UserEvent::Deleted {}]).await;
    env.publish_outbox().await;
    env.wait_for_version(id, 2).await;

    env.republish(&registration[0]).await;
    env.wait_until_idle().await;

    let row = env.row(id).await.expect("tombstone");
    assert_eq!((row.email, row.name, row.version), (None, None, 2));
    assert!(row.deleted_at.is_some());
    assert_eq!(env.wait_for_document(id, 2).await["deleted"], true);
    projector.stop().await;
    env.cleanup().await;
}
