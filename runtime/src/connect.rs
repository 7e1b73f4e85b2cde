//! Connections to the infrastructure. Postgres is required at start (it is the source
//! of truth); NATS and Redis may come and go, and the clients reconnect by themselves.

use redis::aio::ConnectionManager;
use sqlx::migrate::MigrateDatabase;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Postgres};
use std::str::FromStr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// Creates the database if missing, applies pending migrations, and returns a pool.
pub async fn connect_postgres(url: &str, max_connections: u32) -> anyhow::Result<PgPool> {
    use anyhow::Context;
    let options = PgConnectOptions::from_str(url).context("DATABASE_URL is not a valid Postgres URL")?;
    match Postgres::database_exists(url).await {
        Ok(true) => {}
        Ok(false) => {
            if let Err(error) = Postgres::create_database(url).await {
                // Another service may have created it at the same moment.
                if !Postgres::database_exists(url).await.unwrap_or(false) {
                    return Err(error).context("could not create the database");
                }
            }
        }
        Err(error) => {
            return Err(error).with_context(|| {
                format!(
                    "PostgreSQL is not reachable at {}:{}",
                    options.get_host(),
                    options.get_port()
                )
            });
        }
    }
    let pool = PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(5))
        .connect_with(options)
        .await
        .context("could not connect to PostgreSQL")?;
    migrate(&pool).await?;
    Ok(pool)
}

/// Applies pending migrations (under sqlx's advisory lock, so services may race).
pub async fn migrate(pool: &PgPool) -> anyhow::Result<()> {
    use anyhow::Context;
    sqlx::migrate!("../migrations")
        .run(pool)
        .await
        .context("could not apply migrations")
}

/// A NATS client that keeps retrying in the background when the server is down.
pub async fn connect_nats(url: &str) -> anyhow::Result<async_nats::Client> {
    use anyhow::Context;
    async_nats::ConnectOptions::new()
        .retry_on_initial_connect()
        .connection_timeout(Duration::from_secs(2))
        .request_timeout(Some(Duration::from_secs(5)))
        .event_callback(|event| async move {
            tracing::info!(nats.event = %event, "nats connection event");
        })
        .connect(url)
        .await
        .with_context(|| format!("NATS_URL {url} is not usable"))
}

/// A Redis connection that may not exist yet: made in the background and replaced
/// never (the manager reconnects by itself once it has connected).
#[derive(Clone)]
pub struct RedisHandle {
    inner: Arc<RwLock<Option<ConnectionManager>>>,
}

impl RedisHandle {
    /// Starts connecting to `url`; [`RedisHandle::get`] returns `None` until connected.
    pub fn connect(url: &str) -> anyhow::Result<Self> {
        use anyhow::Context;
        let client = redis::Client::open(url).context("REDIS_URL is not a valid Redis URL")?;
        let handle = Self {
            inner: Arc::new(RwLock::new(None)),
        };
        let slot = handle.inner.clone();
        tokio::spawn(async move {
            let mut delay = Duration::from_millis(100);
            let config = redis::aio::ConnectionManagerConfig::new()
                .set_connection_timeout(Duration::from_secs(1))
                .set_response_timeout(Duration::from_secs(1))
                .set_number_of_retries(2);
            loop {
                match ConnectionManager::new_with_config(client.clone(), config.clone()).await {
                    Ok(manager) => {
                        *slot.write().unwrap_or_else(|e| e.into_inner()) = Some(manager);
                        return;
                    }
                    Err(error) => {
                        tracing::warn!(error = %error, "Redis not reachable yet");
                        tokio::time::sleep(delay).await;
                        delay = (delay * 2).min(Duration::from_secs(5));
                    }
                }
            }
        });
        Ok(handle)
    }

    /// The connection, once established.
    pub fn get(&self) -> Option<ConnectionManager> {
        self.inner.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Waits up to `timeout` for the first connection.
    pub async fn wait(&self, timeout: Duration) -> Option<ConnectionManager> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(manager) = self.get() {
                return Some(manager);
            }
            if tokio::time::Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// `PING`, for readiness checks.
    pub async fn ping(&self) -> Result<(), String> {
        let mut manager = self.get().ok_or_else(|| "not connected".to_owned())?;
        redis::cmd("PING")
            .query_async::<String>(&mut manager)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

/// A readiness check for a NATS client (for `web::Readiness::check`): up while connected.
pub fn nats_check(
    client: async_nats::Client,
) -> impl Fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), String>> + Send>>
+ Send
+ Sync
+ 'static {
    move || {
        let state = client.connection_state();
        Box::pin(async move {
            match state {
                async_nats::connection::State::Connected => Ok(()),
                other => Err(format!("not connected ({other:?})")),
            }
        })
    }
}
