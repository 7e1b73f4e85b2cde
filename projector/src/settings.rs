//! The projector's settings, read once from the environment at start (or built by tests).

use crate::RebuildLimits;
use runtime::{ConfigError, InfraSettings, env_or, env_parse};
use std::net::IpAddr;
use std::time::Duration;
use web::HttpSettings;

/// Everything the projector needs to know at start.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Postgres, NATS, Redis and the events stream.
    pub infra: InfraSettings,
    /// The shared HTTP settings ([`HttpSettings::from_env`]).
    pub http: HttpSettings,
    /// `BIND_ADDRESS` (0.0.0.0).
    pub bind_address: IpAddr,
    /// `PROJECTOR_PORT` (8083); 0 picks a free port.
    pub port: u16,
    /// `CACHE_TTL_SECONDS` (3600): lifetime of the Redis documents the projector writes.
    pub cache_ttl: Duration,
    /// `PROJECTOR_CONCURRENCY` (2): batches in flight at once in each projection's consumer
    /// in one replica. Events of one stream stay in order whatever the value: the row lock
    /// and version check serialise them.
    pub concurrency: usize,
    /// `PROJECTOR_BATCH_SIZE` (500): messages projected per transaction at most.
    pub batch_size: usize,
    /// `PROJECTOR_REBUILD_BATCH_SIZE` (5000) and `PROJECTOR_REBUILD_USERS_IN_MEMORY`
    /// (100000, rows of any one projection): how much a rebuild reads and holds at once.
    pub rebuild: RebuildLimits,
    /// `JWT_ISSUER` (`cqrs-backend`): the `iss` of the access tokens the operator endpoint accepts.
    pub jwt_issuer: String,
}

impl Settings {
    /// The defaults around the given infrastructure (what tests start from).
    pub fn new(infra: InfraSettings) -> Self {
        Self {
            infra,
            http: HttpSettings::default(),
            bind_address: IpAddr::from([0, 0, 0, 0]),
            port: 8083,
            cache_ttl: Duration::from_secs(3600),
            concurrency: 2,
            batch_size: 500,
            rebuild: RebuildLimits::default(),
            jwt_issuer: "cqrs-backend".into(),
        }
    }

    /// Reads every setting from the environment; a malformed value names its variable.
    pub fn from_env() -> Result<Self, ConfigError> {
        let defaults = Self::new(InfraSettings::from_env()?);
        let http = HttpSettings::from_env()?;
        let concurrency = env_parse("PROJECTOR_CONCURRENCY", defaults.concurrency)?;
        if concurrency == 0 {
            return Err(invalid("PROJECTOR_CONCURRENCY", "must be at least 1"));
        }
        let batch_size = env_parse("PROJECTOR_BATCH_SIZE", defaults.batch_size)?;
        if batch_size == 0 {
            return Err(invalid("PROJECTOR_BATCH_SIZE", "must be at least 1"));
        }
        let rebuild = RebuildLimits {
            batch_size: env_parse("PROJECTOR_REBUILD_BATCH_SIZE", defaults.rebuild.batch_size)?,
            users_in_memory: env_parse(
                "PROJECTOR_REBUILD_USERS_IN_MEMORY",
                defaults.rebuild.users_in_memory,
            )?,
        };
        if rebuild.batch_size < 1 {
            return Err(invalid("PROJECTOR_REBUILD_BATCH_SIZE", "must be at least 1"));
        }
        Ok(Self {
            http,
            bind_address: env_parse("BIND_ADDRESS", defaults.bind_address)?,
            port: env_parse("PROJECTOR_PORT", defaults.port)?,
            cache_ttl: Duration::from_secs(env_parse("CACHE_TTL_SECONDS", 3600u64)?),
            concurrency,
            batch_size,
            rebuild,
            jwt_issuer: env_or("JWT_ISSUER", &defaults.jwt_issuer),
            ..defaults
        })
    }

    /// Postgres connections this process needs: one per batch in flight in each of the
    /// [`Settings::CONSUMERS`] consumers, plus a few for the HTTP endpoints, readiness checks
    /// and best-seller writes.
    pub fn max_db_connections(&self) -> u32 {
        u32::try_from(self.concurrency)
            .unwrap_or(u32::MAX)
            .saturating_mul(Self::CONSUMERS)
            .saturating_add(4)
    }

    /// Durable consumers (one per registered projection) one replica runs.
    pub const CONSUMERS: u32 = crate::registry::PROJECTIONS.len() as u32;
}

fn invalid(name: &str, reason: &str) -> ConfigError {
    ConfigError {
        name: name.to_owned(),
        reason: reason.to_owned(),
    }
}
