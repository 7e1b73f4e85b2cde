//! Typed settings of the query API, read once from the environment (or built by tests).

use runtime::{ConfigError, InfraSettings, env_or, env_parse};
use std::net::IpAddr;
use std::time::Duration;
use web::HttpSettings;
use web::rate_limit::{DEFAULT_API_RATE_LIMIT, Quota, quota_from_env};

/// Everything the query API needs to start.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `DATABASE_URL`: the Postgres read models (and the published signing keys).
    pub database_url: String,
    /// `DATABASE_MAX_CONNECTIONS` (10): size of the Postgres pool.
    pub database_max_connections: u32,
    /// `REDIS_URL`: the hot copy of the read models.
    pub redis_url: String,
    /// `REDIS_KEY_PREFIX`: namespace of every Redis key.
    pub redis_prefix: String,
    /// `JWT_ISSUER`: the issuer access tokens must name.
    pub jwt_issuer: String,
    /// `BIND_ADDRESS` (0.0.0.0).
    pub bind_address: IpAddr,
    /// `QUERY_API_PORT` (8081); 0 picks a free port.
    pub port: u16,
    /// `CACHE_TTL_SECONDS` (3600): lifetime of a document (user, product, order) filled by a read.
    pub cache_ttl: Duration,
    /// `NEGATIVE_CACHE_TTL_SECONDS` (5): lifetime of a "no such user, product or order" entry.
    pub negative_cache_ttl: Duration,
    /// `CONSISTENCY_WAIT_MS` (2000): the longest a read with `X-Consistency-Token` waits.
    pub consistency_wait: Duration,
    /// The shared HTTP settings ([`HttpSettings::from_env`]).
    pub http: HttpSettings,
    /// `API_RATE_LIMIT` (`600/60s`): requests per caller (user, else address); `0` disables.
    pub api_rate_limit: Option<Quota>,
    /// `TRUST_FORWARDED_FOR` (false): take the client address from `X-Forwarded-For`.
    pub trust_forwarded_for: bool,
}

impl Settings {
    /// Reads the settings; a malformed value is an error naming the variable.
    pub fn from_env() -> Result<Self, ConfigError> {
        let infra = InfraSettings::from_env()?;
        let bind_address = env_or("BIND_ADDRESS", "0.0.0.0");
        let bind_address = bind_address.trim().parse().map_err(|_| ConfigError {
            name: "BIND_ADDRESS".to_owned(),
            reason: format!("`{bind_address}` is not an IP address"),
        })?;
        Ok(Self {
            database_url: infra.database_url,
            database_max_connections: env_parse("DATABASE_MAX_CONNECTIONS", 10)?,
            redis_url: infra.redis_url,
            redis_prefix: infra.redis_prefix,
            jwt_issuer: env_or("JWT_ISSUER", "cqrs-backend"),
            bind_address,
            port: env_parse("QUERY_API_PORT", 8081)?,
            cache_ttl: Duration::from_secs(env_parse("CACHE_TTL_SECONDS", 3600)?),
            negative_cache_ttl: Duration::from_secs(env_parse("NEGATIVE_CACHE_TTL_SECONDS", 5)?),
            consistency_wait: Duration::from_millis(env_parse("CONSISTENCY_WAIT_MS", 2000)?),
            http: HttpSettings::from_env()?,
            api_rate_limit: quota_from_env("API_RATE_LIMIT", DEFAULT_API_RATE_LIMIT)?,
            trust_forwarded_for: env_parse("TRUST_FORWARDED_FOR", false)?,
        })
    }
}
