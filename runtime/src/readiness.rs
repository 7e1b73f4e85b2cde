//! Readiness checks of the shared connections (for `web::Readiness::check`), one per
//! kind of dependency, so every service's `/health/ready` judges NATS and Redis alike.

use crate::changes::ChangeFeed;
use crate::redis::RedisHandle;
use std::future::Future;
use std::pin::Pin;

/// What one readiness check answers: `Err` says why the dependency is not ready.
pub type CheckFuture = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;

/// A readiness check for a NATS client: up while connected.
pub fn nats_check(client: async_nats::Client) -> impl Fn() -> CheckFuture + Send + Sync + 'static {
    move || {
        let state = client.connection_state();
        Box::pin(async move {
            match state {
                async_nats::connection::State::Connected => Ok(()),
                other => Err(format!("not connected ({other:?})")),
            }
        })
    }
}

/// A readiness check for Redis: a `PING` through the shared handle, bounded by its call
/// deadline, and answered at once while its breaker is open.
pub fn redis_check(redis: RedisHandle) -> impl Fn() -> CheckFuture + Send + Sync + 'static {
    move || {
        let redis = redis.clone();
        Box::pin(async move { redis.ping().await })
    }
}

/// A readiness check for a change feed: up while it is listening and every table's
/// changes are told (otherwise the caches over it read through, so it is never critical).
pub fn changes_check(feed: ChangeFeed) -> impl Fn() -> CheckFuture + Send + Sync + 'static {
    move || {
        let status = feed.status();
        Box::pin(async move { status })
    }
}
