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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_rebuilds_the_read_models_while_clients_keep_reading_and_writing() {
    let stack = Stack::start().await;
    let http = reqwest::Client::new();
    let registered = http
        .post(format!("{}/api/v1/auth/register", stack.command))
        .json(&json!({"email": "lin@example.com", "name": "Lin", "password": "kernel1991x"}))
        .send()
        .await
        .expect("register");
    assert_eq!(registered.status(), 201);
    let user: Value = registered.json().await.expect("json");
    let user = user["data"]["id"].as_str().expect("id").to_owned();
    let login: Value = http
        .post(format!("{}/api/v1/auth/login", stack.command))
        .json(&json!({"email": "lin@example.com", "password": "kernel1991x"}))
        .send()
        .await
        .expect("login")
        .json()
        .await
        .expect("json");
    let token = login["data"]["accessToken"].as_str().expect("token").to_owned();
    let me_url = format!("{}/api/v1/me", stack.query);
    let (me_http, me_token) = (http.clone(), token.clone());
    let me = move |consistency: Option<String>| {
        let (http, token, url) = (me_http.clone(), me_token.clone(), me_url.clone());
        async move {
            let mut request = http.get(url).bearer_auth(token);
            if let Some(consistency) = consistency {
                request = request.header("X-Consistency-Token", consistency);
            }
            request.send().await.expect("me")
        }
    };
    testkit::eventually(
        std::time::Duration::from_secs(20),
        "the user read back",
        || async { (me(None).await.status() == 200).then_some(()) },
    )
    .await;

    // A client reads all through the rebuild: never an error, never without the user.
    let reading = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let reader = {
        let reading = reading.clone();
        let me = me.clone();
        tokio::spawn(async move {
            let mut reads = 0;
            while reading.load(std::sync::atomic::Ordering::Relaxed) {
                let answer = me(None).await;
                assert_eq!(answer.status(), 200, "a read during the rebuild");
                reads += 1;
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
            reads
        })
    };
    let (ok, run) = ops(
        &stack,
        &["projections", "rebuild", "--reason", "new projection code"],
    );
    reading.store(false, std::sync::atomic::Ordering::Relaxed);
    let reads = reader.await.expect("reader");
    assert!(ok, "{run}");
    assert!(reads > 0);
    assert_eq!(run["status"], "done", "{run}");
    assert_eq!(run["generation"], 2);
    assert!(
        run["checks"]
            .as_array()
            .expect("checks")
            .iter()
            .all(|c| c["passed"] == true),
        "{run}"
    );

    // Writes after the swap are read back at once from the new generation.
    let renamed = http
        .patch(format!("{}/api/v1/users/{user}", stack.command))
        .bearer_auth(&token)
        .json(&json!({"name": "Lin Two"}))
        .send()
        .await
        .expect("rename");
    assert_eq!(renamed.status(), 200);
    let consistency = renamed
        .headers()
        .get("x-consistency-token")
        .and_then(|v| v.to_str().ok())
        .expect("a consistency token")
        .to_owned();
    let read: Value = me(Some(consistency)).await.json().await.expect("json");
    assert_eq!(read["data"]["name"], "Lin Two");

    let (ok, generations) = ops(&stack, &["projections", "generations"]);
    assert!(ok, "{generations}");
    let states: Vec<(i64, &str)> = generations
        .as_array()
        .expect("generations")
        .iter()
        .map(|g| {
            (
                g["generation"].as_i64().unwrap_or(0),
                g["state"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(states, [(2, "live"), (1, "retired")]);
    let (ok, runs) = ops(&stack, &["projections", "rebuilds"]);
    assert!(ok);
    assert_eq!(runs[0]["reason"], "new projection code");
    let (ok, dropped) = ops(&stack, &["projections", "drop", "1", "--reason", "fine"]);
    assert!(ok, "{dropped}");
    assert_eq!(dropped["state"], "dropped");
    let refused = run_ops(&stack, &["projections", "activate", "1"]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success());
    assert!(
        stderr.contains("409"),
        "a dropped generation cannot come back: {stderr}"
    );
}
