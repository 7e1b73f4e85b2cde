//! Single-user reads: Redis first, Postgres on a miss, the answer the same either way.
//!
//! A miss is fetched from Postgres once per process however many requests miss at the
//! same moment ([`SingleFlight`]), and the fetch fills the cache: the user when found,
//! a short-lived "missing" entry when not (the projector's next write overwrites it).
//! Redis is an accelerator only: when it is down or answers with an error the read goes
//! to Postgres and the failure is logged, never returned.

use crate::single_flight::{FetchAbandoned, SingleFlight};
use readmodels::users::{CacheLookup, UserCache, UserView, find_user};
use runtime::RedisHandle;
use sqlx::PgPool;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// A user could not be read.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LookupError {
    /// Postgres failed.
    #[error("reading the user from PostgreSQL failed")]
    Database(#[source] Arc<sqlx::Error>),
    /// The shared fetch died before answering.
    #[error(transparent)]
    Abandoned(#[from] FetchAbandoned),
}

type Found = Result<Option<UserView>, LookupError>;

/// Reads live users by id through the cache.
pub struct UserLookup {
    pool: PgPool,
    redis: RedisHandle,
    cache: UserCache,
    negative_ttl: Duration,
    flights: SingleFlight<Uuid, Found>,
}

impl UserLookup {
    /// Reads from `cache` over `redis`, falling back to `pool`; unknown ids are cached
    /// as missing for `negative_ttl`.
    pub fn new(pool: PgPool, redis: RedisHandle, cache: UserCache, negative_ttl: Duration) -> Self {
        Self {
            pool,
            redis,
            cache,
            negative_ttl,
            flights: SingleFlight::new(),
        }
    }

    /// The live user with this id; `None` when unknown or deleted.
    pub async fn find(&self, id: Uuid) -> Found {
        if let Some(mut conn) = self.redis.get() {
            match self.cache.get(&mut conn, id).await {
                Ok(CacheLookup::Hit(user)) => return Ok(Some(user)),
                Ok(CacheLookup::Absent) => return Ok(None),
                Ok(CacheLookup::Miss) => {}
                Err(error) => {
                    tracing::warn!(user.id = %id, error = %error, "Redis read failed; reading PostgreSQL")
                }
            }
        }
        self.flights
            .run(id, || {
                fetch_and_fill(
                    self.pool.clone(),
                    self.redis.clone(),
                    self.cache.clone(),
                    self.negative_ttl,
                    id,
                )
            })
            .await?
    }
}

/// Reads Postgres, then caches what it found (the cache keeps the newer of two writes).
async fn fetch_and_fill(
    pool: PgPool,
    redis: RedisHandle,
    cache: UserCache,
    negative_ttl: Duration,
    id: Uuid,
) -> Found {
    let user = find_user(&pool, id)
        .await
        .map_err(|e| LookupError::Database(Arc::new(e)))?;
    if let Some(mut conn) = redis.get() {
        let filled = match &user {
            Some(user) => cache.put(&mut conn, user).await.map(|_| ()),
            None => cache.put_missing(&mut conn, id, negative_ttl).await,
        };
        if let Err(error) = filled {
            tracing::warn!(user.id = %id, error = %error, "could not fill the Redis cache");
        }
    }
    Ok(user)
}
