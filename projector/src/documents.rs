//! The Redis documents the projector keeps beside its tables: one per user, product and
//! order (see `readmodels::cache`). They are written after each commit, owed to the healer
//! when Redis misses a write, and cleared and refilled from Postgres by a rebuild: the same
//! few functions for every kind, so a new kind is one field of [`Documents`] and one line
//! in each of its methods.

use crate::RebuildError;
use crate::consumer::redis_write;
use crate::heal::RedisDebt;
use crate::registry::Services;
use futures::StreamExt;
use readmodels::cache::{Cached, DocumentCache, Entry};
use readmodels::orders::OrderView;
use readmodels::products::ProductView;
use readmodels::users::UserView;
use redis::aio::ConnectionLike;
use runtime::RedisHandle;
use sqlx::PgPool;
use std::collections::HashSet;
use std::time::Duration;
use uuid::Uuid;

/// Documents written to Redis at once.
const WRITE_CONCURRENCY: usize = 128;
/// Rows read from Postgres per step of a refill or a rewrite.
const ROWS_PER_STEP: usize = 1000;

/// Every kind of document, under one key prefix.
#[derive(Debug, Clone)]
pub struct Documents {
    /// `<prefix>:user:<id>`.
    pub users: DocumentCache<UserView>,
    /// `<prefix>:product:<id>`.
    pub products: DocumentCache<ProductView>,
    /// `<prefix>:order:<id>`.
    pub orders: DocumentCache<OrderView>,
}

/// Documents of each kind written (or removed).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// User documents.
    pub users: u64,
    /// Product documents.
    pub products: u64,
    /// Order documents.
    pub orders: u64,
}

impl Counts {
    /// Of every kind together.
    pub fn total(&self) -> u64 {
        self.users + self.products + self.orders
    }
}

impl Documents {
    /// The documents under `prefix`, kept for `ttl` after their last write.
    pub fn new(prefix: &str, ttl: Duration) -> Self {
        Self {
            users: DocumentCache::new(prefix, ttl),
            products: DocumentCache::new(prefix, ttl),
            orders: DocumentCache::new(prefix, ttl),
        }
    }

    /// The same documents in Redis key space `space` (see `readmodels::cache::Keyspace`).
    pub fn at(&self, space: i64) -> Self {
        Self {
            users: self.users.at(space),
            products: self.products.at(space),
            orders: self.orders.at(space),
        }
    }

    /// The key prefix (shared with the best-seller set).
    pub fn prefix(&self) -> &str {
        self.users.prefix()
    }

    /// Deletes every document; how many of each kind.
    pub async fn clear<C: ConnectionLike + Send>(&self, conn: &mut C) -> redis::RedisResult<Counts> {
        Ok(Counts {
            users: self.users.clear(conn).await?,
            products: self.products.clear(conn).await?,
            orders: self.orders.clear(conn).await?,
        })
    }

    /// Writes the document of every row from Postgres (each write keeps the newer
    /// document, so live writes may go on meanwhile); how many of each kind.
    pub async fn refill<C>(&self, pool: &PgPool, conn: &C) -> Result<Counts, RebuildError>
    where
        C: ConnectionLike + Clone + Send + Sync,
    {
        Ok(Counts {
            users: refill(pool, &self.users, conn).await?,
            products: refill(pool, &self.products, conn).await?,
            orders: refill(pool, &self.orders, conn).await?,
        })
    }

    /// For a swap of generations: the documents of the `users` and `orders` whose rows
    /// changed under the swap's lock, read over `pool` (the new generation's tables);
    /// how many of each kind.
    pub async fn rewrite_changed<C>(
        &self,
        pool: &PgPool,
        conn: &C,
        users: &[Uuid],
        orders: &[Uuid],
    ) -> Result<Counts, RebuildError>
    where
        C: ConnectionLike + Clone + Send + Sync,
    {
        Ok(Counts {
            users: rewrite(pool, &self.users, conn, users).await?,
            products: 0,
            orders: rewrite(pool, &self.orders, conn, orders).await?,
        })
    }

    /// Writes every product document from Postgres (units sold and review statistics move
    /// with orders and reviews, so after a swap every product is written again); how many.
    pub async fn refill_products<C>(&self, pool: &PgPool, conn: &C) -> Result<u64, RebuildError>
    where
        C: ConnectionLike + Clone + Send + Sync,
    {
        refill(pool, &self.products, conn).await
    }

    /// Pays what `debt` owes of every kind; what cannot be paid now stays owed.
    pub async fn pay<C>(&self, debt: &RedisDebt, pool: &PgPool, conn: &C)
    where
        C: ConnectionLike + Clone + Send + Sync,
    {
        pay(debt, pool, &self.users, conn).await;
        pay(debt, pool, &self.products, conn).await;
        pay(debt, pool, &self.orders, conn).await;
    }
}

impl Services {
    /// Writes `entries` after a commit; what is not written is owed (see [`write_entries`]).
    pub async fn write_documents<T: Cached>(&self, cache: &DocumentCache<T>, entries: &[Entry<T>]) {
        write_entries(&self.redis, cache, &self.debt, entries).await;
    }

    /// Writes the documents of `ids` (repeats allowed) as Postgres has them now (see
    /// [`refresh`]).
    pub async fn refresh_documents<T: Cached>(
        &self,
        cache: &DocumentCache<T>,
        ids: impl IntoIterator<Item = Uuid>,
    ) {
        let mut ids: Vec<Uuid> = ids.into_iter().collect();
        ids.sort_unstable();
        ids.dedup();
        refresh(&self.pool, &self.redis, cache, &self.debt, &ids).await;
    }
}

/// Writes `entries` after a commit, all at once over the multiplexed connection; a
/// document not written (Redis away or failing) is owed to `debt`.
async fn write_entries<T: Cached>(
    redis: &RedisHandle,
    cache: &DocumentCache<T>,
    debt: &RedisDebt,
    entries: &[Entry<T>],
) {
    if entries.is_empty() {
        return;
    }
    let Some(conn) = redis.get() else {
        tracing::warn!(
            kind = T::KIND,
            documents = entries.len(),
            "redis not connected; documents not written"
        );
        entries.iter().for_each(|entry| debt.owe(T::KIND, entry.id()));
        return;
    };
    let writes = entries.iter().map(|entry| {
        let mut conn = conn.clone();
        async move {
            let written = redis_write(T::KIND, cache.put_entry(&mut conn, entry)).await;
            (entry.id(), written)
        }
    });
    for (id, written) in futures::future::join_all(writes).await {
        if !written {
            debt.owe(T::KIND, id);
        }
    }
}

/// Writes the documents of `ids` as Postgres has them now (for documents that other
/// streams change too, read after their commit); owed to `debt` when Postgres or Redis
/// fails.
async fn refresh<T: Cached>(
    pool: &PgPool,
    redis: &RedisHandle,
    cache: &DocumentCache<T>,
    debt: &RedisDebt,
    ids: &[Uuid],
) {
    if ids.is_empty() {
        return;
    }
    match T::load(pool, ids).await {
        Ok(entries) => write_entries(redis, cache, debt, &entries).await,
        Err(error) => {
            tracing::warn!(kind = T::KIND, error = %error, "could not read documents to refresh; owed");
            ids.iter().for_each(|id| debt.owe(T::KIND, *id));
        }
    }
}

/// Writes the documents of `ids` from Postgres, `ROWS_PER_STEP` at a time; how many.
async fn rewrite<T, C>(
    pool: &PgPool,
    cache: &DocumentCache<T>,
    conn: &C,
    ids: &[Uuid],
) -> Result<u64, RebuildError>
where
    T: Cached,
    C: ConnectionLike + Clone + Send + Sync,
{
    let mut written = 0;
    for chunk in ids.chunks(ROWS_PER_STEP) {
        let entries = T::load(pool, chunk).await?;
        // Built up front: a stream mapping with a closure here would not be `Send` for
        // every lifetime, which the spawned healer needs.
        let writes: Vec<_> = entries
            .iter()
            .map(|entry| {
                let mut conn = conn.clone();
                async move { cache.put_entry(&mut conn, entry).await }
            })
            .collect();
        let mut writes = futures::stream::iter(writes).buffer_unordered(WRITE_CONCURRENCY);
        while let Some(result) = writes.next().await {
            result?;
            written += 1;
        }
    }
    Ok(written)
}

/// Writes the document of every row of `T::TABLE`, walking its ids in order.
async fn refill<T, C>(pool: &PgPool, cache: &DocumentCache<T>, conn: &C) -> Result<u64, RebuildError>
where
    T: Cached,
    C: ConnectionLike + Clone + Send + Sync,
{
    let sql = format!("SELECT id FROM {} WHERE id > $1 ORDER BY id LIMIT $2", T::TABLE);
    let mut after = Uuid::nil();
    let mut written = 0;
    loop {
        let ids: Vec<Uuid> = sqlx::query_scalar(&sql)
            .bind(after)
            .bind(ROWS_PER_STEP as i64)
            .fetch_all(pool)
            .await?;
        let Some(last) = ids.last() else {
            return Ok(written);
        };
        after = *last;
        written += rewrite(pool, cache, conn, &ids).await?;
    }
}

/// Pays the debt of one kind: every document when too many were owed, else the owed ones.
async fn pay<T, C>(debt: &RedisDebt, pool: &PgPool, cache: &DocumentCache<T>, conn: &C)
where
    T: Cached,
    C: ConnectionLike + Clone + Send + Sync,
{
    let Some(owed) = debt.take(T::KIND) else {
        return;
    };
    let paid = match &owed {
        None => refill(pool, cache, conn).await,
        Some(ids) => {
            let ids: Vec<Uuid> = ids.iter().copied().collect();
            rewrite(pool, cache, conn, &ids).await
        }
    };
    match paid {
        Ok(written) => tracing::info!(
            kind = T::KIND,
            written,
            "documents missed during a Redis outage rewritten"
        ),
        Err(error) => {
            tracing::warn!(kind = T::KIND, error = %error, "rewriting documents failed; will retry");
            debt.restore(T::KIND, owed);
        }
    }
}

/// The ids owed of one kind, `None` meaning all of them.
pub type Owed = Option<HashSet<Uuid>>;
