//! What every handler shares: the Postgres pool, the Redis handle, the token verifier,
//! the cached user reads and the best-seller ranking. Cheap to clone (handles and `Arc`s only).

use crate::Settings;
use crate::lookup::UserLookup;
use crate::products::BestSellers;
use auth::{Authority, TokenVerifier};
use axum::extract::FromRef;
use readmodels::users::UserCache;
use runtime::RedisHandle;
use sqlx::PgPool;
use std::sync::Arc;
use web::HttpSettings;

/// Shared state of the query API.
#[derive(Clone)]
pub struct AppState {
    /// The read models.
    pub pool: PgPool,
    /// The hot copy of the read models (may be down).
    pub redis: RedisHandle,
    /// Checks access tokens; this service cannot mint any.
    pub verifier: Arc<TokenVerifier>,
    /// Callers' current role and existence on the write side, read when a request uses
    /// admin powers.
    pub authority: Authority,
    /// Single-user reads through the cache.
    pub users: Arc<UserLookup>,
    /// Best sellers from Redis, or Postgres when Redis cannot answer.
    pub best_sellers: Arc<BestSellers>,
    /// Limits and policies applied by [`web::harden`].
    pub http: Arc<HttpSettings>,
}

impl AppState {
    /// The state of a service configured by `settings`.
    pub fn new(settings: &Settings, pool: PgPool, redis: RedisHandle) -> Self {
        let cache = UserCache::new(settings.redis_prefix.clone(), settings.cache_ttl);
        Self {
            verifier: Arc::new(TokenVerifier::new(pool.clone(), &settings.jwt_issuer)),
            authority: Authority::new(pool.clone()),
            users: Arc::new(UserLookup::new(
                pool.clone(),
                redis.clone(),
                cache,
                settings.negative_cache_ttl,
            )),
            best_sellers: Arc::new(BestSellers::new(
                pool.clone(),
                redis.clone(),
                &settings.redis_prefix,
            )),
            http: Arc::new(settings.http.clone()),
            pool,
            redis,
        }
    }
}

impl FromRef<AppState> for Arc<TokenVerifier> {
    fn from_ref(state: &AppState) -> Self {
        state.verifier.clone()
    }
}

impl FromRef<AppState> for Authority {
    fn from_ref(state: &AppState) -> Self {
        state.authority.clone()
    }
}
