//! Deliveries that are not the happy path: out of order, unknown types, poison, and a
//! database that fails for a while.

use crate::scripts::{all_match, append_all, random_script};
use crate::support::{TestEnv, WAIT, email, registered, renamed, role_changed};
use domain::user::{Role, UserEvent};
use serde_json::json;
use testkit::eventually;
use uuid::Uuid;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_published_out_of_order_are_applied_in_stream_order_by_filling_gaps() {
    let env = TestEnv::new().await;
    let projector = env.start().await;
    let id = Uuid::now_v7();
    let address = email();
    // Committed in the store, published by hand in reverse (the outbox relay never runs).
    let events = env
        .append(
            id,
            0,
            &[
                registered(&address, "Ada", Role::User),
                renamed("Ada L."),
                role_changed(Role::Admin, Role::User),
            ],
        )
        .await;

    env.republish(&events[2]).await;
    let row = env.wait_for_version(id, 3).await;
    assert_eq!(row.email.as_deref(), Some(address.as_str()));
    assert_eq!(row.name.as_deref(), Some("Ada L."));
    assert_eq!(row.role, "admin");
    assert_eq!(row.created_at, events[0].occurred_at);

    env.republish(&events[1]).await;
    env.republish(&events[0]).await;
    env.wait_until_idle().await;
    assert_eq!(env.row(id).await, Some(row));
    assert_eq!(env.wait_for_document(id, 3).await["user"]["name"], "Ada L.");
    projector.stop().await;
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_user_event_type_advances_the_version_without_changing_fields() {
    let env = TestEnv::new().await;
    let projector = env.start().await;
    let (id, before) = env.register("Ada").await;

    // A newer writer's event type this projector does not know.
    let mut unknown = env.store.load(id).await.expect("load").remove(0);
    unknown.id = Uuid::now_v7();
    unknown.event_type = "user.nicknamed".into();
    unknown.stream_version = 2;
    unknown.data = json!({"nickname": "Countess"});
    sqlx::query(
        "INSERT INTO events (id, stream_type, stream_id, stream_version, event_type, schema_version,
                             data, occurred_at)
         VALUES ($1, 'user', $2, 2, $3, 1, $4, now())",
    )
    .bind(unknown.id)
    .bind(id)
    .bind(&unknown.event_type)
    .bind(&unknown.data)
    .execute(&env.db.pool)
    .await
    .expect("insert unknown event");
    env.republish(&unknown).await;
    let after = env.wait_for_version(id, 2).await;
    assert_eq!(
        (&after.email, &after.name, &after.role),
        (&before.email, &before.name, &before.role)
    );

    env.append(id, 2, &[renamed("Ada K.")]).await;
    env.publish_outbox().await;
    let renamed_row = env.wait_for_version(id, 3).await;
    assert_eq!(renamed_row.name.as_deref(), Some("Ada K."));
    projector.stop().await;
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_messages_are_acknowledged_and_the_projection_goes_on() {
    let env = TestEnv::new().await;
    let projector = env.start().await;
    let subject = format!("{}.user.registered", env.nats.stream.subject_prefix);
    env.publish_raw(subject.clone(), "poison-1", b"not json at all".to_vec())
        .await;
    env.publish_raw(subject.clone(), "poison-2", br#"{"id": "x", "type": 3}"#.to_vec())
        .await;
    // A well-formed envelope ahead of its row that the event store never held.
    let id = Uuid::now_v7();
    let mut stranger = env
        .append(id, 0, &[registered(&email(), "Ada", Role::User)])
        .await
        .remove(0);
    stranger.id = Uuid::now_v7();
    stranger.stream_id = Uuid::now_v7();
    stranger.stream_version = 2;
    env.republish(&stranger).await;
    env.publish_outbox().await;

    env.wait_for_version(id, 1).await;
    let info = env.wait_until_idle().await;
    assert_eq!(info.num_redelivered, 0, "poison is not retried");
    assert_eq!(info.delivered.stream_sequence, 4);
    assert_eq!(env.row(stranger.stream_id).await, None);
    projector.stop().await;
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_that_fails_on_the_database_is_retried_until_it_is_applied() {
    let env = TestEnv::new().await;
    let projector = env.start().await;
    let (id, _) = env.register("Ada").await;

    sqlx::query("ALTER TABLE users_view RENAME TO users_view_away")
        .execute(&env.db.pool)
        .await
        .expect("hide table");
    env.append(id, 1, &[renamed("Ada L."), UserEvent::PasswordChanged {}])
        .await;
    env.publish_outbox().await;
    eventually(WAIT, "a failed event to be redelivered", || async {
        let stream = env.jetstream.get_stream(&env.nats.stream.name).await.ok()?;
        let info = stream.consumer_info(projector::users::CONSUMER).await.ok()?;
        (info.num_redelivered > 0).then_some(())
    })
    .await;
    sqlx::query("ALTER TABLE users_view_away RENAME TO users_view")
        .execute(&env.db.pool)
        .await
        .expect("restore table");

    let row = env.wait_for_version(id, 3).await;
    assert_eq!(row.name.as_deref(), Some("Ada L."));
    env.wait_until_idle().await;
    projector.stop().await;
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_sharing_the_consumer_project_every_user_exactly_once() {
    let env = TestEnv::new().await;
    let scripts: Vec<_> = (0..80).map(|i| random_script(i, 5)).collect();
    append_all(&env, &scripts).await;
    let first = env.start().await;
    let second = env.start().await;
    env.publish_outbox().await;

    eventually(WAIT, "every user projected", || async {
        all_match(&scripts, &env.rows().await).then_some(())
    })
    .await;
    env.wait_until_idle().await;
    first.stop().await;
    second.stop().await;
    env.cleanup().await;
}
