//! The operator command line (`ops`) against the running stack: status of projections and
//! consumers, dead letters listed, one discarded with a reason, the rest retried in one go,
//! and the record of what was done, all as JSON for scripts.

mod support;

use serde_json::{Value, json};
use std::path::PathBuf;
use std::time::Duration;
use support::{ADMIN_EMAIL, ADMIN_PASSWORD, Stack};
use testkit::eventually;

fn ops_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe.parent().and_then(|p| p.parent()).expect("target directory");
    let path = dir.join("ops");
    assert!(
        path.exists(),
        "{} is missing: cargo build --workspace --bins",
        path.display()
    );
    path
}

/// Runs `ops --json <args>` against the stack; what it printed and how it exited.
fn run_ops(stack: &Stack, args: &[&str]) -> std::process::Output {
    std::process::Command::new(ops_binary())
        .arg("--json")
        .args(args)
        .env("OPS_COMMAND_URL", &stack.command)
        .env("OPS_WORKERS_URL", &stack.workers)
        .env("OPS_PROJECTOR_URL", &stack.projector)
        .env("ADMIN_EMAIL", ADMIN_EMAIL)
        .env("ADMIN_PASSWORD", ADMIN_PASSWORD)
        .output()
        .expect("ops runs")
}

/// Runs `ops --json <args>`; its exit status and parsed output.
fn ops(stack: &Stack, args: &[&str]) -> (bool, Value) {
    let output = run_ops(stack, args);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let value = serde_json::from_str(&stdout).unwrap_or_else(|_| {
        panic!(
            "ops {args:?} printed no JSON: {stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    (output.status.success(), value)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_sees_the_state_discards_one_dead_letter_and_retries_the_rest() {
    let stack = Stack::start().await;
    let http = reqwest::Client::new();
    stack.smtp.refuse_next(usize::MAX);
    for name in ["ada", "bob", "cyd"] {
        let response = http
            .post(format!("{}/api/v1/auth/register", stack.command))
            .json(&json!({"email": format!("{name}@example.com"), "name": name, "password": "operate1234x"}))
            .send()
            .await
            .expect("register");
        assert_eq!(response.status(), 201);
    }
    let dead = eventually(Duration::from_secs(60), "three dead letters", || async {
        let (ok, listed) = ops(&stack, &["dead-letters", "list", "--effect", "welcome_email"]);
        (ok && listed.as_array().map(Vec::len) == Some(3)).then_some(listed)
    })
    .await;
    let ids: Vec<String> = dead
        .as_array()
        .expect("list")
        .iter()
        .map(|d| d["id"].as_str().expect("id").to_owned())
        .collect();

    let (ok, filtered) = ops(
        &stack,
        &[
            "dead-letters",
            "list",
            "--error",
            "no-such-error",
            "--newer-than",
            "1h",
        ],
    );
    assert!(ok, "{filtered}");
    assert_eq!(filtered, json!([]));
    let (ok, recent) = ops(
        &stack,
        &["dead-letters", "list", "--newer-than", "1h", "--error", "smtp"],
    );
    assert!(ok, "{recent}");
    assert_eq!(recent.as_array().map(Vec::len), Some(3), "{recent}");
    let (ok, old) = ops(&stack, &["dead-letters", "list", "--older-than", "1h"]);
    assert!(ok, "{old}");
    assert_eq!(old, json!([]));
    let refused = run_ops(&stack, &["dead-letters", "list", "--older-than", "soon"]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "a bad age is refused: {stderr}");
    assert!(
        stderr.contains("olderThan"),
        "the error names the filter: {stderr}"
    );

    let (ok, status) = ops(&stack, &["status"]);
    assert!(ok, "{status}");
    assert_eq!(status["deadLetters"], 3);
    let projections: Vec<&str> = status["projections"]
        .as_array()
        .expect("projections")
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert_eq!(projections, ["users", "products", "orders", "reviews"]);
    assert!(status["projections"][0]["lagSeconds"].is_number(), "{status}");
    assert!(
        status["consumers"]
            .as_array()
            .expect("consumers")
            .iter()
            .any(|c| c["name"] == "workers-welcome-email")
    );

    let (ok, shown) = ops(&stack, &["dead-letters", "show", &ids[0]]);
    assert!(ok);
    assert_eq!(shown["event"]["type"], "user.registered");
    let (ok, _) = ops(
        &stack,
        &["dead-letters", "discard", &ids[0], "--reason", "test account"],
    );
    assert!(ok);

    stack.smtp.refuse_next(0);
    let (ok, retried) = ops(&stack, &["dead-letters", "retry", "--all"]);
    assert!(ok, "{retried}");
    assert_eq!(
        (retried["processed"].clone(), retried["resolved"].clone()),
        (json!(2), json!(2))
    );
    assert_eq!(retried["status"], "done");
    let (_, left) = ops(&stack, &["dead-letters", "list"]);
    assert_eq!(left, json!([]));

    let (ok, audit) = ops(&stack, &["audit"]);
    assert!(ok);
    let done: Vec<(&str, &str)> = audit
        .as_array()
        .expect("actions")
        .iter()
        .map(|a| {
            (
                a["action"].as_str().unwrap_or(""),
                a["outcome"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        done,
        [
            ("dead_letter.retry", "resolved"),
            ("dead_letter.retry", "resolved"),
            ("dead_letter.retry_all", "started"),
            ("dead_letter.discard", "discarded")
        ]
    );
    assert_eq!(audit[3]["reason"], "test account");
}
