//! The one way every service talks to Redis: a shared multiplexed connection behind a
//! circuit breaker, with a deadline on every call.
//!
//! Redis is an accelerator (cache, rate limits, rankings), so a dead or slow Redis must
//! cost a request at most one call deadline, once: the first call that times out or
//! finds the connection broken opens the breaker (the connection is dropped), and from
//! then on [`RedisHandle::get`] answers `None` at once, so callers take their Postgres
//! path without waiting. A background task probes (connect + `PING`, each under the
//! deadline) every [`PROBE_INTERVAL`] and closes the breaker with a fresh connection as
//! soon as Redis answers again, so service heals within a fraction of a second.
//!
//! Why not redis' `ConnectionManager`: it reconnects lazily from inside a request, and
//! here it took over a minute to recover after Redis came back; a breaker with an
//! out-of-band probe never makes a request wait for a reconnect.

use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::{AsyncConnectionConfig, Cmd, ErrorKind, Pipeline, RedisError, RedisFuture, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::sync::Notify;

/// Default deadline of one Redis call (`REDIS_TIMEOUT_MS`).
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_millis(250);

/// How often an open breaker probes Redis.
pub const PROBE_INTERVAL: Duration = Duration::from_millis(250);

/// A Redis connection shared by a whole process, usable from any task.
#[derive(Clone)]
pub struct RedisHandle {
    shared: Arc<Shared>,
}

struct Shared {
    client: redis::Client,
    /// The live connection and its generation; `None` while the breaker is open.
    slot: RwLock<Option<(u64, MultiplexedConnection)>>,
    /// Incremented for every new connection: a failure of an older one trips nothing.
    generation: AtomicU64,
    timeout: Duration,
    /// Wakes the probe when the breaker opens.
    tripped: Notify,
}

impl RedisHandle {
    /// Starts connecting to `url` with the default call deadline.
    pub fn connect(url: &str) -> anyhow::Result<Self> {
        Self::connect_with_timeout(url, DEFAULT_CALL_TIMEOUT)
    }

    /// Starts connecting to `url`; [`RedisHandle::get`] returns `None` until connected.
    /// Every call made through a connection of this handle is bounded by `timeout`.
    pub fn connect_with_timeout(url: &str, timeout: Duration) -> anyhow::Result<Self> {
        use anyhow::Context;
        let client = redis::Client::open(url).context("REDIS_URL is not a valid Redis URL")?;
        let shared = Arc::new(Shared {
            client,
            slot: RwLock::new(None),
            generation: AtomicU64::new(0),
            timeout,
            tripped: Notify::new(),
        });
        tokio::spawn(probe(Arc::downgrade(&shared)));
        Ok(Self { shared })
    }

    /// The connection while the breaker is closed; `None` (at once) while Redis is away.
    pub fn get(&self) -> Option<GuardedConnection> {
        let slot = self.shared.slot.read().unwrap_or_else(|e| e.into_inner());
        slot.as_ref().map(|(generation, conn)| GuardedConnection {
            conn: conn.clone(),
            generation: *generation,
            shared: self.shared.clone(),
        })
    }

    /// Whether the breaker is closed (a connection is in use).
    pub fn is_available(&self) -> bool {
        self.shared
            .slot
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
    }

    /// How many connections this handle has made: a change means Redis was reconnected
    /// (and may have restarted empty).
    pub fn generation(&self) -> u64 {
        self.shared.generation.load(Ordering::Acquire)
    }

    /// Waits up to `timeout` for a connection.
    pub async fn wait(&self, timeout: Duration) -> Option<GuardedConnection> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(conn) = self.get() {
                return Some(conn);
            }
            if tokio::time::Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// `PING`, for readiness checks.
    pub async fn ping(&self) -> Result<(), String> {
        let mut conn = self.get().ok_or_else(|| "not connected".to_owned())?;
        redis::cmd("PING")
            .query_async::<String>(&mut conn)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

impl Shared {
    /// Opens the breaker if `generation` is still the live connection.
    fn trip(&self, generation: u64, error: &RedisError) {
        let mut slot = self.slot.write().unwrap_or_else(|e| e.into_inner());
        if matches!(&*slot, Some((live, _)) if *live == generation) {
            *slot = None;
            drop(slot);
            tracing::warn!(error = %error, "Redis unavailable; skipping it until it answers again");
            self.tripped.notify_one();
        }
    }

    /// A new connection that answered `PING`, within the deadline.
    async fn open(&self) -> Result<MultiplexedConnection, RedisError> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(self.timeout)
            .set_response_timeout(self.timeout);
        let attempt = async {
            let mut conn = self
                .client
                .get_multiplexed_async_connection_with_config(&config)
                .await?;
            redis::cmd("PING").query_async::<String>(&mut conn).await?;
            Ok(conn)
        };
        tokio::time::timeout(self.timeout * 2, attempt)
            .await
            .unwrap_or_else(|_| Err(timed_out()))
    }
}

/// Keeps the breaker closed whenever Redis answers; ends with the handle.
async fn probe(shared: std::sync::Weak<Shared>) {
    let mut logged_down = false;
    loop {
        let Some(this) = shared.upgrade() else { return };
        let connected = this.slot.read().unwrap_or_else(|e| e.into_inner()).is_some();
        if connected {
            // Re-checked every second too, so a lost wake-up or a dropped handle ends it.
            let _ = tokio::time::timeout(Duration::from_secs(1), this.tripped.notified()).await;
            continue;
        }
        match this.open().await {
            Ok(conn) => {
                let generation = this.generation.fetch_add(1, Ordering::AcqRel) + 1;
                *this.slot.write().unwrap_or_else(|e| e.into_inner()) = Some((generation, conn));
                tracing::info!(redis.generation = generation, "Redis connected");
                logged_down = false;
            }
            Err(error) => {
                if !logged_down {
                    tracing::warn!(error = %error, "Redis not reachable; retrying in the background");
                    logged_down = true;
                }
                drop(this);
                tokio::time::sleep(PROBE_INTERVAL).await;
            }
        }
    }
}

fn timed_out() -> RedisError {
    RedisError::from((ErrorKind::IoError, "Redis call timed out"))
}

/// Whether `error` says the connection (not the command) failed.
fn is_connection_failure(error: &RedisError) -> bool {
    error.is_io_error()
        || error.is_timeout()
        || error.is_connection_dropped()
        || error.is_connection_refusal()
        || error.is_unrecoverable_error()
}

/// A connection whose every call has a deadline and reports failures to the breaker.
#[derive(Clone)]
pub struct GuardedConnection {
    conn: MultiplexedConnection,
    generation: u64,
    shared: Arc<Shared>,
}

impl GuardedConnection {
    async fn guarded<T>(&self, call: impl Future<Output = Result<T, RedisError>>) -> Result<T, RedisError> {
        let result = tokio::time::timeout(self.shared.timeout, call)
            .await
            .unwrap_or_else(|_| Err(timed_out()));
        if let Err(error) = &result
            && is_connection_failure(error)
        {
            self.shared.trip(self.generation, error);
        }
        result
    }
}

impl ConnectionLike for GuardedConnection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        let mut conn = self.conn.clone();
        Box::pin(async move { self.guarded(conn.req_packed_command(cmd)).await })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        let mut conn = self.conn.clone();
        Box::pin(async move { self.guarded(conn.req_packed_commands(cmd, offset, count)).await })
    }

    fn get_db(&self) -> i64 {
        self.conn.get_db()
    }
}
