//! Best sellers: the ranking comes from the Redis sorted set `<prefix>:products:top`
//! (member = product id, score = units sold, kept by the projector), the product data
//! from Postgres in one query for all ranked ids. When Redis is down, errors, holds
//! something unreadable or holds nothing, the whole answer comes from `products_view`
//! instead (`units_sold > 0`, served by its partial index); both paths give the same
//! answer: most units sold first, ties by id. The set is trusted only while its marker
//! `<prefix>:products:top:seeded` exists: a Redis restarted empty or flushed has no
//! marker until the projector has re-seeded the whole set, and until then answers come
//! from Postgres.
//!
//! Redis orders equal scores by member, descending, so a plain `ZREVRANGE` would cut a
//! tie at the limit differently from Postgres. The script below takes the members above
//! the lowest score served, then the first members (ascending) at that score, atomically
//! and in one round trip.

pub use readmodels::top::{seeded_key, top_key};
use runtime::RedisHandle;
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use std::collections::HashMap;
use uuid::Uuid;

/// A best seller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TopProduct {
    /// Product id.
    pub id: Uuid,
    /// Stock keeping unit.
    pub sku: String,
    /// Name.
    pub name: String,
    /// Current price in minor units of `currency`.
    pub price_cents: i64,
    /// ISO 4217 currency code.
    pub currency: String,
    /// Units in placed (not cancelled) orders.
    pub units_sold: i64,
}

/// The top `ARGV[1]` members with a positive score, by score descending then member
/// ascending, as a flat `[member, score, ...]` list; nil while the marker `KEYS[2]` is
/// missing (the set may be partial).
const TOP_SCRIPT: &str = r#"
if redis.call('EXISTS', KEYS[2]) == 0 then
  return false
end
local n = tonumber(ARGV[1])
local top = redis.call('ZREVRANGEBYSCORE', KEYS[1], '+inf', '(0', 'WITHSCORES', 'LIMIT', 0, n)
if #top < 2 * n then
  return top
end
local low = top[#top]
local out = {}
for i = 1, #top, 2 do
  if tonumber(top[i + 1]) > tonumber(low) then
    out[#out + 1] = top[i]
    out[#out + 1] = top[i + 1]
  end
end
local ties = redis.call('ZRANGEBYSCORE', KEYS[1], low, low, 'WITHSCORES', 'LIMIT', 0, n - #out / 2)
for i = 1, #ties do
  out[#out + 1] = ties[i]
end
return out
"#;

/// Why the Redis ranking was not used.
#[derive(Debug, thiserror::Error)]
enum RankingError {
    #[error(transparent)]
    Redis(#[from] redis::RedisError),
    #[error("the sorted set holds a member that is not a product id or a score that is not a count")]
    Unreadable,
}

/// Reads the best sellers.
pub struct BestSellers {
    pool: PgPool,
    redis: RedisHandle,
    key: String,
    seeded: String,
    script: redis::Script,
}

impl BestSellers {
    /// Ranks from `<prefix>:products:top` over `redis`, with product data from `pool`.
    pub fn new(pool: PgPool, redis: RedisHandle, prefix: &str) -> Self {
        Self {
            pool,
            redis,
            key: top_key(prefix),
            seeded: seeded_key(prefix),
            script: redis::Script::new(TOP_SCRIPT),
        }
    }

    /// The `limit` best sellers, most units sold first, ties by id.
    pub async fn top(&self, limit: u32) -> Result<Vec<TopProduct>, sqlx::Error> {
        if crate::consistency::fresh() {
            return from_postgres(&self.pool, limit).await;
        }
        match self.ranking(limit).await {
            Ok(Some(ranking)) if !ranking.is_empty() => with_product_data(&self.pool, ranking).await,
            Ok(_) => from_postgres(&self.pool, limit).await,
            Err(error) => {
                tracing::warn!(error = %error, "Redis best-seller ranking unavailable; reading PostgreSQL");
                from_postgres(&self.pool, limit).await
            }
        }
    }

    /// `(product id, units sold)` from Redis; `None` when Redis is not connected or the
    /// set is not known to be complete.
    async fn ranking(&self, limit: u32) -> Result<Option<Vec<(Uuid, i64)>>, RankingError> {
        let Some(mut conn) = self.redis.get() else {
            return Ok(None);
        };
        let flat: Option<Vec<String>> = self
            .script
            .key(&self.key)
            .key(&self.seeded)
            .arg(limit)
            .invoke_async(&mut conn)
            .await?;
        let Some(flat) = flat else {
            return Ok(None);
        };
        flat.chunks(2)
            .map(|pair| match pair {
                [member, score] => Ok((
                    member.parse().map_err(|_| RankingError::Unreadable)?,
                    units(score).ok_or(RankingError::Unreadable)?,
                )),
                _ => Err(RankingError::Unreadable),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }
}

/// A Redis score as a whole number of units.
fn units(score: &str) -> Option<i64> {
    let value: f64 = score.parse().ok()?;
    (value.fract() == 0.0 && value >= 1.0 && value <= 2f64.powi(53)).then_some(value as i64)
}

/// Joins the ranking with the products' data, fetched in one query; ids without a
/// product row (not projected yet) are left out.
async fn with_product_data(pool: &PgPool, ranking: Vec<(Uuid, i64)>) -> Result<Vec<TopProduct>, sqlx::Error> {
    let ids: Vec<Uuid> = ranking.iter().map(|(id, _)| *id).collect();
    let rows: Vec<(Uuid, String, String, i64, String)> =
        sqlx::query_as("SELECT id, sku, name, price_cents, currency FROM products_view WHERE id = ANY($1)")
            .bind(&ids)
            .fetch_all(pool)
            .await?;
    let mut rows: HashMap<Uuid, (String, String, i64, String)> = rows
        .into_iter()
        .map(|(id, sku, name, price_cents, currency)| (id, (sku, name, price_cents, currency)))
        .collect();
    let mut top: Vec<TopProduct> = ranking
        .into_iter()
        .filter_map(|(id, units_sold)| {
            let (sku, name, price_cents, currency) = rows.remove(&id)?;
            Some(TopProduct {
                id,
                sku,
                name,
                price_cents,
                currency,
                units_sold,
            })
        })
        .collect();
    top.sort_by(|a, b| b.units_sold.cmp(&a.units_sold).then(a.id.cmp(&b.id)));
    Ok(top)
}

/// The best sellers straight from `products_view`.
async fn from_postgres(pool: &PgPool, limit: u32) -> Result<Vec<TopProduct>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, sku, name, price_cents, currency, units_sold FROM products_view
         WHERE units_sold > 0 ORDER BY units_sold DESC, id LIMIT $1",
    )
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_are_whole_positive_unit_counts() {
        assert_eq!(units("3"), Some(3));
        assert_eq!(units("9007199254740992"), Some(9_007_199_254_740_992));
        for bad in ["0", "-2", "1.5", "inf", "nan", "x", ""] {
            assert_eq!(units(bad), None, "{bad}");
        }
    }
}
