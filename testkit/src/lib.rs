//! Test support for integration and end-to-end tests: a fresh database per test,
//! isolated NATS stream and Redis key names, a real SMTP server that records what it
//! receives, private nats-server and redis-server processes, and waiting helpers. Never used by production code.

mod db;
mod nats;
mod redis_server;
mod smtp;

pub use db::TestDb;
pub use nats::{NatsServer, TestNats, TestRedis};
pub use redis_server::RedisServer;
pub use smtp::{ReceivedMail, SmtpServer};

use std::future::Future;
use std::time::Duration;

/// Polls `probe` until it returns `Some`, or panics with `what` after `timeout`.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        if tokio::time::Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// An access token for a new user who has `role` now: their write-side authority row is
/// written first, as the command API does on registration, so the services' current
/// authority checks accept it.
pub async fn token_with_authority(
    pool: &sqlx::PgPool,
    issuer: &auth::TokenIssuer,
    role: domain::user::Role,
) -> String {
    let id = uuid::Uuid::now_v7();
    let mut conn = pool.acquire().await.expect("connection");
    auth::authority::record_role(&mut conn, id, role)
        .await
        .expect("authority row");
    issuer.issue(id, role).expect("token").token
}

/// A short unique suffix for names shared servers must not mix up.
pub fn unique_suffix() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..12].to_owned()
}
