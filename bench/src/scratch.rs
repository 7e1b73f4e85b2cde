//! The scratch resources of one run: a fresh migrated database, a JetStream stream with
//! its own subject prefix, and a Redis key prefix; all removed again by [`Scratch::cleanup`].

use crate::BenchSettings;
use anyhow::Context;
use eventstore::StreamSettings;
use runtime::InfraSettings;
use sqlx::{Connection, PgConnection, PgPool};
use std::time::Duration;

/// Names and connections unique to this run.
pub struct Scratch {
    /// The scratch database's name.
    pub db_name: String,
    /// Its URL.
    pub database_url: String,
    /// Where it was created from.
    admin_url: String,
    /// A pool on it for the benchmark's own queries.
    pub pool: PgPool,
    /// Redis and NATS, with this run's names.
    pub infra: InfraSettings,
    /// A multiplexed Redis connection.
    pub redis: redis::aio::MultiplexedConnection,
}

impl Scratch {
    /// Creates and migrates the database and connects to Redis.
    pub async fn create(settings: &BenchSettings) -> anyhow::Result<Self> {
        let suffix = uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();
        let db_name = format!("bench_{suffix}");
        let url = url_with_database(&settings.database_url, &db_name)?;
        let pool = runtime::connect_postgres(&url, 8)
            .await
            .context("creating the scratch database")?;
        let redis = redis::Client::open(settings.redis_url.as_str())
            .context("BENCH_REDIS_URL is not a Redis URL")?
            .get_multiplexed_async_connection()
            .await
            .with_context(|| format!("Redis is not reachable at {}", settings.redis_url))?;
        let infra = InfraSettings {
            database_url: url.clone(),
            nats_url: settings.nats_url.clone(),
            redis_url: settings.redis_url.clone(),
            redis_prefix: format!("bench_{suffix}"),
            stream: StreamSettings {
                name: format!("BENCH_{suffix}"),
                subject_prefix: format!("bench_{suffix}"),
                duplicate_window: Duration::from_secs(120),
            },
        };
        Ok(Self {
            db_name,
            database_url: url,
            admin_url: settings.database_url.clone(),
            pool,
            infra,
            redis,
        })
    }

    /// Drops the database, deletes the stream and every key under the prefix. Best effort:
    /// each step is tried, and what failed is returned as text.
    pub async fn cleanup(self) -> Vec<String> {
        let mut failures = Vec::new();
        self.pool.close().await;
        let dropped = async {
            let mut conn = PgConnection::connect(&self.admin_url).await?;
            sqlx::query(&format!(
                "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
                self.db_name
            ))
            .execute(&mut conn)
            .await?;
            Ok::<_, sqlx::Error>(())
        };
        if let Err(error) = dropped.await {
            failures.push(format!("dropping database {}: {error}", self.db_name));
        }
        if let Err(error) = delete_stream(&self.infra).await {
            failures.push(format!("deleting stream {}: {error}", self.infra.stream.name));
        }
        let mut redis = self.redis.clone();
        if let Err(error) = delete_keys(&mut redis, &format!("{}:*", self.infra.redis_prefix)).await {
            failures.push(format!(
                "deleting Redis keys {}:*: {error}",
                self.infra.redis_prefix
            ));
        }
        failures
    }
}

/// `url` pointing at database `name`.
fn url_with_database(url: &str, name: &str) -> anyhow::Result<String> {
    let mut parsed = url::Url::parse(url).context("BENCH_DATABASE_URL is not a URL")?;
    parsed.set_path(name);
    Ok(parsed.to_string())
}

async fn delete_stream(infra: &InfraSettings) -> Result<(), async_nats::Error> {
    let client = async_nats::ConnectOptions::new()
        .connection_timeout(Duration::from_secs(2))
        .connect(&infra.nats_url)
        .await?;
    let jetstream = async_nats::jetstream::new(client);
    match jetstream.delete_stream(&infra.stream.name).await {
        Ok(_) => Ok(()),
        // Never created (the run stopped before anything was published).
        Err(error) if error.to_string().contains("not found") => Ok(()),
        Err(error) => Err(error.into()),
    }
}

/// Deletes every key matching `pattern`; returns how many.
pub async fn delete_keys(
    redis: &mut redis::aio::MultiplexedConnection,
    pattern: &str,
) -> redis::RedisResult<u64> {
    let mut cursor = 0u64;
    let mut deleted = 0u64;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(1000)
            .query_async(redis)
            .await?;
        if !keys.is_empty() {
            deleted += redis::cmd("UNLINK").arg(&keys).query_async::<u64>(redis).await?;
        }
        if next == 0 {
            return Ok(deleted);
        }
        cursor = next;
    }
}
