//! The engine against the real Postgres: group commit answers each unit with its own
//! result, a unit is all or nothing over its streams, the aggregate cache is checked by
//! the expected version, and `If-Match` is answered stale.

use domain::Decider;
use domain::user::{Email, Role, UserAggregate, UserCommand, UserError, UserName, UserState};
use eventstore::{
    CommandFailure, Commit, Engine, EventMetadata, EventStore, Expect, IdempotencyRecord, StoreError,
    StreamChange,
};
use futures::future::join_all;
use serde_json::json;
use testkit::TestDb;
use uuid::Uuid;

fn register(n: usize) -> Vec<domain::user::UserEvent> {
    let command = UserCommand::Register {
        email: Email::parse(&format!("user{n}@example.com")).expect("email"),
        name: UserName::parse(&format!("User {n}")).expect("name"),
        role: Role::User,
    };
    UserAggregate::decide(&command, &UserState::New).expect("register")
}

fn rename(state: &UserState, name: &str) -> Vec<domain::user::UserEvent> {
    let command = UserCommand::Rename {
        name: UserName::parse(name).expect("name"),
    };
    UserAggregate::decide(&command, state).expect("rename")
}

fn metadata(request: &str) -> EventMetadata {
    EventMetadata {
        correlation_id: Some(request.to_owned()),
        causation_id: Some(request.to_owned()),
        actor_id: None,
    }
}

async fn count(db: &TestDb, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(&db.pool).await.expect("count")
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_units_share_commits_and_each_gets_its_own_result() {
    let db = TestDb::new().await;
    let engine = Engine::new(EventStore::new(db.pool.clone()));
    let ids: Vec<Uuid> = (0..200).map(|_| Uuid::now_v7()).collect();
    // 200 new streams and, among them, 20 pairs racing for the same stream version.
    let units = ids.iter().enumerate().map(|(n, id)| {
        let engine = engine.clone();
        let id = *id;
        async move {
            let events = register(n);
            let commit = Commit::new(metadata(&format!("req-{n}"))).change(StreamChange::of(id, 0, &events));
            engine.commit(commit).await
        }
    });
    let racers = ids.iter().take(20).map(|id| {
        let engine = engine.clone();
        let id = *id;
        async move {
            let events = register(999);
            let commit = Commit::new(metadata("racer")).change(StreamChange::of(id, 0, &events));
            engine.commit(commit).await
        }
    });
    let (results, raced) = tokio::join!(join_all(units), join_all(racers));
    let won = results.iter().filter(|r| r.is_ok()).count() + raced.iter().filter(|r| r.is_ok()).count();
    let lost = results
        .iter()
        .chain(raced.iter())
        .filter(|r| matches!(r, Err(StoreError::VersionConflict { .. })))
        .count();
    assert_eq!(won, 200, "one writer per stream version wins");
    assert_eq!(lost, 20, "every loser is told it lost, and nothing else failed");
    for (n, result) in results.iter().enumerate() {
        if let Ok(envelopes) = result {
            assert_eq!(envelopes.len(), 1);
            assert_eq!(envelopes[0].stream_id, ids[n]);
            assert_eq!(envelopes[0].stream_version, 1);
            assert_eq!(
                envelopes[0].correlation_id.as_deref(),
                Some(format!("req-{n}").as_str())
            );
        }
    }
    assert_eq!(count(&db, "SELECT count(*) FROM events").await, 200);
    assert_eq!(count(&db, "SELECT count(*) FROM outbox").await, 200);
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM events e JOIN outbox o USING (position)"
        )
        .await,
        200,
        "every event has its outbox row"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_unit_over_several_streams_commits_all_or_nothing() {
    let db = TestDb::new().await;
    let engine = Engine::new(EventStore::new(db.pool.clone()));
    let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
    engine
        .commit(Commit::new(metadata("setup")).change(StreamChange::of(b, 0, &register(1))))
        .await
        .expect("b exists");
    // `a` is new, but `b` is not at version 0 any more: the whole unit conflicts.
    let unit = Commit::new(metadata("both"))
        .change(StreamChange::of(a, 0, &register(2)))
        .change(StreamChange::of(b, 0, &register(3)));
    let error = engine.commit(unit).await.expect_err("b conflicts");
    assert!(matches!(error, StoreError::VersionConflict { stream_id, .. } if stream_id == b));
    assert_eq!(
        count(&db, "SELECT count(*) FROM events").await,
        1,
        "a's event went too"
    );
    assert_eq!(count(&db, "SELECT count(*) FROM outbox").await, 1);
    assert_eq!(engine.load::<UserAggregate>(a).await.expect("load").version, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn claims_and_idempotency_keys_isolate_the_unit_that_lost_them() {
    let db = TestDb::new().await;
    let engine = Engine::new(EventStore::new(db.pool.clone()));
    let record = |n: i32| IdempotencyRecord {
        scope: "anonymous".into(),
        key: "same-key".into(),
        request_hash: format!("hash-{n}"),
        status_code: 201,
        body: json!({"n": n}),
        etag: None,
        location: None,
    };
    let units = (0..6).map(|n| {
        let engine = engine.clone();
        let id = Uuid::now_v7();
        let commit = Commit::new(metadata(&format!("claim-{n}")))
            .claim("user.email", "same@example.com", id)
            .change(StreamChange::of(id, 0, &register(n)));
        async move { engine.commit(commit).await }
    });
    let keyed = (0..4).map(|n| {
        let engine = engine.clone();
        let id = Uuid::now_v7();
        let record = record(n);
        let commit = Commit::new(metadata(&format!("key-{n}")))
            .change(StreamChange::of(id, 0, &register(10 + n as usize)))
            .idempotent(Some(move |_: &[eventstore::EventEnvelope]| record));
        async move { engine.commit(commit).await }
    });
    let (claims, keys) = tokio::join!(join_all(units), join_all(keyed));
    assert_eq!(claims.iter().filter(|r| r.is_ok()).count(), 1);
    assert!(
        claims
            .iter()
            .filter(|r| r.is_err())
            .all(|r| matches!(r, Err(StoreError::AlreadyClaimed { kind }) if kind == "user.email"))
    );
    assert_eq!(keys.iter().filter(|r| r.is_ok()).count(), 1);
    assert!(
        keys.iter()
            .filter(|r| r.is_err())
            .all(|r| matches!(r, Err(StoreError::IdempotencyKeyTaken)))
    );
    assert_eq!(
        count(&db, "SELECT count(*) FROM events").await,
        2,
        "only the winners' events"
    );
    assert_eq!(count(&db, "SELECT count(*) FROM unique_claims").await, 1);
    assert_eq!(count(&db, "SELECT count(*) FROM idempotency_keys").await, 1);
}

async fn rename_with(
    engine: &Engine,
    id: Uuid,
    expect: Expect,
    name: &str,
) -> Result<i64, CommandFailure<UserError>> {
    let name = name.to_owned();
    let (version, _) = engine
        .execute::<UserAggregate, _, UserError>(id, expect, |loaded| {
            let events = rename(&loaded.state, &name);
            let (change, _) = eventstore::change::<UserAggregate>(id, loaded, &events);
            Ok((
                Commit::new(metadata("rename")).change(change),
                eventstore::version_after(loaded, &events),
            ))
        })
        .await?;
    Ok(version)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cached_state_another_replica_moved_on_is_decided_again_or_answered_stale() {
    let db = TestDb::new().await;
    let store = EventStore::new(db.pool.clone());
    let (one, two) = (Engine::new(store.clone()), Engine::new(store));
    let id = Uuid::now_v7();
    one.commit(Commit::new(metadata("setup")).change(StreamChange::of(id, 0, &register(1))))
        .await
        .expect("registered");
    assert_eq!(rename_with(&one, id, Expect::Any, "Ada").await.expect("v2"), 2);
    // The other replica writes version 3; `one` still remembers version 2.
    assert_eq!(rename_with(&two, id, Expect::Any, "Grace").await.expect("v3"), 3);
    assert_eq!(one.load::<UserAggregate>(id).await.expect("cached").version, 2);
    // Without If-Match the stale decision conflicts and is made again on version 3.
    assert_eq!(rename_with(&one, id, Expect::Any, "Ada").await.expect("v4"), 4);
    // `two` remembers 3: If-Match 4 is checked against the store, not the cache.
    assert_eq!(
        rename_with(&two, id, Expect::Version(4), "Edsger")
            .await
            .expect("v5"),
        5
    );
    // If-Match naming an old version is stale, with the current version.
    match rename_with(&one, id, Expect::Version(4), "Barbara").await {
        Err(CommandFailure::Stale { current }) => assert_eq!(current, 5),
        other => panic!("expected stale, got {other:?}"),
    }
    let (state, version) = EventStore::new(db.pool.clone())
        .load_aggregate::<domain::user::UserEvent, _>(id, UserState::New, UserAggregate::evolve)
        .await
        .expect("load");
    assert_eq!(version, 5);
    assert!(matches!(state, UserState::Active { name, .. } if name.as_str() == "Edsger"));
}

#[tokio::test(flavor = "multi_thread")]
async fn many_concurrent_commands_on_one_stream_all_land_in_order() {
    let db = TestDb::new().await;
    let engine = Engine::new(EventStore::new(db.pool.clone()));
    let id = Uuid::now_v7();
    engine
        .commit(Commit::new(metadata("setup")).change(StreamChange::of(id, 0, &register(1))))
        .await
        .expect("registered");
    let renames = (0..12).map(|n| {
        let engine = engine.clone();
        async move { rename_with(&engine, id, Expect::Any, &format!("Name {n}")).await }
    });
    let results = join_all(renames).await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    let versions: Vec<i64> =
        sqlx::query_scalar("SELECT stream_version FROM events WHERE stream_id = $1 ORDER BY position")
            .bind(id)
            .fetch_all(&db.pool)
            .await
            .expect("versions");
    assert_eq!(
        versions,
        (1..=13).collect::<Vec<i64>>(),
        "one event per version, in position order"
    );
}
