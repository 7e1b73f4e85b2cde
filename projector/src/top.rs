//! The best-seller ranking in Redis: the sorted set `<REDIS_KEY_PREFIX>:products:top`,
//! member = product id, score = its `units_sold` in Postgres.
//!
//! Scores are always written as the absolute value read from Postgres (never incremented),
//! so writing one again is harmless and any write heals whatever a crash or a Redis outage
//! left behind. The read and the write happen under the products' locks, so two writers
//! cannot leave an older value last. A rebuild replaces the whole set.

use crate::consumer::redis_write;
use crate::products;
use crate::{RebuildError, store};
use readmodels::users::UserCache;
use redis::aio::ConnectionLike;
use runtime::RedisHandle;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

/// Members written per `ZADD` while refilling.
const REFILL_CHUNK: usize = 1000;

/// Where the best sellers are ranked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopSellers {
    key: String,
}

impl TopSellers {
    /// The set `<prefix>:products:top`.
    pub fn new(prefix: &str) -> Self {
        Self {
            key: format!("{prefix}:products:top"),
        }
    }

    /// The set under the same key prefix as the user documents of `cache`.
    pub fn beside(cache: &UserCache) -> Self {
        let pattern = cache.pattern();
        let prefix = pattern.strip_suffix(":user:*").unwrap_or(&pattern);
        Self::new(prefix)
    }

    /// The sorted set's key.
    pub fn key(&self) -> &str {
        &self.key
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
            return;
        };
        if let Err(error) = self.sync_locked(pool, &mut conn, products).await {
            tracing::warn!(error = %error, "best-seller scores not read; not written");
        }
    }

    async fn sync_locked<C: ConnectionLike + Send>(
        &self,
        pool: &PgPool,
        redis: &mut C,
        products: &[Uuid],
    ) -> Result<(), sqlx::Error> {
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
        redis_write("best sellers", pipe.query_async::<()>(redis)).await;
        tx.commit().await
    }

    /// Replaces the set with the scores of every product that sold (a rebuild); returns
    /// how many. The new set is built aside and renamed over the old one at once.
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
        if sold.is_empty() {
            redis::cmd("DEL").arg(&self.key).query_async::<()>(redis).await?;
        } else {
            redis::cmd("RENAME")
                .arg(&building)
                .arg(&self.key)
                .query_async::<()>(redis)
                .await?;
        }
        Ok(sold.len() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_set_lives_under_the_prefix_of_the_user_documents() {
        let cache = UserCache::new("shop:eu", Duration::from_secs(1));
        assert_eq!(TopSellers::beside(&cache), TopSellers::new("shop:eu"));
        assert_eq!(TopSellers::new("shop:eu").key(), "shop:eu:products:top");
    }
}
