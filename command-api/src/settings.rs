//! Typed settings of the command API, read once from the environment at start.

use runtime::{ConfigError, InfraSettings, env_opt, env_or, env_parse};
use std::path::PathBuf;
use std::time::Duration;
use web::HttpSettings;
use web::rate_limit::{DEFAULT_API_RATE_LIMIT, Quota, quota_from_env};

/// The bootstrap administrator (`ADMIN_EMAIL`, `ADMIN_PASSWORD`, `ADMIN_NAME`).
#[derive(Clone)]
pub struct AdminAccount {
    /// Email.
    pub email: String,
    /// Password (only used to create the account; never logged).
    pub password: String,
    /// Display name.
    pub name: String,
}

impl std::fmt::Debug for AdminAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminAccount").finish_non_exhaustive()
    }
}

/// Everything the command API can be told.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Postgres, NATS, Redis and the events stream.
    pub infra: InfraSettings,
    /// `BIND_ADDRESS` (0.0.0.0).
    pub bind_address: String,
    /// `COMMAND_API_PORT` (8080); 0 picks a free port.
    pub port: u16,
    /// Timeouts, body and connection limits, CORS, HSTS.
    pub http: HttpSettings,
    /// `JWT_ISSUER` (cqrs-backend).
    pub jwt_issuer: String,
    /// `ACCESS_TOKEN_TTL_SECONDS` (900).
    pub access_token_ttl: Duration,
    /// `REFRESH_TOKEN_TTL_SECONDS` (604800).
    pub refresh_token_ttl: Duration,
    /// `JWT_PRIVATE_KEY_FILE`: PKCS#8 PEM Ed25519 key; unset = a fresh key per process.
    pub private_key_file: Option<PathBuf>,
    /// `AUTH_RATE_LIMIT_PER_MINUTE` (300) per client address and auth endpoint; 0 disables.
    pub auth_rate_limit_per_minute: u32,
    /// `API_RATE_LIMIT` (`600/60s`): requests per caller (user, else address) across the
    /// API; `0` disables.
    pub api_rate_limit: Option<Quota>,
    /// `LOGIN_FAILURE_LIMIT` (`5/15m`): failed logins per account and per client
    /// address; successful logins do not count; `0` disables.
    pub login_failure_limit: Option<Quota>,
    /// `PASSWORD_RESET_LIMIT` (`5/15m`): password-reset requests and confirmations per
    /// account and per client address; `0` disables.
    pub password_reset_limit: Option<Quota>,
    /// `TRUST_FORWARDED_FOR` (false): take the client address from `X-Forwarded-For`.
    pub trust_forwarded_for: bool,
    /// `ADMIN_EMAIL` + `ADMIN_PASSWORD`.
    pub admin: Option<AdminAccount>,
    /// `ARGON2_MAX_CONCURRENCY` (number of CPUs).
    pub argon2_max_concurrency: usize,
    /// `DATABASE_MAX_CONNECTIONS` (20).
    pub database_max_connections: u32,
    /// `OUTBOX_RELAY_ENABLED` (true): run the outbox relay in this process.
    pub outbox_relay: bool,
    /// Where the operator console's calls to the workers and the projector go.
    pub console: ConsoleSettings,
    /// `WEBHOOK_ALLOW_PRIVATE_NETWORKS` (false): whether webhook URLs may name
    /// `localhost` or an internal IP address (the workers check resolved names too).
    pub webhook_networks: webhooks::NetworkPolicy,
}

/// Where the operator console (`/console`) finds the other services.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleSettings {
    /// `CONSOLE_WORKERS_URL` (`http://localhost:8082`): the workers (dead letters,
    /// consumers, operator actions).
    pub workers_url: String,
    /// `CONSOLE_PROJECTOR_URL` (`http://localhost:8083`): the projector (projections).
    pub projector_url: String,
}

impl Default for ConsoleSettings {
    fn default() -> Self {
        Self {
            workers_url: "http://localhost:8082".into(),
            projector_url: "http://localhost:8083".into(),
        }
    }
}

fn base_url(name: &str, default: &str) -> Result<String, ConfigError> {
    let raw = env_or(name, default);
    match url::Url::parse(&raw) {
        Ok(url) if matches!(url.scheme(), "http" | "https") => Ok(raw.trim_end_matches('/').to_owned()),
        _ => Err(ConfigError {
            name: name.into(),
            reason: "must be an http or https URL".into(),
        }),
    }
}

/// `LOGIN_FAILURE_LIMIT` when unset.
pub const DEFAULT_LOGIN_FAILURE_LIMIT: &str = "5/15m";

impl Settings {
    /// Reads the environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        let admin = match (env_opt("ADMIN_EMAIL"), env_opt("ADMIN_PASSWORD")) {
            (Some(email), Some(password)) => Some(AdminAccount {
                email,
                password,
                name: env_or("ADMIN_NAME", "Administrator"),
            }),
            (None, None) => None,
            _ => {
                return Err(ConfigError {
                    name: "ADMIN_EMAIL/ADMIN_PASSWORD".into(),
                    reason: "set both or neither".into(),
                });
            }
        };
        let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
        Ok(Self {
            infra: InfraSettings::from_env()?,
            bind_address: env_or("BIND_ADDRESS", "0.0.0.0"),
            port: env_parse("COMMAND_API_PORT", 8080u16)?,
            http: HttpSettings::from_env()?,
            jwt_issuer: env_or("JWT_ISSUER", "cqrs-backend"),
            access_token_ttl: Duration::from_secs(env_parse("ACCESS_TOKEN_TTL_SECONDS", 900u64)?),
            refresh_token_ttl: Duration::from_secs(env_parse("REFRESH_TOKEN_TTL_SECONDS", 604_800u64)?),
            private_key_file: env_opt("JWT_PRIVATE_KEY_FILE").map(PathBuf::from),
            auth_rate_limit_per_minute: env_parse("AUTH_RATE_LIMIT_PER_MINUTE", 300u32)?,
            api_rate_limit: quota_from_env("API_RATE_LIMIT", DEFAULT_API_RATE_LIMIT)?,
            login_failure_limit: quota_from_env("LOGIN_FAILURE_LIMIT", DEFAULT_LOGIN_FAILURE_LIMIT)?,
            password_reset_limit: quota_from_env("PASSWORD_RESET_LIMIT", DEFAULT_LOGIN_FAILURE_LIMIT)?,
            trust_forwarded_for: env_parse("TRUST_FORWARDED_FOR", false)?,
            admin,
            argon2_max_concurrency: env_parse("ARGON2_MAX_CONCURRENCY", cpus)?,
            database_max_connections: env_parse("DATABASE_MAX_CONNECTIONS", 20u32)?,
            outbox_relay: env_parse("OUTBOX_RELAY_ENABLED", true)?,
            console: ConsoleSettings {
                workers_url: base_url("CONSOLE_WORKERS_URL", "http://localhost:8082")?,
                projector_url: base_url("CONSOLE_PROJECTOR_URL", "http://localhost:8083")?,
            },
            webhook_networks: webhooks::NetworkPolicy::from_env()?,
        })
    }
}
