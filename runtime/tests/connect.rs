//! The pool's statement timeout: every pooled connection stops a statement that runs
//! longer, with the SQL state the APIs answer 503 for.

use std::time::{Duration, Instant};
use testkit::TestDb;

#[tokio::test(flavor = "multi_thread")]
async fn pooled_connections_carry_the_request_timeout_as_statement_timeout() {
    let db = TestDb::new().await;
    let shown: String = sqlx::query_scalar("SHOW statement_timeout")
        .fetch_one(&db.pool)
        .await
        .expect("show");
    assert_eq!(shown, "10s", "the default request timeout");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_statement_over_the_timeout_is_cancelled_with_57014() {
    let db = TestDb::new().await;
    let pool = runtime::connect_postgres_with(&db.url, 2, Duration::from_millis(300))
        .await
        .expect("connect");
    let started = Instant::now();
    let error = sqlx::query("SELECT pg_sleep(5)")
        .execute(&pool)
        .await
        .expect_err("cancelled");
    assert!(started.elapsed() < Duration::from_secs(3), "stopped early");
    let code = error
        .as_database_error()
        .and_then(|e| e.code().map(|c| c.into_owned()));
    assert_eq!(code.as_deref(), Some("57014"), "{error}");
    let quick: i32 = sqlx::query_scalar("SELECT 1")
        .fetch_one(&pool)
        .await
        .expect("still usable");
    assert_eq!(quick, 1);
    pool.close().await;
}
