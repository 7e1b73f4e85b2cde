//! Single reads by id (users, products, orders): Redis first, Postgres on a miss, the
//! answer the same either way.
//!
//! A miss is fetched from Postgres once per process however many requests miss at the
//! same moment ([`SingleFlight`]), and the fetch fills the cache: the row when found (a
//! tombstone when deleted), a short-lived "missing" entry when not (the projector's next
//! write overwrites it). Redis is an accelerator only: when it is down or answers with an
//! error the read goes to Postgres and the failure is logged, never returned.

use crate::single_flight::{FetchAbandoned, SingleFlight};
use readmodels::cache::{CacheLookup, Cached, DocumentCache, Entry};
use runtime::RedisHandle;
use sqlx::PgPool;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// A row could not be read.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LookupError {
    /// Postgres failed.
    #[error("reading from PostgreSQL failed")]
    Database(#[source] Arc<sqlx::Error>),
    /// The shared fetch died before answering.
    #[error(transparent)]
    Abandoned(#[from] FetchAbandoned),
}

type Found<T> = Result<Option<T>, LookupError>;

/// Reads live rows of one kind by id through the cache.
pub struct Lookup<T: Cached> {
    pool: PgPool,
    redis: RedisHandle,
    cache: DocumentCache<T>,
    negative_ttl: Duration,
    flights: SingleFlight<Uuid, Found<T>>,
}

impl<T: Cached> Lookup<T> {
    /// Reads from `cache` over `redis`, falling back to `pool`; unknown ids are cached
    /// as missing for `negative_ttl`.
    pub fn new(pool: PgPool, redis: RedisHandle, cache: DocumentCache<T>, negative_ttl: Duration) -> Self {
        Self {
            pool,
            redis,
            cache,
            negative_ttl,
            flights: SingleFlight::new(),
        }
    }

    /// The live row with this id; `None` when unknown or deleted.
    pub async fn find(&self, id: Uuid) -> Found<T> {
        // A read that waited for its write reads Postgres, on its own: the document may lag
        // the row, and a shared fetch may have started before the row landed.
        if crate::consistency::fresh() {
            return fetch_and_fill(
                self.pool.clone(),
                self.redis.clone(),
                self.cache.clone(),
                self.negative_ttl,
                id,
            )
            .await;
        }
        if let Some(mut conn) = self.redis.get() {
            match self.cache.get(&mut conn, id).await {
                Ok(CacheLookup::Hit(value)) => return Ok(Some(value)),
                Ok(CacheLookup::Absent) => return Ok(None),
                Ok(CacheLookup::Miss) => {}
                Err(error) => {
                    tracing::warn!(kind = T::KIND, id = %id, error = %error, "Redis read failed; reading PostgreSQL")
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
async fn fetch_and_fill<T: Cached>(
    pool: PgPool,
    redis: RedisHandle,
    cache: DocumentCache<T>,
    negative_ttl: Duration,
    id: Uuid,
) -> Found<T> {
    let entry = T::load(&pool, &[id])
        .await
        .map_err(|e| LookupError::Database(Arc::new(e)))?
        .pop();
    if let Some(mut conn) = redis.get() {
        let filled = match &entry {
            Some(entry) => cache.put_entry(&mut conn, entry).await.map(|_| ()),
            None => cache.put_missing(&mut conn, id, negative_ttl).await,
        };
        if let Err(error) = filled {
            tracing::warn!(kind = T::KIND, id = %id, error = %error, "could not fill the Redis cache");
        }
    }
    Ok(entry.and_then(Entry::live))
}
