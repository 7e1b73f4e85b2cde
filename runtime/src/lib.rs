//! What every service binary needs at start-up: typed settings from the environment,
//! JSON logs, connections to Postgres (created and migrated), NATS and Redis, and a
//! shutdown signal.

pub mod audit;
pub mod backoff;
pub mod changes;
pub mod config;
pub mod connect;
pub mod consumers;
pub mod migrations;
pub mod readiness;
pub mod redis;
pub mod shutdown;
pub mod stream;
pub mod telemetry;

pub use changes::{ChangeFeed, StampedCache};
pub use config::{ConfigError, InfraSettings, env_opt, env_or, env_parse};
pub use connect::{connect_nats, connect_postgres, connect_postgres_with, statement_timeout};
pub use migrations::migrate;
pub use readiness::{changes_check, nats_check, redis_check};
pub use redis::{GuardedConnection, RedisHandle};
pub use shutdown::shutdown_signal;
pub use stream::StreamSettings;
