//! Crash safety of the real binary: SIGKILL at random moments, restart, and every event
//! is still applied exactly once, in stream order, in every projection.

use crate::scripts::{Script, all_match, append_all, random_script};
use crate::shop_scripts::random_shop;
use crate::support::{TestEnv, WAIT};
use rand::Rng;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;
use testkit::eventually;

/// The projector binary, killed when dropped (also when the test fails).
struct Process(Child);

impl Process {
    fn spawn(env: &TestEnv) -> Self {
        let child = Command::new(env!("CARGO_BIN_EXE_projector"))
            .env("DATABASE_URL", &env.db.url)
            .env("NATS_URL", &env.nats.url)
            .env("REDIS_URL", &env.redis.url)
            .env("REDIS_KEY_PREFIX", &env.redis.prefix)
            .env("EVENTS_STREAM", &env.nats.stream.name)
            .env("EVENTS_SUBJECT_PREFIX", &env.nats.stream.subject_prefix)
            .env("BIND_ADDRESS", "127.0.0.1")
            .env("PROJECTOR_PORT", "0")
            .env("PROJECTOR_CONCURRENCY", "2")
            .env("RUST_LOG", "error")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the projector binary");
        Self(child)
    }

    fn kill(mut self) {
        self.0.kill().expect("SIGKILL");
        self.0.wait().expect("reap");
    }

    fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status()
            .expect("kill -TERM");
        assert!(status.success());
    }

    fn try_wait(&mut self) -> Option<ExitStatus> {
        self.0.try_wait().expect("try_wait")
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn progress(env: &TestEnv) -> i64 {
    sqlx::query_scalar(
        "SELECT ((SELECT coalesce(sum(version), 0) FROM users_view)
               + (SELECT coalesce(sum(version), 0) FROM products_view)
               + (SELECT coalesce(sum(version), 0) FROM orders_view))::int8",
    )
    .fetch_one(&env.db.pool)
    .await
    .expect("progress")
}

async fn documents_match(env: &TestEnv, scripts: &[Script]) -> bool {
    for script in scripts {
        let Some(doc) = env.document(script.id).await else {
            return false;
        };
        let expected = &script.expected;
        let user = &doc["user"];
        let matches = doc["version"] == expected.version
            && if expected.deleted {
                doc["deleted"] == true && user.is_null()
            } else {
                user["email"].as_str() == expected.email.as_deref()
                    && user["name"].as_str() == expected.name.as_deref()
                    && user["role"] == expected.role.as_str()
            };
        if !matches {
            return false;
        }
    }
    true
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_projector_binary_killed_at_random_moments_applies_every_event_exactly_once() {
    let env = TestEnv::new().await;
    let scripts: Vec<_> = (0..300).map(|i| random_script(i, 6)).collect();
    append_all(&env, &scripts).await;
    let shop = random_shop(&env, 10, 150).await;
    env.publish_outbox().await;
    // Every stream's last version is its number of events.
    let done: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&env.db.pool)
        .await
        .expect("events");

    let mut seen = 0;
    for _ in 0..4 {
        let process = Process::spawn(&env);
        // Kill only once this run has committed something (or everything is done), at a
        // random moment after that: between commits, inside a transaction, before an ack.
        // What is left may all be held by the killed runs (a batch's worth of messages per
        // consumer each), delivered again only after the ack wait.
        seen = eventually(
            projector::ACK_WAIT + Duration::from_secs(30),
            "the projector to make progress",
            || async {
                let now = progress(&env).await;
                (now > seen || now == done).then_some(now)
            },
        )
        .await;
        let pause = rand::rng().random_range(0..200);
        tokio::time::sleep(Duration::from_millis(pause)).await;
        eprintln!("kill at progress {seen}/{done} after {pause}ms");
        process.kill();
    }

    let mut process = Process::spawn(&env);
    // Messages in flight at a kill come back after the ack wait (30 s).
    eventually(
        Duration::from_secs(90),
        "every user projected exactly once",
        || async { all_match(&scripts, &env.rows().await).then_some(()) },
    )
    .await;
    // The shop's consumers may hold messages of the last killed run too, and users can be
    // done before those come back: the same bound as above.
    eventually(
        projector::ACK_WAIT + Duration::from_secs(30),
        "every product and order projected exactly once",
        || async {
            shop.matches(&env.product_rows().await, &env.order_rows().await)
                .then_some(())
        },
    )
    .await;
    eventually(WAIT, "every Redis document up to date", || async {
        documents_match(&env, &scripts).await.then_some(())
    })
    .await;
    eventually(WAIT, "the best-seller set up to date", || async {
        (env.top().await == shop.top()).then_some(())
    })
    .await;

    process.terminate();
    let deadline = tokio::time::Instant::now() + WAIT;
    let status = loop {
        if let Some(status) = process.try_wait() {
            break status;
        }
        assert!(tokio::time::Instant::now() < deadline, "no exit after SIGTERM");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "graceful shutdown exits cleanly: {status}");
    assert!(all_match(&scripts, &env.rows().await));
    assert!(shop.matches(&env.product_rows().await, &env.order_rows().await));
    env.cleanup().await;
}
