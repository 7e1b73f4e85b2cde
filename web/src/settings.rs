//! The HTTP settings every service shares, read once from the environment: the request
//! limits applied by [`harden`](crate::harden) and the connection limits applied by
//! [`serve`](crate::serve).

use runtime::{ConfigError, env_or, env_parse};
use std::time::Duration;

/// Limits and policies of an HTTP service.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// `REQUEST_TIMEOUT_SECONDS` (10): a request still running after this is answered 503.
    pub request_timeout: Duration,
    /// `BODY_LIMIT_BYTES` (1048576): largest accepted body; a larger one is answered 413.
    pub body_limit: usize,
    /// `CORS_ALLOWED_ORIGINS`: origins allowed by CORS; empty disables CORS, `*` allows any.
    pub cors_origins: Vec<String>,
    /// `HSTS_ENABLED` (false): send `Strict-Transport-Security` (only where TLS terminates
    /// here or in front).
    pub hsts: bool,
    /// How long connections may stay and how many at once.
    pub connections: ConnectionLimits,
}

/// What one client connection may hold of a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// `HTTP_HEADER_READ_TIMEOUT_SECONDS` (5): a new connection must send its first request
    /// head, and a request once begun must finish its head, within this; else it is closed.
    pub header_read_timeout: Duration,
    /// `HTTP_IDLE_TIMEOUT_SECONDS` (60): a keep-alive connection that sends nothing for
    /// this long after a response is closed.
    pub idle_timeout: Duration,
    /// `HTTP_MAX_CONNECTIONS` (1024): connections served at once; a further one waits up
    /// to `server::SLOT_WAIT` for one to close, else is answered 503 (see `serve`).
    pub max_connections: usize,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            request_timeout: Duration::from_secs(10),
            body_limit: 1024 * 1024,
            cors_origins: vec![],
            hsts: false,
            connections: ConnectionLimits::default(),
        }
    }
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(60),
            max_connections: 1024,
        }
    }
}

impl HttpSettings {
    /// Reads the settings of the table above; unset variables keep their defaults, and a
    /// malformed or zero value is an error naming its variable.
    pub fn from_env() -> Result<Self, ConfigError> {
        let defaults = Self::default();
        let limits = defaults.connections;
        Ok(Self {
            request_timeout: seconds("REQUEST_TIMEOUT_SECONDS", defaults.request_timeout)?,
            body_limit: positive("BODY_LIMIT_BYTES", defaults.body_limit)?,
            cors_origins: origins(&env_or("CORS_ALLOWED_ORIGINS", "")),
            hsts: env_parse("HSTS_ENABLED", defaults.hsts)?,
            connections: ConnectionLimits {
                header_read_timeout: seconds("HTTP_HEADER_READ_TIMEOUT_SECONDS", limits.header_read_timeout)?,
                idle_timeout: seconds("HTTP_IDLE_TIMEOUT_SECONDS", limits.idle_timeout)?,
                max_connections: positive("HTTP_MAX_CONNECTIONS", limits.max_connections)?,
            },
        })
    }
}

/// A comma-separated list, trimmed, without empty entries.
fn origins(raw: &str) -> Vec<String> {
    raw.split(',')
        .map(str::trim)
        .filter(|origin| !origin.is_empty())
        .map(str::to_owned)
        .collect()
}

fn seconds(name: &str, default: Duration) -> Result<Duration, ConfigError> {
    positive(name, default.as_secs()).map(Duration::from_secs)
}

fn positive<T>(name: &str, default: T) -> Result<T, ConfigError>
where
    T: std::str::FromStr + Default + PartialEq,
    T::Err: std::fmt::Display,
{
    let value = env_parse(name, default)?;
    if value == T::default() {
        return Err(ConfigError {
            name: name.to_owned(),
            reason: "must be greater than 0".to_owned(),
        });
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cors_origins_are_split_on_commas_and_trimmed() {
        assert_eq!(
            origins(" https://a.example , ,https://b.example,"),
            ["https://a.example", "https://b.example"]
        );
        assert!(origins("").is_empty());
    }
}
