//! Rebuilds without downtime over HTTP: a new generation is built beside the live one
//! while reads and live projection go on, checked, swapped in, rolled back, dropped.

use crate::shop_scripts::random_shop;
use crate::support::{TestEnv, WAIT};
use domain::user::Role;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use testkit::eventually;

/// Starts a run at `path` and follows it until it ends; the run at its end.
async fn run_to_end(http: &reqwest::Client, token: &str, base: &str, path: &str) -> Value {
    let started = http
        .post(format!("{base}{path}"))
        .bearer_auth(token)
        .json(&json!({"reason": "projection fix"}))
        .send()
        .await
        .expect("start");
    assert_eq!(started.status(), 202);
    let location = started
        .headers()
        .get("location")
        .and_then(|value| value.to_str().ok())
        .expect("Location")
        .to_owned();
    let run: Value = started.json().await.expect("json");
    assert_eq!(run["data"]["status"], "running");
    eventually(WAIT, "the run to end", || async {
        let run: Value = http
            .get(format!("{base}{location}"))
            .bearer_auth(token)
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        (run["data"]["status"] != "running").then_some(run["data"].clone())
    })
    .await
}

async fn count(env: &TestEnv, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(&env.db.pool).await.expect(sql)
}

async fn generations(http: &reqwest::Client, token: &str, base: &str) -> Vec<(i64, String)> {
    let answer: Value = http
        .get(format!("{base}/api/v1/projections/generations"))
        .bearer_auth(token)
        .send()
        .await
        .expect("generations")
        .json()
        .await
        .expect("json");
    answer["data"]
        .as_array()
        .expect("list")
        .iter()
        .map(|g| {
            (
                g["generation"].as_i64().expect("n"),
                g["state"].as_str().expect("state").to_owned(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebuild_is_built_beside_the_live_models_swapped_in_rolled_back_and_dropped() {
    let env = TestEnv::new().await;
    let script = random_shop(&env, 6, 60).await;
    let projector = env.start().await;
    env.publish_outbox().await;
    let products = eventually(WAIT, "the live projection", || async {
        let products = env.product_rows().await;
        script
            .matches(&products, &env.order_rows().await)
            .then_some(products)
    })
    .await;
    env.wait_until_all_idle().await;
    // A projection bug to repair: the live rows are wrong, the events are right.
    sqlx::query("UPDATE products_view SET units_sold = units_sold + 1000")
        .execute(&env.db.pool)
        .await
        .expect("corrupt");
    let http = reqwest::Client::new();
    let token = env.token(Role::Admin).await;
    let base = projector.url("");

    // Readers never see an empty or missing table while the rebuild runs.
    let reading = Arc::new(AtomicBool::new(true));
    let reads = Arc::new(AtomicU64::new(0));
    let reader = {
        let (pool, reading, reads) = (env.db.pool.clone(), reading.clone(), reads.clone());
        let expected = products.len() as i64;
        tokio::spawn(async move {
            while reading.load(Ordering::Relaxed) {
                let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM products_view")
                    .fetch_one(&pool)
                    .await
                    .expect("a read during the rebuild");
                assert!(rows >= expected, "{rows} products read during the rebuild");
                reads.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    // Writes go on too: the live projection keeps projecting into the live generation.
    let (during, _) = env.create_product("Made during the rebuild", 990, 5).await;
    env.publish_outbox().await;

    let run = run_to_end(&http, &token, &base, "/api/v1/projections/rebuilds").await;
    reading.store(false, Ordering::Relaxed);
    reader.await.expect("reader");
    assert!(reads.load(Ordering::Relaxed) > 0);
    assert_eq!(run["status"], "done", "{run}");
    assert_eq!(
        (run["generation"].clone(), run["fromGeneration"].clone()),
        (json!(2), json!(1))
    );
    assert_eq!(run["percent"], 100.0);
    let checks = run["checks"].as_array().expect("checks");
    assert_eq!(checks.len(), 4, "one per projection: {run}");
    assert!(
        checks
            .iter()
            .all(|check| check["passed"] == true && check["behind"] == 0),
        "{run}"
    );

    // The new generation is the repaired one, and it has the product made meanwhile.
    let mut repaired = env.product_rows().await;
    assert!(
        repaired.iter().any(|row| row.id == during),
        "made during the rebuild"
    );
    repaired.retain(|row| row.id != during);
    assert_eq!(repaired, products, "units sold as the events say");
    assert_eq!(
        generations(&http, &token, &base).await,
        [(2, "live".into()), (1, "retired".into())]
    );
    assert!(
        count(
            &env,
            "SELECT count(*) FROM rm_g1.products_view WHERE units_sold >= 1000"
        )
        .await
            > 0,
        "the old generation is kept as it was, for a rollback"
    );
    // The swapped-in tables carry the live tables' triggers, foreign keys and index names.
    assert_eq!(
        count(&env, "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'public.products_view'::regclass AND tgname = 'products_view_changes'").await,
        1
    );
    assert_eq!(
        count(&env, "SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND conrelid = 'public.order_lines_view'::regclass").await,
        1
    );
    assert_eq!(
        count(&env, "SELECT count(*) FROM pg_indexes WHERE schemaname = 'public' AND indexname IN ('products_view_sold_idx', 'users_view_email_idx', 'order_lines_view_product_idx')").await,
        3
    );
    // Documents now live in the new generation's key space; the old ones are removed.
    let mut redis = env.redis.connection().await;
    let prefix = env.settings().infra.redis_prefix;
    let new_document: Option<String> = redis::cmd("GET")
        .arg(format!("{prefix}:k2:product:{during}"))
        .query_async(&mut redis)
        .await
        .expect("redis");
    assert!(new_document.is_some(), "the new key space is filled");
    eventually(WAIT, "the old key space to be emptied", || async {
        let mut redis = env.redis.connection().await;
        let old: Option<String> = redis::cmd("GET")
            .arg(format!("{prefix}:product:{during}"))
            .query_async(&mut redis)
            .await
            .ok()?;
        old.is_none().then_some(())
    })
    .await;

    // The live projection goes on in the new generation.
    let (after, _) = env.create_product("Made after the swap", 1990, 5).await;
    env.publish_outbox().await;
    env.wait_for_product(after, 1).await;
    eventually(WAIT, "its document in the new key space", || async {
        let mut redis = env.redis.connection().await;
        let document: Option<String> = redis::cmd("GET")
            .arg(format!("{prefix}:k2:product:{after}"))
            .query_async(&mut redis)
            .await
            .ok()?;
        document
    })
    .await;

    // One run at a time; a live generation cannot be dropped.
    let busy = http
        .delete(format!("{base}/api/v1/projections/generations/2"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("drop live");
    assert_eq!(busy.status(), 409);

    // Rollback: generation 1 comes back caught up (it has the product made after the swap).
    let run = run_to_end(&http, &token, &base, "/api/v1/projections/generations/1/activate").await;
    assert_eq!(run["status"], "done", "{run}");
    assert_eq!(run["kind"], "activate");
    assert!(
        env.product_row(after).await.is_some(),
        "caught up from where it stopped"
    );
    assert_eq!(
        generations(&http, &token, &base).await,
        [(2, "retired".into()), (1, "live".into())]
    );

    let dropped = http
        .delete(format!(
            "{base}/api/v1/projections/generations/2?reason=done%20with%20it"
        ))
        .bearer_auth(&token)
        .send()
        .await
        .expect("drop");
    assert_eq!(dropped.status(), 200);
    assert_eq!(
        count(
            &env,
            "SELECT count(*) FROM information_schema.schemata WHERE schema_name = 'rm_g2'"
        )
        .await,
        0
    );
    let actions = count(
        &env,
        "SELECT count(*) FROM operator_actions WHERE action IN ('projection.rebuild', 'projection.activate', 'projection.drop')",
    )
    .await;
    assert_eq!(actions, 3, "every operator action is recorded");
    let user = env.token(Role::User).await;
    let refused = http
        .post(format!("{base}/api/v1/projections/rebuilds"))
        .bearer_auth(&user)
        .send()
        .await
        .expect("as a user");
    assert_eq!(refused.status(), 403);
    projector.stop().await;
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_rebuild_waits_for_the_first_and_a_bad_body_is_refused() {
    let env = TestEnv::new().await;
    random_shop(&env, 3, 10).await;
    let projector = env.start().await;
    env.publish_outbox().await;
    let http = reqwest::Client::new();
    let token = env.token(Role::Admin).await;
    let base = projector.url("");
    let bad = http
        .post(format!("{base}/api/v1/projections/rebuilds"))
        .bearer_auth(&token)
        .body("{\"reason\": 5}")
        .send()
        .await
        .expect("bad body");
    assert_eq!(bad.status(), 400);
    let first = http
        .post(format!("{base}/api/v1/projections/rebuilds"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("first");
    assert_eq!(first.status(), 202);
    let second = http
        .post(format!("{base}/api/v1/projections/rebuilds"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("second");
    assert_eq!(second.status(), 409);
    let status: Value = http
        .get(format!("{base}/api/v1/projections"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("status")
        .json()
        .await
        .expect("json");
    let states: Vec<&str> = status["data"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|p| p["state"].as_str())
        .collect();
    // The first run may already be done on so few events; while it runs, every
    // projection says so.
    assert!(
        states.iter().all(|s| *s == "rebuilding") || states.iter().all(|s| *s != "rebuilding"),
        "{status}"
    );
    eventually(WAIT, "the first run to end", || async {
        let runs: Value = http
            .get(format!("{base}/api/v1/projections/rebuilds"))
            .bearer_auth(&token)
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        (runs["data"][0]["status"] == "done").then_some(())
    })
    .await;
    projector.stop().await;
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebuild_whose_projector_died_is_marked_failed_and_its_tables_dropped_by_the_next() {
    let env = TestEnv::new().await;
    random_shop(&env, 2, 4).await;
    // What a projector killed while building generation 2 leaves behind.
    for sql in [
        "INSERT INTO read_model_generations (generation, keyspace, state) VALUES (2, 2, 'building')",
        "CREATE SCHEMA rm_g2",
        "CREATE TABLE rm_g2.users_view (LIKE public.users_view INCLUDING ALL)",
        "INSERT INTO projection_rebuilds (id, kind, generation, from_generation, actor_id, phase, updated_at)
         VALUES (gen_random_uuid(), 'rebuild', 2, 1, gen_random_uuid(), 'replaying', now() - interval '5 minutes')",
    ] {
        sqlx::query(sql).execute(&env.db.pool).await.expect(sql);
    }
    let projector = env.start().await;
    env.publish_outbox().await;
    let http = reqwest::Client::new();
    let token = env.token(Role::Admin).await;
    let base = projector.url("");
    let runs: Value = http
        .get(format!("{base}/api/v1/projections/rebuilds"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("runs")
        .json()
        .await
        .expect("json");
    assert_eq!(runs["data"][0]["stalled"], true, "{runs}");

    let run = run_to_end(&http, &token, &base, "/api/v1/projections/rebuilds").await;
    assert_eq!(run["status"], "done", "{run}");
    assert_eq!(run["generation"], 3);
    assert_eq!(
        generations(&http, &token, &base).await,
        [(3, "live".into()), (2, "failed".into()), (1, "retired".into())]
    );
    assert_eq!(
        count(
            &env,
            "SELECT count(*) FROM information_schema.schemata WHERE schema_name = 'rm_g2'"
        )
        .await,
        0,
        "what the dead run built is dropped"
    );
    let abandoned: String = sqlx::query_scalar("SELECT error FROM projection_rebuilds WHERE generation = 2")
        .fetch_one(&env.db.pool)
        .await
        .expect("the abandoned run");
    assert!(abandoned.contains("abandoned"), "{abandoned}");
    projector.stop().await;
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebuild_whose_counts_do_not_add_up_is_not_swapped_in() {
    let env = TestEnv::new().await;
    let script = random_shop(&env, 2, 4).await;
    let projector = env.start().await;
    env.publish_outbox().await;
    eventually(WAIT, "the live projection", || async {
        script
            .matches(&env.product_rows().await, &env.order_rows().await)
            .then_some(())
    })
    .await;
    // A live row no event justifies: the new generation cannot have it, so it must not
    // replace the live one silently.
    sqlx::query(
        "INSERT INTO users_view (id, email, name, role, version, created_at, updated_at)
         VALUES (gen_random_uuid(), 'ghost@example.com', 'Ghost', 'user', 1, now(), now())",
    )
    .execute(&env.db.pool)
    .await
    .expect("ghost row");
    let http = reqwest::Client::new();
    let token = env.token(Role::Admin).await;
    let base = projector.url("");
    let run = run_to_end(&http, &token, &base, "/api/v1/projections/rebuilds").await;
    assert_eq!(run["status"], "failed", "{run}");
    assert!(
        run["error"].as_str().unwrap_or("").contains("do not add up"),
        "{run}"
    );
    assert_eq!(
        generations(&http, &token, &base).await,
        [(2, "failed".into()), (1, "live".into())]
    );
    assert_eq!(
        count(&env, "SELECT count(*) FROM users_view WHERE name = 'Ghost'").await,
        1,
        "the live generation is untouched"
    );
    assert_eq!(
        count(
            &env,
            "SELECT count(*) FROM information_schema.schemata WHERE schema_name = 'rm_g2'"
        )
        .await,
        0
    );
    projector.stop().await;
    env.cleanup().await;
}
