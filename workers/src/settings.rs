//! Typed settings of the workers service, read once from the environment.

use crate::password_reset::PasswordLinks;
use crate::retry::RetryPolicy;
use eventstore::StreamSettings;
use lettre::Tokio1Executor;
use lettre::message::Mailbox;
use lettre::transport::smtp::AsyncSmtpTransport;
use runtime::{ConfigError, InfraSettings, env_opt, env_or, env_parse};
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;
use web::HttpSettings;

/// Default sender of every email.
pub const DEFAULT_MAIL_FROM: &str = "CQRS Backend <no-reply@localhost>";

/// Everything the workers service needs to run.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `DATABASE_URL`.
    pub database_url: String,
    /// `DATABASE_MAX_CONNECTIONS` (default 10): must exceed `WORKER_CONCURRENCY`, since
    /// each message in flight holds a connection while its side effect runs; an order
    /// confirmation loads its owner on a second one, so twice `WORKER_CONCURRENCY` plus
    /// one or two for the operator API lets every message run at once.
    pub database_max_connections: u32,
    /// `NATS_URL`.
    pub nats_url: String,
    /// `EVENTS_STREAM`, `EVENTS_SUBJECT_PREFIX`, `EVENTS_DUPLICATE_WINDOW_SECONDS`.
    pub stream: StreamSettings,
    /// `JWT_ISSUER`: the issuer whose access tokens are accepted.
    pub jwt_issuer: String,
    /// `BIND_ADDRESS` (default `0.0.0.0`).
    pub bind_address: String,
    /// `WORKERS_PORT` (default 8082); 0 picks a free port.
    pub port: u16,
    /// The shared HTTP settings ([`HttpSettings::from_env`]).
    pub http: HttpSettings,
    /// How emails leave the service.
    pub mail: MailSettings,
    /// `WORKER_BACKOFF_BASE_MS`, `WORKER_BACKOFF_MAX_MS`, `WORKER_MAX_ATTEMPTS`.
    pub retry: RetryPolicy,
    /// `WORKER_CONCURRENCY` (default 4): messages handled at once by one process, over
    /// all its consumers together.
    pub concurrency: usize,
    /// How webhook deliveries are made.
    pub webhooks: WebhookSettings,
}

/// How the workers deliver webhooks.
#[derive(Debug, Clone, Copy)]
pub struct WebhookSettings {
    /// `WEBHOOK_BACKOFF_BASE_MS` (default 5000), `WEBHOOK_BACKOFF_MAX_MS` (default
    /// 600000), `WEBHOOK_MAX_ATTEMPTS` (default 8) and `WEBHOOK_DISABLE_AFTER` (default
    /// 50 failed attempts in a row; 0 never disables).
    pub policy: webhooks::DeliveryPolicy,
    /// `WEBHOOK_TIMEOUT_MS` (default 10000): one attempt, connection to last byte.
    pub timeout: Duration,
    /// `WEBHOOK_CONCURRENCY` (default 32): attempts in flight at once in one process.
    pub concurrency: u32,
    /// `WEBHOOK_PER_ENDPOINT` (default 4): attempts in flight at once to one endpoint
    /// from one process, so a slow endpoint holds at most these slots.
    pub per_endpoint: u32,
    /// `WEBHOOK_POLL_MS` (default 500): how often due deliveries are looked for when
    /// nothing new arrived (new events wake the dispatcher at once).
    pub poll: Duration,
    /// `WEBHOOK_ALLOW_PRIVATE_NETWORKS` (default false): whether deliveries may go to
    /// loopback, private, link-local and other internal addresses.
    pub networks: webhooks::NetworkPolicy,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        Self {
            policy: webhooks::DeliveryPolicy::default(),
            timeout: Duration::from_secs(10),
            concurrency: 32,
            per_endpoint: 4,
            poll: Duration::from_millis(500),
            networks: webhooks::NetworkPolicy::PublicOnly,
        }
    }
}

impl WebhookSettings {
    fn from_env() -> Result<Self, ConfigError> {
        let base = Duration::from_millis(positive("WEBHOOK_BACKOFF_BASE_MS", 5000)?);
        let max = Duration::from_millis(positive("WEBHOOK_BACKOFF_MAX_MS", 600_000)?);
        if max < base {
            return Err(invalid(
                "WEBHOOK_BACKOFF_MAX_MS",
                "must not be below WEBHOOK_BACKOFF_BASE_MS",
            ));
        }
        let concurrency = positive("WEBHOOK_CONCURRENCY", 32)?;
        let per_endpoint = positive("WEBHOOK_PER_ENDPOINT", 4)?;
        let small = |name: &str, value: u64| u32::try_from(value).map_err(|_| invalid(name, "is too large"));
        Ok(Self {
            policy: webhooks::DeliveryPolicy {
                backoff: runtime::backoff::Policy::new(base, max),
                max_attempts: small("WEBHOOK_MAX_ATTEMPTS", positive("WEBHOOK_MAX_ATTEMPTS", 8)?)?,
                disable_after: small("WEBHOOK_DISABLE_AFTER", env_parse("WEBHOOK_DISABLE_AFTER", 50)?)?,
            },
            timeout: Duration::from_millis(positive("WEBHOOK_TIMEOUT_MS", 10_000)?),
            concurrency: small("WEBHOOK_CONCURRENCY", concurrency)?,
            per_endpoint: small("WEBHOOK_PER_ENDPOINT", per_endpoint)?,
            poll: Duration::from_millis(positive("WEBHOOK_POLL_MS", 500)?),
            networks: webhooks::NetworkPolicy::from_env()?,
        })
    }
}

/// Where emails go.
#[derive(Clone)]
pub struct MailSettings {
    /// `SMTP_URL`, e.g. `smtp://127.0.0.1:2525`, `smtps://user:pass@host`,
    /// `smtp://host:587?tls=required`. Unset: emails are written to `dir` instead.
    pub smtp_url: Option<String>,
    /// `MAIL_FROM` (default `CQRS Backend <no-reply@localhost>`).
    pub from: Mailbox,
    /// `MAIL_DIR` (default `./var/mail`): where the file mailer writes `<event-id>.eml`.
    pub dir: PathBuf,
    /// `SMTP_TIMEOUT_SECONDS` (default 30): one SMTP command may take this long.
    pub smtp_timeout: Duration,
    /// `PASSWORD_RESET_URL` (default `http://localhost:3000/reset-password`) and
    /// `PASSWORD_RESET_TTL_MINUTES` (default 30).
    pub password_links: PasswordLinks,
}

/// `PASSWORD_RESET_URL` when unset: the page of a front end on its usual development port.
pub const DEFAULT_PASSWORD_RESET_URL: &str = "http://localhost:3000/reset-password";

impl fmt::Debug for MailSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The SMTP URL may carry a password.
        f.debug_struct("MailSettings")
            .field("smtp_url", &self.smtp_url.as_ref().map(|_| "<redacted>"))
            .field("from", &self.from.email.to_string())
            .field("dir", &self.dir)
            .field("smtp_timeout", &self.smtp_timeout)
            .field("password_links", &self.password_links)
            .finish()
    }
}

impl Default for MailSettings {
    fn default() -> Self {
        Self {
            smtp_url: None,
            from: DEFAULT_MAIL_FROM
                .parse()
                .expect("the default sender is a valid mailbox"),
            dir: PathBuf::from("./var/mail"),
            smtp_timeout: Duration::from_secs(30),
            password_links: PasswordLinks {
                url: DEFAULT_PASSWORD_RESET_URL.into(),
                ttl: Duration::from_secs(30 * 60),
            },
        }
    }
}

impl Default for Settings {
    /// The documented defaults, without reading the environment.
    fn default() -> Self {
        Self {
            database_url: "postgres://postgres@127.0.0.1:5432/cqrs".into(),
            database_max_connections: 10,
            nats_url: "nats://127.0.0.1:4222".into(),
            stream: StreamSettings {
                name: "EVENTS".into(),
                subject_prefix: "events".into(),
                duplicate_window: Duration::from_secs(120),
            },
            jwt_issuer: "cqrs-backend".into(),
            bind_address: "0.0.0.0".into(),
            port: 8082,
            http: HttpSettings::default(),
            mail: MailSettings::default(),
            retry: RetryPolicy::default(),
            concurrency: 4,
            webhooks: WebhookSettings::default(),
        }
    }
}

impl Settings {
    /// Reads the settings from environment variables; a malformed value names its variable.
    pub fn from_env() -> Result<Self, ConfigError> {
        let infra = InfraSettings::from_env()?;
        let defaults = Self::default();
        let smtp_url = env_opt("SMTP_URL");
        if let Some(url) = &smtp_url {
            check_smtp_url(url)?;
        }
        let from = env_or("MAIL_FROM", DEFAULT_MAIL_FROM);
        let from = from.parse::<Mailbox>().map_err(|e| invalid("MAIL_FROM", e))?;
        let retry = RetryPolicy {
            base: Duration::from_millis(positive("WORKER_BACKOFF_BASE_MS", 1000)?),
            max: Duration::from_millis(positive("WORKER_BACKOFF_MAX_MS", 60_000)?),
            max_attempts: positive("WORKER_MAX_ATTEMPTS", 5)? as u32,
        };
        if retry.max < retry.base {
            return Err(invalid(
                "WORKER_BACKOFF_MAX_MS",
                "must not be below WORKER_BACKOFF_BASE_MS",
            ));
        }
        Ok(Self {
            database_url: infra.database_url,
            database_max_connections: positive("DATABASE_MAX_CONNECTIONS", 10)? as u32,
            nats_url: infra.nats_url,
            stream: infra.stream,
            jwt_issuer: env_or("JWT_ISSUER", &defaults.jwt_issuer),
            bind_address: env_or("BIND_ADDRESS", &defaults.bind_address),
            port: env_parse("WORKERS_PORT", defaults.port)?,
            http: HttpSettings::from_env()?,
            mail: MailSettings {
                smtp_url,
                from,
                dir: PathBuf::from(env_or("MAIL_DIR", "./var/mail")),
                smtp_timeout: Duration::from_secs(positive("SMTP_TIMEOUT_SECONDS", 30)?),
                password_links: PasswordLinks {
                    url: env_or("PASSWORD_RESET_URL", DEFAULT_PASSWORD_RESET_URL),
                    ttl: Duration::from_secs(positive("PASSWORD_RESET_TTL_MINUTES", 30)? * 60),
                },
            },
            retry,
            concurrency: positive("WORKER_CONCURRENCY", 4)? as usize,
            webhooks: WebhookSettings::from_env()?,
        })
    }
}

/// Checks that lettre accepts the URL, without echoing it (it may hold a password).
pub(crate) fn check_smtp_url(url: &str) -> Result<(), ConfigError> {
    AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
        .map(|_| ())
        .map_err(|_| {
            invalid(
                "SMTP_URL",
                "expected smtp://host[:port], smtp://host[:port]?tls=required|opportunistic \
                 or smtps://host[:port], with optional user:password@",
            )
        })
}

fn positive(name: &str, default: u64) -> Result<u64, ConfigError> {
    match env_parse(name, default)? {
        0 => Err(invalid(name, "must be greater than 0")),
        value => Ok(value),
    }
}

fn invalid(name: &str, reason: impl fmt::Display) -> ConfigError {
    ConfigError {
        name: name.to_owned(),
        reason: reason.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smtp_urls_lettre_understands_are_accepted_and_others_refused() {
        for url in [
            "smtp://127.0.0.1:2525",
            "smtps://user:secret@mail.example.com",
            "smtp://mail.example.com:587?tls=required",
        ] {
            assert!(check_smtp_url(url).is_ok(), "{url}");
        }
        let error = check_smtp_url("http://user:secret@mail.example.com").expect_err("refused");
        assert_eq!(error.name, "SMTP_URL");
        assert!(!error.reason.contains("secret"));
    }

    #[test]
    fn debug_output_never_shows_the_smtp_url() {
        let settings = Settings {
            mail: MailSettings {
                smtp_url: Some("smtps://user:hunter2@mail.example.com".into()),
                ..MailSettings::default()
            },
            ..Settings::default()
        };
        assert!(!format!("{settings:?}").contains("hunter2"));
    }
}
