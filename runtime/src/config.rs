//! Reading settings from environment variables, with defaults documented in the README.
//! A malformed value stops the process with a message naming the variable.

use crate::StreamSettings;
use std::str::FromStr;
use std::time::Duration;

/// A setting that could not be read.
#[derive(Debug, thiserror::Error)]
#[error("invalid value for {name}: {reason}")]
pub struct ConfigError {
    /// The variable.
    pub name: String,
    /// What is wrong.
    pub reason: String,
}

/// The variable's value, or `default` when unset or empty.
pub fn env_or(name: &str, default: &str) -> String {
    env_opt(name).unwrap_or_else(|| default.to_owned())
}

/// The variable's value when set and not empty.
pub fn env_opt(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// The variable parsed as `T`, or `default` when unset.
pub fn env_parse<T: FromStr>(name: &str, default: T) -> Result<T, ConfigError>
where
    T::Err: std::fmt::Display,
{
    match env_opt(name) {
        None => Ok(default),
        Some(raw) => raw.trim().parse().map_err(|e: T::Err| ConfigError {
            name: name.to_owned(),
            reason: e.to_string(),
        }),
    }
}

/// Where the shared infrastructure is.
#[derive(Debug, Clone)]
pub struct InfraSettings {
    /// `DATABASE_URL`.
    pub database_url: String,
    /// `NATS_URL`.
    pub nats_url: String,
    /// `REDIS_URL`.
    pub redis_url: String,
    /// `REDIS_KEY_PREFIX`: namespace of every Redis key.
    pub redis_prefix: String,
    /// `EVENTS_STREAM` and `EVENTS_SUBJECT_PREFIX`.
    pub stream: StreamSettings,
}

impl InfraSettings {
    /// Reads the infrastructure settings.
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            database_url: env_or("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/cqrs"),
            nats_url: env_or("NATS_URL", "nats://127.0.0.1:4222"),
            redis_url: env_or("REDIS_URL", "redis://127.0.0.1:6379"),
            redis_prefix: env_or("REDIS_KEY_PREFIX", "cqrs"),
            stream: StreamSettings {
                name: env_or("EVENTS_STREAM", "EVENTS"),
                subject_prefix: env_or("EVENTS_SUBJECT_PREFIX", "events"),
                duplicate_window: Duration::from_secs(env_parse("EVENTS_DUPLICATE_WINDOW_SECONDS", 120u64)?),
            },
        })
    }
}
