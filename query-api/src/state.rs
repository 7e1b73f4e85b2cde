//! What every handler shares: the Postgres pool, the Redis handle, the token verifier,
//! the cached single reads (users, products, orders), the page cache and the best-seller
//! ranking. Cheap to clone
//! (handles and `Arc`s only).

use crate::Settings;
use crate::cursor::CursorScope;
use crate::lookup::Lookup;
use crate::pagination::Listing;
use crate::products::BestSellers;
use auth::{Authority, TokenVerifier};
use axum::extract::FromRef;
use readmodels::cache::{Cached, DocumentCache, Keyspace};
use readmodels::orders::OrderView;
use readmodels::products::ProductView;
use readmodels::users::UserView;
use runtime::{ChangeFeed, RedisHandle, StampedCache};
use sqlx::PgPool;
use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;
use web::rate_limit::{Caller, Limiter, RouteLimit};
use web::{ApiError, ApiResponse, HttpSettings};

/// Pages remembered by one process.
pub const CACHED_PAGES: usize = 10_000;
/// The longest a remembered page is served even without any change told.
pub const CACHED_PAGE_MAX_AGE: Duration = Duration::from_secs(60);

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
    /// admin powers (never remembered: see the README's "Authority is current").
    pub authority: Authority,
    /// Tells which tables changed, for the page cache.
    pub changes: ChangeFeed,
    /// List answers, remembered until one of their tables changes.
    pub pages: Arc<StampedCache<String, ApiResponse>>,
    /// Single-user reads through the cache.
    pub users: Arc<Lookup<UserView>>,
    /// Single-product reads through the cache.
    pub products: Arc<Lookup<ProductView>>,
    /// Single-order reads through the cache.
    pub orders: Arc<Lookup<OrderView>>,
    /// Best sellers from Redis, or Postgres when Redis cannot answer.
    pub best_sellers: Arc<BestSellers>,
    /// Limits and policies applied by [`web::harden`].
    pub http: Arc<HttpSettings>,
    /// The API-wide rate limit (`API_RATE_LIMIT`).
    pub rate_limit: RouteLimit,
    /// The longest a read waits for its `X-Consistency-Token` (`CONSISTENCY_WAIT_MS`).
    pub consistency_wait: Duration,
}

impl AppState {
    /// The state of a service configured by `settings`.
    pub fn new(settings: &Settings, pool: PgPool, redis: RedisHandle) -> Self {
        let changes = ChangeFeed::listen(&pool);
        let keyspace = follow_live_keyspace(pool.clone());
        let verifier = Arc::new(TokenVerifier::new(pool.clone(), &settings.jwt_issuer));
        Self {
            verifier: verifier.clone(),
            authority: Authority::new(pool.clone()),
            pages: Arc::new(StampedCache::new(
                changes.clone(),
                CACHED_PAGES,
                CACHED_PAGE_MAX_AGE,
            )),
            changes,
            users: lookup(settings, &pool, &redis, &keyspace),
            products: lookup(settings, &pool, &redis, &keyspace),
            orders: lookup(settings, &pool, &redis, &keyspace),
            best_sellers: Arc::new(BestSellers::new(
                pool.clone(),
                redis.clone(),
                &settings.redis_prefix,
            )),
            http: Arc::new(settings.http.clone()),
            consistency_wait: settings.consistency_wait,
            rate_limit: RouteLimit::new(
                Limiter::new(redis.clone(), settings.redis_prefix.clone()),
                "query-api",
                settings.api_rate_limit,
                Caller::UserOrAddress(verifier.clone()),
                settings.trust_forwarded_for,
            ),
            pool,
            redis,
        }
    }
}

/// How often the query API reads which read-model generation is live.
const KEYSPACE_POLL: Duration = Duration::from_millis(250);

/// The Redis key space of the live read-model generation, read from Postgres every
/// [`KEYSPACE_POLL`] by a task of its own (the last one read is kept while Postgres does
/// not answer). After a rebuild swaps generations, documents are read from the new key
/// space within that interval; until then from the old one, which holds the documents as
/// they were at the swap.
fn follow_live_keyspace(pool: PgPool) -> Keyspace {
    let keyspace = Keyspace::default();
    let follower = keyspace.clone();
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(KEYSPACE_POLL);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let live: Result<Option<i64>, sqlx::Error> =
                sqlx::query_scalar("SELECT keyspace FROM read_model_generations WHERE state = 'live'")
                    .fetch_optional(&pool)
                    .await;
            match live {
                Ok(Some(space)) if space != follower.get() => {
                    tracing::info!(
                        keyspace = space,
                        "read models: documents now read from a new key space"
                    );
                    follower.set(space);
                }
                Ok(_) => {}
                Err(error) => tracing::debug!(error = %error, "live read-model generation not read"),
            }
        }
    });
    keyspace
}

/// Reads of one kind through its Redis documents, as `settings` configure them.
fn lookup<T: Cached>(
    settings: &Settings,
    pool: &PgPool,
    redis: &RedisHandle,
    keyspace: &Keyspace,
) -> Arc<Lookup<T>> {
    let cache =
        DocumentCache::new(settings.redis_prefix.clone(), settings.cache_ttl).following(keyspace.clone());
    Arc::new(Lookup::new(
        pool.clone(),
        redis.clone(),
        cache,
        settings.negative_cache_ttl,
    ))
}

impl AppState {
    /// The answer of a list request read from `tables`: the remembered one while none of
    /// them changed since it was read (see `runtime::changes`), else that of `listing`
    /// (a query not yet run: it runs only on a miss), its next cursor bound to `scope`.
    /// `request` (the validated request, with everything that selects its rows) and
    /// `list` make the key; the caller checks access first.
    pub async fn page<T, S, Fut>(
        &self,
        list: &str,
        tables: &[&str],
        request: &impl Debug,
        scope: &S,
        listing: Fut,
    ) -> Result<ApiResponse, ApiError>
    where
        T: serde::Serialize,
        S: CursorScope,
        Fut: Future<Output = Result<Listing<T>, sqlx::Error>>,
    {
        let load = || async move { Ok(listing.await.map_err(ApiError::internal)?.into_response(scope)) };
        if crate::consistency::fresh() {
            return load().await;
        }
        self.pages
            .get_or_load(format!("{list} {request:?}"), tables, load)
            .await
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

#[cfg(test)]
mod tests {
    #[test]
    fn every_cached_list_reads_only_tables_whose_changes_are_told() {
        for tables in [
            readmodels::users::TABLES,
            readmodels::products::TABLES,
            readmodels::orders::TABLES,
            readmodels::reviews::TABLES,
        ] {
            for table in tables {
                assert!(runtime::changes::TABLES.contains(table), "{table} is not told");
            }
        }
    }
}
