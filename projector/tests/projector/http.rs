//! The projector's HTTP endpoints.

use crate::support::{TestEnv, WAIT, email, registered};
use domain::user::Role;
use serde_json::Value;
use testkit::eventually;
use uuid::Uuid;

async fn get(url: &str) -> (u16, Value) {
    let response = reqwest::get(url).await.expect("request");
    let status = response.status().as_u16();
    (status, response.json().await.expect("json body"))
}

async fn get_with(url: &str, token: &str) -> (u16, Value) {
    let response = reqwest::Client::new()
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .expect("request");
    let status = response.status().as_u16();
    (status, response.json().await.expect("json body"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_endpoints_report_the_dependencies() {
    let env = TestEnv::new().await;
    let projector = env.start().await;
    let (status, body) = get(&projector.url("/health/live")).await;
    assert_eq!((status, &body["data"]["status"]), (200, &Value::from("live")));
    let body = eventually(WAIT, "readiness", || async {
        let (status, body) = get(&projector.url("/health/ready")).await;
        (status == 200).then_some(body)
    })
    .await;
    for dependency in ["postgres", "nats", "redis"] {
        assert_eq!(body["data"]["checks"][dependency], "up", "{dependency}");
    }
    projector.stop().await;
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn projections_endpoint_shows_backlog_and_row_counts_only() {
    let env = TestEnv::new().await;
    let projector = env.start().await;
    for _ in 0..3 {
        env.append(Uuid::now_v7(), 0, &[registered(&email(), "Ada", Role::User)])
            .await;
    }
    let (mug, _) = env.create_product("Mug", 1250, 10).await;
    let (tea, _) = env.create_product("Tea", 499, 10).await;
    env.place_order(&[(mug, 1), (tea, 2)]).await;
    env.publish_outbox().await;
    let admin = env.token(Role::Admin).await;

    let expected = [
        ("users", "projector-users", 3),
        ("products", "projector-products", 2),
        ("orders", "projector-orders", 1),
        ("reviews", "projector-reviews", 0),
    ];
    let body = eventually(WAIT, "every row and idle consumers", || async {
        let (status, body) = get_with(&projector.url("/api/v1/projections"), &admin).await;
        let done = expected.iter().enumerate().all(|(i, (_, _, rows))| {
            let projection = &body["data"][i];
            projection["rows"] == *rows && projection["numPending"] == 0 && projection["numAckPending"] == 0
        });
        (status == 200 && done).then_some(body)
    })
    .await;
    assert_eq!(body["data"].as_array().map(Vec::len), Some(expected.len()));
    for (i, (name, consumer, _)) in expected.iter().enumerate() {
        let projection = &body["data"][i];
        assert_eq!(projection["name"], *name);
        assert_eq!(projection["consumer"], *consumer);
        assert_eq!(projection["numRedelivered"], 0);
    }
    assert!(!body.to_string().contains("Ada"), "no user data");
    assert!(!body.to_string().contains("Mug"), "no product data");
    assert!(body["meta"]["requestId"].is_string());

    let (status, body) = get(&projector.url("/api/v1/nothing")).await;
    assert_eq!((status, &body["error"]["code"]), (404, &Value::from("NOT_FOUND")));
    projector.stop().await;
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn projections_need_an_administrator_while_probes_and_docs_stay_public() {
    let env = TestEnv::new().await;
    let projector = env.start().await;
    let url = projector.url("/api/v1/projections");

    let (status, body) = get(&url).await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (401, &Value::from("UNAUTHORIZED"))
    );
    let (status, body) = get_with(&url, "not-a-jwt").await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (401, &Value::from("UNAUTHORIZED"))
    );
    let (status, body) = get_with(&url, &env.token(Role::User).await).await;
    assert_eq!((status, &body["error"]["code"]), (403, &Value::from("FORBIDDEN")));
    let admin = env.token(Role::Admin).await;
    let (status, body) = get_with(&url, &admin).await;
    assert_eq!(status, 200);
    assert_eq!(
        body["data"].as_array().map(Vec::len),
        Some(projector::registry::PROJECTIONS.len())
    );
    // The token still says admin; the write side says otherwise now.
    sqlx::query("UPDATE user_authority SET role = 'user'")
        .execute(&env.db.pool)
        .await
        .expect("demote");
    let (status, _) = get_with(&url, &admin).await;
    assert_eq!(status, 403, "a demoted admin is refused at once");
    sqlx::query("DELETE FROM user_authority")
        .execute(&env.db.pool)
        .await
        .expect("delete");
    let (status, _) = get_with(&url, &admin).await;
    assert_eq!(status, 401, "a deleted admin is refused at once");

    let (status, _) = get(&projector.url("/health/live")).await;
    assert_eq!(status, 200);
    let (status, docs) = get(&projector.url("/openapi.json")).await;
    assert_eq!(status, 200);
    let operation = &docs["paths"]["/api/v1/projections"]["get"];
    assert_eq!(operation["security"], serde_json::json!([{"bearer": []}]));
    for code in ["200", "401", "403"] {
        assert!(operation["responses"].get(code).is_some(), "{code} documented");
    }
    projector.stop().await;
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_projection_waiting_for_missing_events_shows_held_at_a_gap_until_they_are_there() {
    let env = TestEnv::new().await;
    let id = Uuid::now_v7();
    let events = env
        .append(
            id,
            0,
            &[
                registered(&email(), "Ada", Role::User),
                crate::support::renamed("Ada L"),
                crate::support::renamed("Ada Lovelace"),
            ],
        )
        .await;
    // The second event goes missing from the store for a while (kept aside to bring back).
    let aside = format!("aside_{}", id.simple());
    for sql in [
        format!(
            "CREATE TABLE {aside} AS SELECT * FROM events WHERE stream_id = '{id}' AND stream_version = 2"
        ),
        format!(
            "DELETE FROM outbox WHERE position IN (SELECT position FROM events WHERE stream_id = '{id}')"
        ),
        format!("DELETE FROM events WHERE stream_id = '{id}' AND stream_version = 2"),
    ] {
        sqlx::query(&sql).execute(&env.db.pool).await.expect(&sql);
    }
    let projector = env.start().await;
    env.republish(&events[0]).await;
    env.republish(&events[2]).await;
    let admin = env.token(Role::Admin).await;
    let url = projector.url("/api/v1/projections");
    let users = eventually(WAIT, "users held at the gap", || async {
        let (_, body) = get_with(&url, &admin).await;
        let users = body["data"][0].clone();
        (users["state"] == "held at a gap").then_some(users)
    })
    .await;
    assert_eq!(users["heldAt"]["streamId"], id.to_string());
    assert_eq!(
        (users["heldAt"]["after"].clone(), users["heldAt"]["upto"].clone()),
        (1.into(), 3.into())
    );
    let metrics = reqwest::get(projector.url("/metrics"))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains("projection_held_at_gap{projection=\"users\"} 1"),
        "{metrics}"
    );

    sqlx::query(&format!("INSERT INTO events SELECT * FROM {aside}"))
        .execute(&env.db.pool)
        .await
        .expect("bring it back");
    env.wait_for_version(id, 3).await;
    eventually(WAIT, "the gap closed", || async {
        let (_, body) = get_with(&url, &admin).await;
        (body["data"][0]["state"] != "held at a gap" && body["data"][0]["heldAt"].is_null()).then_some(())
    })
    .await;
    projector.stop().await;
    env.cleanup().await;
}
