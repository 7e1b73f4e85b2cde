//! The operator console in headless Chromium (Debian's `chromium`, driven by npm's
//! playwright-core; `scripts/console-deps` installs both): an administrator signs in,
//! sees the projections, consumers and dead letters, filters them, inspects one,
//! discards it with a reason, retries the rest in one bulk run followed to its end, and
//! finds every action in the audit list. Screenshots of each step are kept in the
//! directory the test prints.

mod support;

use serde_json::json;
use std::path::PathBuf;
use std::time::Duration;
use support::{ADMIN_EMAIL, ADMIN_PASSWORD, Stack};
use testkit::eventually;

fn node_modules() -> PathBuf {
    let dir = std::env::var_os("CONSOLE_NODE_MODULES")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let cache = std::env::var_os("XDG_CACHE_HOME")
                .map(PathBuf::from)
                .unwrap_or_else(|| {
                    PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache")
                });
            cache.join("cqrs-console/node_modules")
        });
    assert!(
        dir.join("playwright-core").is_dir(),
        "playwright-core is not in {}: run scripts/console-deps (./dev test does)",
        dir.display()
    );
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_administrator_works_the_dead_letters_from_the_console_in_a_browser() {
    let modules = node_modules();
    let mut stack = Stack::start().await;
    let console = stack
        .spawn_command_api(
            "console-command-api",
            &[
                ("CONSOLE_WORKERS_URL", stack.workers.clone()),
                ("CONSOLE_PROJECTOR_URL", stack.projector.clone()),
            ],
        )
        .await;
    let http = reqwest::Client::new();
    stack.smtp.refuse_next(usize::MAX);
    for name in ["ann", "ben", "cat"] {
        let response = http
            .post(format!("{}/api/v1/auth/register", stack.command))
            .json(
                &json!({"email": format!("{name}@example.com"), "name": name, "password": "console-pass-1"}),
            )
            .send()
            .await
            .expect("register");
        assert_eq!(response.status(), 201);
    }
    eventually(
        Duration::from_secs(60),
        "three welcome-email dead letters",
        || async {
            let dead: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM dead_letters WHERE effect = 'welcome_email' AND status = 'dead'",
            )
            .fetch_one(&stack.db.pool)
            .await
            .ok()?;
            (dead == 3).then_some(())
        },
    )
    .await;
    stack.smtp.refuse_next(0);

    let shots = std::env::temp_dir().join(format!("console-screenshots-{}", testkit::unique_suffix()));
    std::fs::create_dir_all(&shots).expect("screenshot dir");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/console/console.cjs");
    let output = tokio::process::Command::new("node")
        .arg(script)
        .env("NODE_PATH", &modules)
        .env("CONSOLE_URL", &console)
        .env("ADMIN_EMAIL", ADMIN_EMAIL)
        .env("ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env("SCREENSHOTS", &shots)
        .output()
        .await
        .expect("node runs");
    println!("console screenshots: {}", shots.display());
    assert!(
        output.status.success(),
        "the browser run failed (screenshots in {}):\n{}\n{}",
        shots.display(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    for name in [
        "01-sign-in",
        "02-overview",
        "03-inspect",
        "04-retried",
        "05-audit",
        "06-rebuilt",
    ] {
        let png = std::fs::read(shots.join(format!("{name}.png"))).expect("a screenshot");
        assert!(png.starts_with(b"\x89PNG"), "{name} is a PNG");
    }

    // What the page showed is what happened.
    let statuses: Vec<(String, i64)> = sqlx::query_as(
        "SELECT status, count(*) FROM dead_letters WHERE effect = 'welcome_email' GROUP BY status ORDER BY status",
    )
    .fetch_all(&stack.db.pool)
    .await
    .expect("statuses");
    assert_eq!(
        statuses,
        [("discarded".to_owned(), 1), ("resolved".to_owned(), 2)]
    );
    let audited: Vec<String> = sqlx::query_scalar("SELECT action FROM operator_actions ORDER BY at, id")
        .fetch_all(&stack.db.pool)
        .await
        .expect("actions");
    assert_eq!(
        audited,
        [
            "dead_letter.discard",
            "dead_letter.retry_all",
            "dead_letter.retry",
            "dead_letter.retry",
            "projection.rebuild"
        ]
    );
    let live: i64 = sqlx::query_scalar("SELECT generation FROM read_model_generations WHERE state = 'live'")
        .fetch_one(&stack.db.pool)
        .await
        .expect("live generation");
    assert_eq!(live, 2, "the rebuild started on the page was swapped in");
}
