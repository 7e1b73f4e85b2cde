//! The best-seller ranking in Redis: the sorted set `<REDIS_KEY_PREFIX>:products:top`,
//! member = product id, score = its `units_sold` in Postgres.
//!
//! Scores are always written as the absolute value read from Postgres (never incremented),
//! so writing one again is harmless and any write heals whatever a crash or a Redis outage
//! left behind. The read and the write happen under the products' locks, so two writers
//! cannot leave an older value last. A rebuild replaces the whole set.
//!
//! The set lives only in Redis, so a Redis restarted empty (or flushed) would lose it:
//! every complete fill also writes the marker `<key>:seeded`, readers trust the set only
//! while the marker exists, and the projector refills the set from Postgres whenever
//! the marker is gone (see `heal`).

use crate::consumer::redis_write;
use crate::heal::RedisDebt;
use crate::products;
use crate::{RebuildError, store};
use redis::aio::ConnectionLike;
use runtime::RedisHandle;
use sqlx::{PgConnection, PgPool};
use std::sync::Arc;
use uuid::Uuid;

/// Members written per `ZADD` while refilling.
const REFILL_CHUNK: usize = 1000;

/// Where the best sellers are ranked.
#[derive(Debug, Clone)]
pub struct TopSellers {
    key: String,
    seeded: String,
    debt: Arc<RedisDebt>,
}

impl PartialEq for TopSellers {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}

impl TopSellers {
    /// The set `<prefix>:products:top`.
    pub fn new(prefix: &str) -> Self {
        Self {
            key: readmodels::top::top_key(prefix),
            seeded: readmodels::top::seeded_key(prefix),
            debt: Arc::default(),
        }
    }

    /// The same set, reporting missed writes to `debt`.
    pub fn with_debt(self, debt: Arc<RedisDebt>) -> Self {
        Self { debt, ..self }
    }

    /// The sorted set's key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The marker that says the set is complete.
    pub fn seeded_key(&self) -> &str {
        &self.seeded
    }

    /// Refills the set from Postgres when its marker is missing (Redis restarted empty,
    /// flushed, a score was missed, or never filled); `Some(products)` when it did. Any
    /// number of replicas may call this: the refill takes the projection lock
    /// exclusively and looks again.
    pub async fn ensure_seeded<C: ConnectionLike + Send>(
        &self,
        pool: &PgPool,
        redis: &mut C,
    ) -> Result<Option<u64>, RebuildError> {
        if self.is_seeded(redis).await? {
            return Ok(None);
        }
        self.reseed(pool, redis).await
    }

    /// Drops the marker: readers go to Postgres until the set is re-seeded.
    pub async fn invalidate<C: ConnectionLike + Send>(&self, redis: &mut C) -> redis::RedisResult<()> {
        redis::cmd("DEL").arg(&self.seeded).query_async(redis).await
    }

    async fn is_seeded<C: ConnectionLike + Send>(&self, redis: &mut C) -> redis::RedisResult<bool> {
        redis::cmd("EXISTS").arg(&self.seeded).query_async(redis).await
    }

    /// Refills the set with the live projections paused (exclusive projection lock), so
    /// no score written meanwhile can be lost; `None` when another replica did it first.
    async fn reseed<C: ConnectionLike + Send>(
        &self,
        pool: &PgPool,
        redis: &mut C,
    ) -> Result<Option<u64>, RebuildError> {
        let mut tx = pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(store::PROJECTION_LOCK)
            .execute(&mut *tx)
            .await?;
        if self.is_seeded(redis).await? {
            return Ok(None);
        }
        let products = self.refill(&mut tx, redis).await?;
        tx.commit().await?;
        Ok(Some(products))
    }

    /// Writes the scores of `products` as Postgres has them now: `ZADD` for units sold,
    /// `ZREM` for none (or no row yet). Failures are logged: a later write or a rebuild
    /// heals them.
    pub async fn sync(&self, pool: &PgPool, redis: &RedisHandle, products: &[Uuid]) {
        if products.is_empty() {
            return;
        }
        let Some(mut conn) = redis.get() else {
            tracing::warn!("redis not connected; best-seller scores not written");
            self.debt.top();
            return;
        };
        match self.sync_locked(pool, &mut conn, products).await {
            Ok(true) => {}
            Ok(false) => self.debt.top(),
            Err(error) => {
                tracing::warn!(error = %error, "best-seller scores not read; not written");
                self.debt.top();
            }
        }
    }

    async fn sync_locked<C: ConnectionLike + Send>(
        &self,
        pool: &PgPool,
        redis: &mut C,
        products: &[Uuid],
    ) -> Result<bool, sqlx::Error> {
        let mut tx = pool.begin().await?;
        store::share_projection_lock(&mut tx).await?;
        products::sql::lock_products(&mut tx, products).await?;
        let sold: Vec<(Uuid, i64)> =
            sqlx::query_as("SELECT id, units_sold FROM products_view WHERE id = ANY($1)")
                .bind(products)
                .fetch_all(&mut *tx)
                .await?;
        let mut pipe = redis::pipe();
        pipe.atomic();
        for id in products {
            match sold.iter().find(|(sold_id, _)| sold_id == id) {
                Some((_, units)) if *units > 0 => pipe.zadd(&self.key, id.to_string(), *units).ignore(),
                _ => pipe.zrem(&self.key, id.to_string()).ignore(),
            };
        }
        // Still under the locks: a concurrent writer reads after this write lands.
        let written = redis_write("best sellers", pipe.query_async::<()>(redis)).await;
        tx.commit().await?;
        Ok(written)
    }

    /// Replaces the set with the scores of every product that sold (a rebuild); returns
    /// how many. The new set is built aside and renamed over the old one at once, with
    /// the marker that says it is complete.
    pub async fn refill<C: ConnectionLike + Send>(
        &self,
        conn: &mut PgConnection,
        redis: &mut C,
    ) -> Result<u64, RebuildError> {
        let sold: Vec<(Uuid, i64)> =
            sqlx::query_as("SELECT id, units_sold FROM products_view WHERE units_sold > 0")
                .fetch_all(conn)
                .await?;
        let building = format!("{}:rebuilding", self.key);
        redis::cmd("DEL").arg(&building).query_async::<()>(redis).await?;
        for chunk in sold.chunks(REFILL_CHUNK) {
            let mut zadd = redis::cmd("ZADD");
            zadd.arg(&building);
            for (id, units) in chunk {
                zadd.arg(*units).arg(id.to_string());
            }
            zadd.query_async::<()>(redis).await?;
        }
        let mut swap = redis::pipe();
        swap.atomic();
        if sold.is_empty() {
            swap.del(&self.key).ignore();
        } else {
            swap.rename(&building, &self.key).ignore();
        }
        swap.set(&self.seeded, 1).ignore();
        swap.query_async::<()>(redis).await?;
        Ok(sold.len() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_set_lives_under_the_prefix_of_the_documents() {
        let documents = crate::Documents::new("shop:eu", Duration::from_secs(1));
        assert_eq!(TopSellers::new(documents.prefix()).key(), "shop:eu:products:top");
    }
}
