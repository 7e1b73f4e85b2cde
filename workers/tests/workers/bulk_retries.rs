//! Dead letters filtered by effect, error and age, and "retry all that match": a run in
//! the background, chunk by chunk, with its progress, rate and ETA, every retry audited.

use crate::helpers::{TestApp, WAIT};
use domain::user::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};
use testkit::eventually;
use uuid::Uuid;
use workers::dead_letters::{self, DeadLetterStatus, Filter};

async fn get(app: &TestApp, path: &str, token: &str) -> (StatusCode, Value) {
    let response = app
        .http
        .get(app.url(path))
        .bearer_auth(token)
        .send()
        .await
        .expect("request");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn start(app: &TestApp, token: &str, body: Value) -> (StatusCode, Option<String>, Value) {
    let response = app
        .http
        .post(app.url("/api/v1/dead-letters/retries"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .expect("request");
    let status = response.status();
    let location = response
        .headers()
        .get("location")
        .and_then(|l| l.to_str().ok())
        .map(str::to_owned);
    (status, location, response.json().await.unwrap_or(Value::Null))
}

/// Waits until the run at `location` is no longer running, and returns it.
async fn finished(app: &TestApp, token: &str, location: &str) -> Value {
    eventually(WAIT, "the bulk retry to end", || async {
        let (status, body) = get(app, location, token).await;
        (status == StatusCode::OK && body["data"]["status"] != "running").then(|| body["data"].clone())
    })
    .await
}

/// Welcome-email dead letters of `names` (SMTP refused every attempt), oldest first.
async fn dead_letters_of(app: &TestApp, names: &[&str]) -> Vec<Uuid> {
    app.smtp.refuse_next(usize::MAX);
    for name in names {
        app.register(name, &format!("{}@example.com", name.to_lowercase()))
            .await;
    }
    let ids = app.wait_for_dead_letters(names.len()).await;
    app.wait_until_handled(names.len() as u64).await;
    ids
}

async fn set(app: &TestApp, id: Uuid, error: &str, hours_old: i32) {
    sqlx::query(
        "UPDATE dead_letters SET error = $2, created_at = now() - make_interval(hours => $3) WHERE id = $1",
    )
    .bind(id)
    .bind(error)
    .bind(hours_old)
    .execute(&app.db.pool)
    .await
    .expect("update");
}

fn ids(body: &Value) -> Vec<String> {
    let mut ids: Vec<String> = body["data"]
        .as_array()
        .expect("a list")
        .iter()
        .map(|d| d["id"].as_str().expect("id").to_owned())
        .collect();
    ids.sort();
    ids
}

fn sorted(ids: &[Uuid]) -> Vec<String> {
    let mut ids: Vec<String> = ids.iter().map(Uuid::to_string).collect();
    ids.sort();
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_are_filtered_by_effect_error_and_age() {
    let app = TestApp::spawn_with(1, |s| s.retry.max_attempts = 1).await;
    let letters = dead_letters_of(&app, &["Ada", "Bob", "Cyd"]).await;
    let admin = app.token(Role::Admin).await;
    set(&app, letters[0], "SMTP 550 mailbox unavailable", 3).await;
    set(&app, letters[1], "connection reset by 100% of peers", 0).await;
    set(&app, letters[2], "SMTP 550 Mailbox full", 0).await;

    for (query, expected) in [
        ("error=mailbox", vec![letters[0], letters[2]]),
        ("error=MAILBOX%20FULL", vec![letters[2]]),
        ("error=100%25", vec![letters[1]]),
        ("error=_", vec![]),
        ("olderThan=2h", vec![letters[0]]),
        ("newerThan=1h", vec![letters[1], letters[2]]),
        (
            "olderThan=1h%2030m&error=mailbox&effect=welcome_email",
            vec![letters[0]],
        ),
        ("effect=order_confirmation", vec![]),
        ("status=dead&newerThan=7d", letters.clone()),
    ] {
        let (status, body) = get(&app, &format!("/api/v1/dead-letters?{query}"), &admin).await;
        assert_eq!(status, StatusCode::OK, "{query}: {body}");
        assert_eq!(ids(&body), sorted(&expected), "{query}");
        assert_eq!(body["meta"]["pagination"]["total"], expected.len(), "{query}");
    }
    for (query, field) in [
        ("olderThan=soon", "olderThan"),
        ("newerThan=-1h", "newerThan"),
        ("olderThan=100000d", "olderThan"),
        ("error=%00", "error"),
        (&format!("error={}", "x".repeat(201)), "error"),
    ] {
        let (status, body) = get(&app, &format!("/api/v1/dead-letters?{query}"), &admin).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        assert_eq!(body["error"]["details"][0]["field"], field, "{query}");
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retrying_all_that_match_resolves_them_in_the_background_and_leaves_the_others() {
    let app = TestApp::spawn_with(1, |s| s.retry.max_attempts = 1).await;
    let letters = dead_letters_of(&app, &["Ada", "Bob", "Cyd", "Dan"]).await;
    let admin = app.token(Role::Admin).await;
    for id in &letters[..3] {
        set(&app, *id, "SMTP 554 relay denied", 1).await;
    }
    app.smtp.refuse_next(0);

    let (status, location, body) = start(
        &app,
        &admin,
        json!({"error": "relay denied", "olderThan": "30m", "reason": "the relay is fixed"}),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let location = location.expect("a Location");
    assert_eq!(body["data"]["total"], 3);
    assert_eq!(body["data"]["filter"]["status"], "dead");
    assert_eq!(body["data"]["filter"]["olderThanSeconds"], 1800);
    let run = finished(&app, &admin, &location).await;
    assert_eq!(run["status"], "done", "{run}");
    assert_eq!(
        (
            run["processed"].as_i64(),
            run["resolved"].as_i64(),
            run["failed"].as_i64()
        ),
        (Some(3), Some(3), Some(0))
    );
    assert!(run["ratePerSecond"].as_f64().is_some_and(|r| r > 0.0), "{run}");
    assert!(run["etaSeconds"].is_null());
    assert!(run["finishedAt"].is_string());
    assert_eq!(run["stalled"], false);
    let mut mailed: Vec<String> = app.smtp.messages().iter().flat_map(|m| m.to.clone()).collect();
    mailed.sort();
    assert_eq!(mailed, ["ada@example.com", "bob@example.com", "cyd@example.com"]);
    let (_, still) = get(&app, "/api/v1/dead-letters?status=dead", &admin).await;
    assert_eq!(ids(&still), sorted(&letters[3..]));

    // Every retry is in the operator actions, with the run.
    let actions: Vec<(String, Option<String>, String)> =
        sqlx::query_as("SELECT action, reason, outcome FROM operator_actions ORDER BY at, id")
            .fetch_all(&app.db.pool)
            .await
            .expect("actions");
    let run_id = run["id"].as_str().expect("id");
    assert_eq!(
        actions[0],
        (
            "dead_letter.retry_all".to_owned(),
            Some("the relay is fixed".to_owned()),
            "started".to_owned()
        )
    );
    let retried: Vec<_> = actions[1..]
        .iter()
        .map(|(a, r, o)| (a.as_str(), r.clone(), o.as_str()))
        .collect();
    let expected = (
        "dead_letter.retry",
        Some(format!("bulk retry {run_id}")),
        "resolved",
    );
    assert_eq!(retried, vec![expected.clone(), expected.clone(), expected]);

    let (status, listed) = get(&app, "/api/v1/dead-letters/retries", &admin).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(listed["data"][0]["id"], run_id);
    let (status, _) = get(
        &app,
        &format!("/api/v1/dead-letters/retries/{}", Uuid::now_v7()),
        &admin,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    for bad in [
        json!({"olderThan": "later"}),
        json!({"effect": "x", "status": "dead"}),
        json!({"reason": "x".repeat(501)}),
    ] {
        let (status, _, body) = start(&app, &admin, bad.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
    }
    let user = app.token(Role::User).await;
    let (status, _, _) = start(&app, &user, json!({})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bulk_retry_walks_more_than_one_chunk_and_counts_what_fails_again() {
    let app = TestApp::spawn().await;
    let admin = app.token(Role::Admin).await;
    // 130 dead letters whose stored event cannot be performed: each retry fails fast.
    sqlx::query(
        "INSERT INTO dead_letters (id, event_id, effect, subject, event, error, attempts)
         SELECT gen_random_uuid(), gen_random_uuid(), 'welcome_email', 'events.user.registered',
                '{\"not\": \"an envelope\"}', 'broken', 5
         FROM generate_series(1, 130)",
    )
    .execute(&app.db.pool)
    .await
    .expect("dead letters");

    let (status, location, body) = start(&app, &admin, json!({"effect": "welcome_email"})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["data"]["total"], 130);
    let run = finished(&app, &admin, &location.expect("Location")).await;
    assert_eq!(run["status"], "done", "{run}");
    assert_eq!(
        (
            run["processed"].as_i64(),
            run["resolved"].as_i64(),
            run["failed"].as_i64()
        ),
        (Some(130), Some(0), Some(130))
    );
    assert_eq!(run["lastError"], "the stored event is not an event envelope");
    let attempts: Vec<i32> = sqlx::query_scalar("SELECT DISTINCT attempts FROM dead_letters")
        .fetch_all(&app.db.pool)
        .await
        .expect("attempts");
    assert_eq!(attempts, [6], "each retried once, none twice");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bulk_retry_measures_its_ages_from_its_start_not_from_each_chunk() {
    let app = TestApp::spawn().await;
    let admin = app.token(Role::Admin).await;
    // Dead letters 90 minutes and 3 hours old, whose events cannot be performed.
    let letters: Vec<Uuid> = sqlx::query_scalar(
        "INSERT INTO dead_letters (id, event_id, effect, subject, event, error, attempts, created_at)
         SELECT gen_random_uuid(), gen_random_uuid(), 'welcome_email', 'events.user.registered',
                '{\"not\": \"an envelope\"}', 'broken', 5, now() - make_interval(mins => age)
         FROM unnest(ARRAY[90, 180]) AS age ORDER BY age RETURNING id",
    )
    .fetch_all(&app.db.pool)
    .await
    .expect("dead letters");

    let (status, location, body) = start(&app, &admin, json!({"olderThan": "30m", "newerThan": "2h"})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let filter = &body["data"]["filter"];
    let time = |value: &Value| {
        chrono::DateTime::parse_from_rfc3339(value.as_str().expect("a time"))
            .expect("RFC 3339")
            .to_utc()
    };
    let started_at = time(&body["data"]["startedAt"]);
    // The ages stay for readers; the times they give at the start are what the run reads.
    assert_eq!(
        (
            filter["olderThanSeconds"].as_u64(),
            filter["newerThanSeconds"].as_u64()
        ),
        (Some(1800), Some(7200))
    );
    assert_eq!(
        time(&filter["createdUntil"]),
        started_at - chrono::TimeDelta::minutes(30)
    );
    assert_eq!(
        time(&filter["createdSince"]),
        started_at - chrono::TimeDelta::hours(2)
    );
    assert_eq!(body["data"]["total"], 1);
    let run = finished(&app, &admin, &location.expect("a Location")).await;
    assert_eq!(
        (run["processed"].as_i64(), run["failed"].as_i64()),
        (Some(1), Some(1)),
        "{run}"
    );

    // A run that started an hour ago and reads its next chunk now still takes what was
    // under two hours old at its start; the ages measured from now would take nothing.
    let now: chrono::DateTime<chrono::Utc> = sqlx::query_scalar("SELECT now()")
        .fetch_one(&app.db.pool)
        .await
        .expect("now");
    let ages = Filter {
        status: Some(DeadLetterStatus::Dead),
        newer_than_seconds: Some(3600),
        ..Filter::default()
    };
    let fixed = ages.clone().fixed_at(now - chrono::TimeDelta::hours(1));
    let taken = |filter: Filter| {
        let pool = app.db.pool.clone();
        async move {
            let chunk = dead_letters::next_matching(&pool, &filter, now, None, 50)
                .await
                .expect("a chunk");
            let counted = dead_letters::count_matching(&pool, &filter, now)
                .await
                .expect("a count");
            assert_eq!(counted, chunk.len() as i64);
            chunk.into_iter().map(|(_, id)| id).collect::<Vec<_>>()
        }
    };
    assert_eq!(taken(fixed).await, [letters[0]]);
    assert_eq!(taken(ages).await, Vec::<Uuid>::new());
    app.stop().await;
}
