//! Which tables changed, told by Postgres: a LISTEN on the `row_changes` channel, which a
//! statement trigger on every listed read-model table notifies at commit
//! (migration `20261202000001_change_notifications.sql`), and in-process caches that
//! serve an entry only while no change of its tables arrived since it was read.
//!
//! The rule that keeps a cache from serving what a committed change made stale:
//! - every table has a counter, bumped by each notification naming it;
//! - an entry is stamped with its tables' counters taken *before* it was read from
//!   Postgres, and served only while the stamp is unchanged;
//! - a notification is sent after its commit, so a read that started after it arrived
//!   sees the change, and one that started before carries an older stamp;
//! - stamps exist only while the listening connection is known to be alive: it is
//!   opened (LISTEN done) before the counters are bumped and the feed goes live, it is
//!   declared lost when it errs or when not even the heartbeat (a notification every
//!   second, sent through the service's pool) arrived for three seconds, and while it is
//!   lost every cache reads through to Postgres.
//!
//! - a table counts as told only while its trigger exists (read with every heartbeat).
//!
//! So a change is seen at most the notification's delivery time after its commit
//! (milliseconds), or [`SILENCE`] when the listening connection dies without a word.
//!
//! Hand-written rather than a crate: the protocol is twenty lines around sqlx's
//! `PgListener`, and the caches are `quick_cache` ones.

use crate::backoff::Policy;
use sqlx::PgPool;
use sqlx::postgres::{PgListener, PgPoolOptions};
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

/// The channel the triggers notify; the payload is the table's name.
pub const CHANNEL: &str = "row_changes";
/// How often a feed sends the heartbeat notification (empty payload).
pub const HEARTBEAT: Duration = Duration::from_secs(1);
/// How long the listening connection may stay silent before it is declared lost.
pub const SILENCE: Duration = Duration::from_secs(3);
/// Reconnection delays of the listener.
const RECONNECT: Policy = Policy::new(Duration::from_millis(100), Duration::from_secs(2));

/// The tables whose changes are told (those with the `notify_row_changes` trigger).
pub const TABLES: &[&str] = &[
    "users_view",
    "products_view",
    "product_review_stats",
    "orders_view",
    "order_lines_view",
    "reviews_view",
];

/// A point in the history of some tables: equal stamps mean no change was told between.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp(u64);

/// The change counters of [`TABLES`], fed by a background listener. Cheap to clone.
#[derive(Clone)]
pub struct ChangeFeed {
    inner: Arc<Inner>,
}

struct Inner {
    live: AtomicBool,
    tables: HashMap<&'static str, Table>,
}

/// One told table: its change counter, and whether its trigger exists (as last seen).
struct Table {
    changes: AtomicU64,
    told: AtomicBool,
}

impl Inner {
    fn new() -> Self {
        let table = || Table {
            changes: AtomicU64::new(0),
            told: AtomicBool::new(false),
        };
        Self {
            live: AtomicBool::new(false),
            tables: TABLES.iter().map(|name| (*name, table())).collect(),
        }
    }

    fn bump(&self, table: &str) {
        if let Some(table) = self.tables.get(table) {
            table.changes.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn bump_all(&self) {
        for table in self.tables.values() {
            table.changes.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn set_lost(&self) {
        self.live.store(false, Ordering::SeqCst);
        self.bump_all();
    }

    fn set_live(&self) {
        self.bump_all();
        self.live.store(true, Ordering::SeqCst);
    }

    /// Records which tables carry the trigger now; a table that starts or stops being
    /// told forgets what was read of it.
    fn set_told(&self, triggered: &[String]) {
        for (name, table) in &self.tables {
            let told = triggered.iter().any(|t| t == name);
            if table.told.swap(told, Ordering::SeqCst) != told {
                table.changes.fetch_add(1, Ordering::SeqCst);
            }
        }
    }
}

impl ChangeFeed {
    /// A feed that never goes live: every cache over it reads through.
    pub fn disabled() -> Self {
        Self {
            inner: Arc::new(Inner::new()),
        }
    }

    /// Starts listening on the database of `pool`, over a connection of its own (so a
    /// connection given up as silent is closed, not handed back to `pool`), and sending
    /// the heartbeat through `pool`. The background tasks end when the last clone of the
    /// feed is dropped.
    pub fn listen(pool: &PgPool) -> Self {
        let inner = Arc::new(Inner::new());
        tokio::spawn(listen(Arc::downgrade(&inner), pool.clone()));
        tokio::spawn(heartbeat(Arc::downgrade(&inner), pool.clone()));
        Self { inner }
    }

    /// Whether the listening connection is up now.
    pub fn is_live(&self) -> bool {
        self.inner.live.load(Ordering::SeqCst)
    }

    /// `Ok` while listening with every table of [`TABLES`] told; else what is missing.
    pub fn status(&self) -> Result<(), String> {
        if !self.is_live() {
            return Err("not listening; caches read through to Postgres".to_owned());
        }
        let mut untold: Vec<&str> = (self.inner.tables.iter())
            .filter(|(_, table)| !table.told.load(Ordering::SeqCst))
            .map(|(name, _)| *name)
            .collect();
        if untold.is_empty() {
            return Ok(());
        }
        untold.sort_unstable();
        Err(format!(
            "no change trigger on {}; read through",
            untold.join(", ")
        ))
    }

    /// The current stamp of `tables`; `None` while the feed is not live or when a table
    /// is not one whose changes are told (not in [`TABLES`], or its trigger is not there:
    /// then nothing may be cached).
    pub fn stamp(&self, tables: &[&str]) -> Option<Stamp> {
        if !self.is_live() {
            return None;
        }
        let mut sum = 0u64;
        for table in tables {
            let table = self.inner.tables.get(table)?;
            if !table.told.load(Ordering::SeqCst) {
                return None;
            }
            sum = sum.wrapping_add(table.changes.load(Ordering::SeqCst));
        }
        // Lost between the two loads: the counters may be the bumped ones or not.
        self.is_live().then_some(Stamp(sum))
    }
}

/// Listens until the feed is dropped, reconnecting after every loss.
async fn listen(feed: Weak<Inner>, pool: PgPool) {
    let mut backoff = RECONNECT.start();
    loop {
        if feed.strong_count() == 0 {
            return;
        }
        let mut listener = match connect(&pool).await {
            Ok(listener) => listener,
            Err(error) => {
                tracing::debug!(error = %error, "change feed: cannot listen yet");
                tokio::time::sleep(backoff.next_delay()).await;
                continue;
            }
        };
        let Some(inner) = feed.upgrade() else { return };
        inner.set_live();
        tracing::info!("change feed: listening");
        backoff.reset();
        drop(inner);
        let reason = receive(&feed, &mut listener).await;
        if let Some(inner) = feed.upgrade() {
            inner.set_lost();
            tracing::warn!(reason, "change feed: lost; caches read through until it is back");
        }
    }
}

/// A listening connection of its own, on the same database as `pool`.
async fn connect(pool: &PgPool) -> Result<PgListener, sqlx::Error> {
    let own = PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(2))
        .connect_with((*pool.connect_options()).clone())
        .await?;
    let mut listener = PgListener::connect_with(&own).await?;
    listener.listen(CHANNEL).await?;
    Ok(listener)
}

/// Applies notifications until the connection is lost (or the feed dropped); why it
/// stopped.
async fn receive(feed: &Weak<Inner>, listener: &mut PgListener) -> &'static str {
    loop {
        // On silence the wait is abandoned and the connection with it, so whatever the
        // abandoned read left in its buffer is never looked at.
        let next = tokio::time::timeout(SILENCE, listener.try_recv()).await;
        let Some(inner) = feed.upgrade() else {
            return "dropped";
        };
        match next {
            Ok(Ok(Some(notification))) => inner.bump(notification.payload()),
            Ok(Ok(None)) => return "connection lost",
            Ok(Err(_)) => return "connection failed",
            Err(_) => return "silent for too long",
        }
    }
}

/// Every [`HEARTBEAT`] until the feed is dropped: sends the empty notification and reads
/// which tables carry the trigger (so a reverted migration stops the caching of a table
/// within a second).
async fn heartbeat(feed: Weak<Inner>, pool: PgPool) {
    let mut ticks = tokio::time::interval(HEARTBEAT);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        if feed.strong_count() == 0 {
            return;
        }
        let beat = sqlx::query_scalar::<_, Vec<String>>(
            "SELECT array(SELECT c.relname::text FROM pg_trigger t
                          JOIN pg_class c ON c.oid = t.tgrelid
                          JOIN pg_proc p ON p.oid = t.tgfoid
                          WHERE p.proname = 'notify_row_changes' AND t.tgenabled <> 'D')
             FROM pg_notify($1, '')",
        )
        .bind(CHANNEL)
        .fetch_one(&pool);
        match tokio::time::timeout(HEARTBEAT, beat).await {
            Ok(Ok(triggered)) => {
                if let Some(inner) = feed.upgrade() {
                    inner.set_told(&triggered);
                }
            }
            Ok(Err(error)) => tracing::debug!(error = %error, "change feed: heartbeat not sent"),
            Err(_) => tracing::debug!("change feed: heartbeat timed out"),
        }
    }
}

/// An entry and the stamp of its tables when it was read.
struct Entry<V> {
    stamp: Stamp,
    read_at: Instant,
    value: V,
}

impl<V: Clone> Clone for Entry<V> {
    fn clone(&self) -> Self {
        Self {
            stamp: self.stamp,
            read_at: self.read_at,
            value: self.value.clone(),
        }
    }
}

/// Values read from some tables, served while those tables have not changed (see the
/// module's rule) and for at most `max_age`; up to `capacity` entries.
pub struct StampedCache<K, V> {
    feed: ChangeFeed,
    max_age: Duration,
    entries: quick_cache::sync::Cache<K, Entry<V>>,
}

impl<K, V> StampedCache<K, V>
where
    K: Eq + Hash + Clone,
    V: Clone,
{
    /// An empty cache over `feed`.
    pub fn new(feed: ChangeFeed, capacity: usize, max_age: Duration) -> Self {
        Self {
            feed,
            max_age,
            entries: quick_cache::sync::Cache::new(capacity.max(1)),
        }
    }

    /// The value of `key` read from `tables`: the cached one while still valid, else
    /// `load`'s (cached when the feed is live).
    pub async fn get_or_load<E, Fut>(
        &self,
        key: K,
        tables: &[&str],
        load: impl FnOnce() -> Fut,
    ) -> Result<V, E>
    where
        Fut: Future<Output = Result<V, E>>,
    {
        let stamp = self.feed.stamp(tables);
        if let Some(stamp) = stamp
            && let Some(entry) = self.entries.get(&key)
            && entry.stamp == stamp
            && entry.read_at.elapsed() < self.max_age
        {
            return Ok(entry.value);
        }
        let read_at = Instant::now();
        let value = load().await?;
        if let Some(stamp) = stamp {
            self.entries.insert(
                key,
                Entry {
                    stamp,
                    read_at,
                    value: value.clone(),
                },
            );
        }
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_told(feed: &ChangeFeed) {
        let tables: Vec<String> = TABLES.iter().map(|t| (*t).to_owned()).collect();
        feed.inner.set_told(&tables);
    }

    fn live() -> ChangeFeed {
        let feed = ChangeFeed::disabled();
        all_told(&feed);
        feed.inner.set_live();
        feed
    }

    #[test]
    fn a_stamp_changes_with_any_of_its_tables_and_exists_only_while_live() {
        let feed = ChangeFeed::disabled();
        all_told(&feed);
        assert_eq!(feed.stamp(&["users_view"]), None, "not live yet");
        feed.inner.set_live();
        let before = feed.stamp(&["users_view", "orders_view"]).expect("live");
        feed.inner.bump("products_view");
        assert_eq!(feed.stamp(&["users_view", "orders_view"]), Some(before));
        feed.inner.bump("orders_view");
        assert_ne!(feed.stamp(&["users_view", "orders_view"]), Some(before));
        assert_eq!(
            feed.stamp(&["no_such_table"]),
            None,
            "untold tables are never cached"
        );
        let current = feed.stamp(&["users_view"]);
        feed.inner.set_lost();
        assert_eq!(feed.stamp(&["users_view"]), None);
        feed.inner.set_live();
        assert_ne!(
            feed.stamp(&["users_view"]),
            current,
            "a reconnection forgets everything"
        );
        let told = feed.stamp(&["users_view"]);
        feed.inner.set_told(&["reviews_view".to_owned()]);
        assert_eq!(feed.stamp(&["users_view"]), None, "its trigger is gone");
        feed.inner.set_told(&["users_view".to_owned()]);
        assert!(
            feed.stamp(&["users_view"]).is_some_and(|now| Some(now) != told),
            "told again"
        );
    }

    #[tokio::test]
    async fn an_entry_is_served_until_its_table_changes() {
        let feed = live();
        let cache = StampedCache::new(feed.clone(), 8, Duration::from_secs(60));
        let load = |value: u32| move || async move { Ok::<_, ()>(value) };
        assert_eq!(cache.get_or_load("k", &["users_view"], load(1)).await, Ok(1));
        assert_eq!(
            cache.get_or_load("k", &["users_view"], load(2)).await,
            Ok(1),
            "cached"
        );
        feed.inner.bump("users_view");
        assert_eq!(
            cache.get_or_load("k", &["users_view"], load(3)).await,
            Ok(3),
            "changed"
        );
        feed.inner.set_lost();
        assert_eq!(
            cache.get_or_load("k", &["users_view"], load(4)).await,
            Ok(4),
            "lost"
        );
        assert_eq!(
            cache.get_or_load("k", &["users_view"], load(5)).await,
            Ok(5),
            "not cached"
        );
    }

    #[tokio::test]
    async fn a_change_told_while_loading_invalidates_what_was_loaded() {
        let feed = live();
        let cache = StampedCache::new(feed.clone(), 8, Duration::from_secs(60));
        let during = feed.clone();
        let stale = cache
            .get_or_load("k", &["users_view"], || async move {
                during.inner.bump("users_view");
                Ok::<_, ()>(1)
            })
            .await;
        assert_eq!(stale, Ok(1));
        let fresh = cache
            .get_or_load("k", &["users_view"], || async { Ok::<_, ()>(2) })
            .await;
        assert_eq!(fresh, Ok(2));
    }

    #[tokio::test]
    async fn entries_expire_after_max_age() {
        let cache = StampedCache::new(live(), 8, Duration::ZERO);
        let _ = cache
            .get_or_load("k", &["users_view"], || async { Ok::<_, ()>(1) })
            .await;
        let again = cache
            .get_or_load("k", &["users_view"], || async { Ok::<_, ()>(2) })
            .await;
        assert_eq!(again, Ok(2));
    }
}
