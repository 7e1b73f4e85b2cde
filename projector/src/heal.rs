//! Repairs what a Redis outage left behind, by itself, within a moment of Redis
//! answering again.
//!
//! While Redis is away the projector keeps projecting into Postgres and skips the Redis
//! writes (a Redis outage must not stall the read models of record). Each skipped or
//! failed write is remembered here as a debt: the user whose document was not written,
//! or that the best-seller set missed a score. [`heal`] pays the debts as soon as Redis
//! answers: user documents are written again from `users_view` (every write keeps the
//! higher version, so a newer write that got through first is never undone), and a
//! missed score drops the set's marker so readers go to Postgres until the set is
//! re-seeded whole. The same loop re-seeds the set whenever its marker is gone (Redis
//! restarted empty or flushed).
//!
//! Debts live in memory. A replica that crashed while Redis was away loses them: every
//! projector start therefore re-seeds the best-seller set once, and a user document it
//! left stale heals at its next write or at the end of its `CACHE_TTL_SECONDS`.

use crate::top::TopSellers;
use crate::users::cache;
use crate::users::row::{ROW_COLUMNS, UserRow};
use readmodels::users::UserCache;
use runtime::RedisHandle;
use sqlx::PgPool;
use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// How often the loop looks for debts and for the best-seller marker.
pub const HEAL_INTERVAL: Duration = Duration::from_millis(500);

/// Users remembered one by one; beyond, every document is rewritten.
const MAX_USER_DEBTS: usize = 100_000;

/// User documents written again per step.
const USERS_PER_STEP: usize = 1000;

/// What Redis missed while it was away.
#[derive(Debug, Default)]
pub struct RedisDebt {
    inner: Mutex<Debt>,
}

#[derive(Debug, Default)]
struct Debt {
    users: HashSet<Uuid>,
    all_users: bool,
    top: bool,
}

impl RedisDebt {
    /// The document of `user` was not written.
    pub fn user(&self, user: Uuid) {
        let mut debt = self.lock();
        if debt.all_users {
            return;
        }
        debt.users.insert(user);
        if debt.users.len() > MAX_USER_DEBTS {
            debt.users = HashSet::new();
            debt.all_users = true;
        }
    }

    /// A best-seller score was not written.
    pub fn top(&self) {
        self.lock().top = true;
    }

    /// Whether anything is owed.
    pub fn is_empty(&self) -> bool {
        let debt = self.lock();
        debt.users.is_empty() && !debt.all_users && !debt.top
    }

    fn take(&self) -> Debt {
        std::mem::take(&mut *self.lock())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Debt> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Pays `debt` and keeps the best-seller set seeded, until `shutdown`.
pub async fn heal(
    debt: &RedisDebt,
    pool: &PgPool,
    redis: &RedisHandle,
    users: &UserCache,
    top: &TopSellers,
    shutdown: CancellationToken,
) {
    // A replica that crashed while Redis was away took its debts with it, and a Redis that
    // kept its data (a snapshot) still has the marker: so every projector start re-seeds
    // the best-seller set once (cheap: one row per product that sold).
    debt.top();
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(HEAL_INTERVAL) => {}
        }
        let Some(mut conn) = redis.get() else { continue };
        let owed = debt.take();
        if owed.top
            && let Err(error) = top.invalidate(&mut conn).await
        {
            tracing::warn!(error = %error, "could not mark the best sellers stale; will retry");
            debt.top();
        }
        match top.ensure_seeded(pool, &mut conn).await {
            Ok(Some(products)) => {
                tracing::info!(
                    products,
                    "best sellers were incomplete in Redis; re-seeded from PostgreSQL"
                )
            }
            Ok(None) => {}
            Err(error) => tracing::warn!(error = %error, "re-seeding the best sellers failed; will retry"),
        }
        if owed.all_users {
            match cache::refill(pool, users, &conn).await {
                Ok(written) => tracing::info!(written, "user documents rewritten after a Redis outage"),
                Err(error) => {
                    tracing::warn!(error = %error, "rewriting user documents failed; will retry");
                    debt.lock().all_users = true;
                }
            }
        } else if !owed.users.is_empty() {
            rewrite_users(debt, pool, users, &mut conn, owed.users).await;
        }
    }
}

/// Writes the documents of `ids` again from `users_view`; what is not written stays owed.
async fn rewrite_users(
    debt: &RedisDebt,
    pool: &PgPool,
    users: &UserCache,
    conn: &mut runtime::GuardedConnection,
    ids: HashSet<Uuid>,
) {
    let ids: Vec<Uuid> = ids.into_iter().collect();
    let sql = format!("SELECT {ROW_COLUMNS} FROM users_view WHERE id = ANY($1)");
    for (step, chunk) in ids.chunks(USERS_PER_STEP).enumerate() {
        let written = async {
            let rows = sqlx::query_as::<_, UserRow>(&sql)
                .bind(chunk)
                .fetch_all(pool)
                .await?;
            for row in &rows {
                cache::write_row(users, conn, row).await?;
            }
            Ok::<_, crate::RebuildError>(())
        };
        if let Err(error) = written.await {
            tracing::warn!(error = %error, "rewriting user documents failed; will retry");
            ids[step * USERS_PER_STEP..].iter().for_each(|id| debt.user(*id));
            return;
        }
    }
    tracing::info!(
        written = ids.len(),
        "user documents missed during a Redis outage rewritten"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn too_many_user_debts_become_one_debt_for_every_document() {
        let debt = RedisDebt::default();
        assert!(debt.is_empty());
        for _ in 0..=MAX_USER_DEBTS {
            debt.user(Uuid::new_v4());
        }
        let owed = debt.take();
        assert!(owed.all_users && owed.users.is_empty());
        assert!(debt.is_empty());
    }

    #[test]
    fn a_missed_score_is_one_debt_however_often() {
        let debt = RedisDebt::default();
        debt.top();
        debt.top();
        assert!(debt.take().top);
        assert!(!debt.take().top);
    }
}
