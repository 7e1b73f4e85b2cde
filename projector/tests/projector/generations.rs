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

    // Orders keep coming while the run goes on (each takes stock from a product too).
    let finished = AtomicBool::new(false);
    let placed = AtomicU64::new(0);
    let ids: Vec<_> = products.iter().map(|row| row.id).collect();
    let (run, ()) = tokio::join!(
        async {
            let run = run_to_end(&http, &token, &base, "/api/v1/projections/rebuilds").await;
            finished.store(true, Ordering::Relaxed);
            run
        },
        async {
            let mut k = 0;
            while !finished.load(Ordering::Relaxed) {
                env.place_order(&[(ids[k % ids.len()], 1)]).await;
                env.publish_outbox().await;
                placed.fetch_add(1, Ordering::Relaxed);
                k += 1;
            }
        }
    );
    reading.store(false, Ordering::Relaxed);
    reader.await.expect("reader");
    assert!(reads.load(Ordering::Relaxed) > 0);
    assert!(
        placed.load(Ordering::Relaxed) > 0,
        "orders were placed during the run"
    );
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

    // Once the live projection is idle, the new generation holds every stream at the
    // store's version, and its units sold are what the orders say (the +1000 is gone).
    env.wait_until_all_idle().await;
    let consistent = || async {
        eventually(WAIT, "every row at its stream's version, units sold from the orders", || async {
            let behind = count(
                &env,
                "SELECT count(*) FROM (SELECT stream_id, max(stream_version) AS v FROM events
                  WHERE stream_type IN ('product', 'order') GROUP BY stream_id) e
                 LEFT JOIN (SELECT id, version FROM products_view UNION ALL SELECT id, version FROM orders_view) r
                   ON r.id = e.stream_id
                 WHERE r.version IS DISTINCT FROM e.v",
            )
            .await;
            let wrong = count(
                &env,
                "SELECT count(*) FROM products_view p WHERE p.units_sold <> (
                     SELECT coalesce(sum(l.quantity), 0) FROM order_lines_view l
                     JOIN orders_view o ON o.id = l.order_id AND o.status = 'placed'
                     WHERE l.product_id = p.id)",
            )
            .await;
            (behind == 0 && wrong == 0).then_some(())
        })
        .await
    };
    consistent().await;
    let repaired = env.product_rows().await;
    assert!(
        repaired.iter().any(|row| row.id == during),
        "made during the rebuild"
    );
    assert!(repaired.iter().all(|row| row.units_sold < 1000), "repaired");
    // Its document in the new key space is the row as Postgres has it.
    let mut redis = env.redis.connection().await;
    let prefix = env.settings().infra.redis_prefix;
    let busiest = repaired.iter().max_by_key(|row| row.version).expect("a product");
    let document = eventually(WAIT, "the busiest product's document at its version", || async {
        let mut redis = env.redis.connection().await;
        let raw: Option<String> = redis::cmd("GET")
            .arg(format!("{prefix}:k2:product:{}", busiest.id))
            .query_async(&mut redis)
            .await
            .ok()?;
        let document: Value = serde_json::from_str(&raw?).ok()?;
        (document["version"] == busiest.version).then_some(document)
    })
    .await;
    assert_eq!(document["product"]["stock"], busiest.stock, "{document}");
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
    consistent().await;
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
async fn one_rebuild_runs_at_a_time_shown_as_rebuilding_and_bad_bodies_are_refused() {
    let env = TestEnv::new().await;
    random_shop(&env, 3, 10).await;
    let projector = env.start().await;
    env.publish_outbox().await;
    let http = reqwest::Client::new();
    let token = env.token(Role::Admin).await;
    let base = projector.url("");
    let url = format!("{base}/api/v1/projections/rebuilds");
    let not_json = http
        .post(&url)
        .bearer_auth(&token)
        .body("{\"reason\": \"x\"}")
        .send()
        .await
        .expect("send");
    assert_eq!(not_json.status(), 415);
    let bad = http
        .post(&url)
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body("{\"reason\": 5}")
        .send()
        .await
        .expect("send");
    assert_eq!(bad.status(), 400);
    let long = http
        .post(&url)
        .bearer_auth(&token)
        .json(&json!({"reason": "x".repeat(501)}))
        .send()
        .await
        .expect("send");
    assert_eq!(long.status(), 400);

    // An operator's transaction holds the projection lock: the run waits at its swap.
    let mut holder = env.db.pool.acquire().await.expect("connection");
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(projector::store::PROJECTION_LOCK)
        .execute(&mut *holder)
        .await
        .expect("lock");
    let first = http.post(&url).bearer_auth(&token).send().await.expect("first");
    assert_eq!(first.status(), 202);
    let first: Value = first.json().await.expect("json");
    let second = http.post(&url).bearer_auth(&token).send().await.expect("second");
    assert_eq!(second.status(), 409);
    let body: Value = second.json().await.expect("json");
    assert_eq!(body["error"]["code"], "CONFLICT");
    let status = eventually(WAIT, "the run at its swap", || async {
        let status: Value = http
            .get(format!("{base}/api/v1/projections"))
            .bearer_auth(&token)
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        (status["data"][0]["rebuild"]["phase"] == "swapping").then_some(status)
    })
    .await;
    let projections = status["data"].as_array().expect("list");
    assert!(projections.iter().all(|p| p["state"] == "rebuilding"), "{status}");
    assert_eq!(projections[0]["rebuild"]["id"], first["data"]["id"]);
    sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(projector::store::PROJECTION_LOCK)
        .execute(&mut *holder)
        .await
        .expect("unlock");
    drop(holder);
    eventually(WAIT, "the run to end", || async {
        let runs: Value = http
            .get(&url)
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
