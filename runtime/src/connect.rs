//! Connections to the infrastructure. Postgres is required at start (it is the source
//! of truth); NATS may come and go (the client reconnects by itself); Redis is in
//! [`crate::redis`].

use sqlx::migrate::MigrateDatabase;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgConnection, PgPool, Postgres};
use std::str::FromStr;
use std::time::Duration;

/// How long a request waits for a pooled Postgres connection. sqlx keeps retrying a
/// refused connection until this deadline, so it is also how long a request waits before
/// it is answered 503 when Postgres is down: short, since a healthy pool hands out a
/// connection in microseconds and a longer wait only holds the client.
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(1);

/// How long one statement may run when `DATABASE_STATEMENT_TIMEOUT_SECONDS` and
/// `REQUEST_TIMEOUT_SECONDS` are not set: the request timeout's default, so the query
/// behind a request answered 503 for its time stops with it.
pub const DEFAULT_STATEMENT_TIMEOUT: Duration = Duration::from_secs(10);

/// The statement timeout of every pooled connection: `DATABASE_STATEMENT_TIMEOUT_SECONDS`,
/// else `REQUEST_TIMEOUT_SECONDS`, else [`DEFAULT_STATEMENT_TIMEOUT`]; `0` turns it off.
pub fn statement_timeout() -> Result<Duration, crate::ConfigError> {
    let request = crate::env_parse("REQUEST_TIMEOUT_SECONDS", DEFAULT_STATEMENT_TIMEOUT.as_secs())?;
    let seconds = crate::env_parse("DATABASE_STATEMENT_TIMEOUT_SECONDS", request)?;
    Ok(Duration::from_secs(seconds))
}

/// Creates the database if missing, applies pending migrations (over a connection of
/// their own, without the statement timeout), and returns a pool whose connections stop
/// any statement running longer than [`statement_timeout`] (error 57014, which the APIs
/// answer 503).
pub async fn connect_postgres(url: &str, max_connections: u32) -> anyhow::Result<PgPool> {
    connect_postgres_with(url, max_connections, statement_timeout()?).await
}

/// [`connect_postgres`] with this statement timeout (zero: none).
pub async fn connect_postgres_with(
    url: &str,
    max_connections: u32,
    statement_timeout: Duration,
) -> anyhow::Result<PgPool> {
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
    let mut migrating = PgConnection::connect_with(&options)
        .await
        .context("could not connect to PostgreSQL")?;
    crate::migrations::migrate(&mut migrating).await?;
    let _ = migrating.close().await;
    let timeout = statement_timeout.as_millis().to_string();
    let pool = PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .connect_with(options.options([("statement_timeout", timeout)]))
        .await
        .context("could not connect to PostgreSQL")?;
    Ok(pool)
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
