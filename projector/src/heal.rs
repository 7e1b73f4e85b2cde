//! Repairs what a Redis outage left behind, by itself, within a moment of Redis
//! answering again.
//!
//! While Redis is away the projector keeps projecting into Postgres and skips the Redis
//! writes (a Redis outage must not stall the read models of record). Each skipped or
//! failed write is remembered here as a debt: the document (user, product, order) that was
//! not written, or that the best-seller set missed a score. [`heal`] pays the debts as
//! soon as Redis answers: documents are written again from Postgres (every write keeps the
//! newer document, so a newer write that got through first is never undone), and a
//! missed score drops the set's marker so readers go to Postgres until the set is
//! re-seeded whole. The same loop re-seeds the set whenever its marker is gone (Redis
//! restarted empty or flushed).
//!
//! Debts live in memory. A replica that crashed while Redis was away loses them: every
//! projector start therefore re-seeds the best-seller set once, and a document it left
//! stale heals at its next write or at the end of its `CACHE_TTL_SECONDS`.

use crate::documents::{Documents, Owed};
use crate::top::TopSellers;
use runtime::RedisHandle;
use sqlx::PgPool;
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// How often the loop looks for debts and for the best-seller marker.
pub const HEAL_INTERVAL: Duration = Duration::from_millis(500);

/// Documents of one kind remembered one by one; beyond, every document of the kind is
/// rewritten.
const MAX_DEBTS_PER_KIND: usize = 100_000;

/// What Redis missed while it was away.
#[derive(Debug, Default)]
pub struct RedisDebt {
    inner: Mutex<Debt>,
}

#[derive(Debug, Default)]
struct Debt {
    /// Per document kind, the ids owed (`None`: all of them).
    documents: HashMap<&'static str, Owed>,
    top: bool,
}

impl RedisDebt {
    /// The document of `id` of `kind` was not written.
    pub fn owe(&self, kind: &'static str, id: Uuid) {
        let mut debt = self.lock();
        let owed = debt.documents.entry(kind).or_insert_with(|| Some(HashSet::new()));
        if let Some(ids) = owed {
            ids.insert(id);
            if ids.len() > MAX_DEBTS_PER_KIND {
                *owed = None;
            }
        }
    }

    /// A best-seller score was not written.
    pub fn top(&self) {
        self.lock().top = true;
    }

    /// Whether anything is owed.
    pub fn is_empty(&self) -> bool {
        let debt = self.lock();
        debt.documents.is_empty() && !debt.top
    }

    /// Takes what is owed of `kind`, if anything.
    pub fn take(&self, kind: &'static str) -> Option<Owed> {
        self.lock().documents.remove(kind)
    }

    /// Owes again what could not be paid.
    pub fn restore(&self, kind: &'static str, owed: Owed) {
        match owed {
            None => {
                self.lock().documents.insert(kind, None);
            }
            Some(ids) => ids.into_iter().for_each(|id| self.owe(kind, id)),
        }
    }

    fn take_top(&self) -> bool {
        std::mem::take(&mut self.lock().top)
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
    documents: &Documents,
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
        if debt.take_top()
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
        if debt.is_empty() {
            continue;
        }
        // Owed documents go to the live generation's key space, as Postgres has them now.
        match crate::store::live_keyspace(pool).await {
            Ok(keyspace) => {
                documents.at(keyspace).pay(debt, pool, &conn).await;
                // A swap of generations meanwhile sent these writes to the key space it
                // retired: every document is owed again, to the new one (rare: a swap
                // between two reads a moment apart).
                if crate::store::live_keyspace(pool)
                    .await
                    .is_ok_and(|now| now != keyspace)
                {
                    use readmodels::cache::Cached;
                    for kind in [
                        readmodels::users::UserView::KIND,
                        readmodels::products::ProductView::KIND,
                        readmodels::orders::OrderView::KIND,
                    ] {
                        debt.restore(kind, None);
                    }
                }
            }
            Err(error) => tracing::warn!(error = %error, "live generation not read; documents stay owed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn too_many_debts_of_one_kind_become_one_debt_for_every_document_of_it() {
        let debt = RedisDebt::default();
        assert!(debt.is_empty());
        for _ in 0..=MAX_DEBTS_PER_KIND {
            debt.owe("user", Uuid::new_v4());
        }
        let order = Uuid::new_v4();
        debt.owe("order", order);
        assert_eq!(debt.take("user"), Some(None));
        assert_eq!(debt.take("order"), Some(Some(HashSet::from([order]))));
        assert_eq!(debt.take("user"), None);
        assert!(debt.is_empty());
    }

    #[test]
    fn what_could_not_be_paid_is_owed_again_with_what_was_owed_meanwhile() {
        let debt = RedisDebt::default();
        let (first, second) = (Uuid::new_v4(), Uuid::new_v4());
        debt.owe("product", first);
        let owed = debt.take("product").expect("owed");
        debt.owe("product", second);
        debt.restore("product", owed);
        assert_eq!(debt.take("product"), Some(Some(HashSet::from([first, second]))));
        debt.restore("product", None);
        debt.owe("product", first);
        assert_eq!(debt.take("product"), Some(None));
    }

    #[test]
    fn a_missed_score_is_one_debt_however_often() {
        let debt = RedisDebt::default();
        debt.top();
        debt.top();
        assert!(debt.take_top());
        assert!(!debt.take_top());
    }
}
