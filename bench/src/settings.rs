//! What a benchmark run measures and against which servers: command-line flags first,
//! then `BENCH_*` environment variables, then defaults.

use runtime::{ConfigError, env_or, env_parse};
use std::time::Duration;

/// The usage text printed by `--help` and on a bad flag.
pub const USAGE: &str = "\
usage: bench [--duration SECONDS] [--concurrency N] [--users N] [--rebuild-events N]

  --duration SECONDS    length of each throughput measurement (BENCH_DURATION_SECONDS, 5)
  --concurrency N       requests in flight for the HTTP measurements (BENCH_CONCURRENCY, 64)
  --users N             users registered through the API, argon2 included (BENCH_USERS, 64)
  --rebuild-events N    events inserted for the rebuild measurement (BENCH_REBUILD_EVENTS, 200000)

servers: BENCH_DATABASE_URL (postgres://postgres@127.0.0.1:5432/postgres, used to create and
drop a scratch database), BENCH_REDIS_URL (redis://127.0.0.1:6379), BENCH_NATS_URL
(nats://127.0.0.1:4222). Logs: RUST_LOG (warn,sqlx=error).";

/// Settings of one run.
#[derive(Debug, Clone)]
pub struct BenchSettings {
    /// Length of each throughput measurement (after a short warm-up).
    pub duration: Duration,
    /// Requests in flight for the HTTP measurements (bare axum, commands, reads).
    pub concurrency: usize,
    /// Users registered and signed in through the command API.
    pub users: usize,
    /// Events inserted into the store before the rebuild is measured.
    pub rebuild_events: usize,
    /// A Postgres URL on the server to benchmark; its database is only used to create and
    /// drop the scratch database.
    pub database_url: String,
    /// Redis URL.
    pub redis_url: String,
    /// NATS URL.
    pub nats_url: String,
}

impl BenchSettings {
    /// Reads the environment, then applies `args` (without the program name) over it.
    /// `Ok(None)` means `--help` was asked for.
    pub fn load(args: impl IntoIterator<Item = String>) -> Result<Option<Self>, ConfigError> {
        let mut settings = Self {
            duration: Duration::from_secs_f64(env_parse("BENCH_DURATION_SECONDS", 5.0f64)?),
            concurrency: env_parse("BENCH_CONCURRENCY", 64usize)?,
            users: env_parse("BENCH_USERS", 64usize)?,
            rebuild_events: env_parse("BENCH_REBUILD_EVENTS", 200_000usize)?,
            database_url: env_or(
                "BENCH_DATABASE_URL",
                "postgres://postgres@127.0.0.1:5432/postgres",
            ),
            redis_url: env_or("BENCH_REDIS_URL", "redis://127.0.0.1:6379"),
            nats_url: env_or("BENCH_NATS_URL", "nats://127.0.0.1:4222"),
        };
        let mut args = args.into_iter();
        while let Some(flag) = args.next() {
            let (name, inline) = match flag.split_once('=') {
                Some((name, value)) => (name.to_owned(), Some(value.to_owned())),
                None => (flag, None),
            };
            if name == "--help" || name == "-h" {
                return Ok(None);
            }
            let value = inline
                .or_else(|| args.next())
                .ok_or_else(|| invalid(&name, "needs a value"))?;
            match name.as_str() {
                "--duration" => {
                    let seconds: f64 = parse(&name, value.trim_end_matches('s'))?;
                    settings.duration =
                        Duration::try_from_secs_f64(seconds).map_err(|e| invalid(&name, &e.to_string()))?;
                }
                "--concurrency" => settings.concurrency = parse(&name, &value)?,
                "--users" => settings.users = parse(&name, &value)?,
                "--rebuild-events" => settings.rebuild_events = parse(&name, &value)?,
                _ => return Err(invalid(&name, "unknown flag")),
            }
        }
        settings.validate()?;
        Ok(Some(settings))
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.duration < Duration::from_millis(100) {
            return Err(invalid("duration", "must be at least 0.1 s"));
        }
        if self.concurrency == 0 {
            return Err(invalid("concurrency", "must be at least 1"));
        }
        if self.users == 0 {
            return Err(invalid("users", "must be at least 1"));
        }
        Ok(())
    }
}

fn parse<T: std::str::FromStr>(name: &str, raw: &str) -> Result<T, ConfigError>
where
    T::Err: std::fmt::Display,
{
    raw.trim()
        .parse()
        .map_err(|e: T::Err| invalid(name, &e.to_string()))
}

fn invalid(name: &str, reason: &str) -> ConfigError {
    ConfigError {
        name: name.to_owned(),
        reason: reason.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(args: &[&str]) -> Result<Option<BenchSettings>, ConfigError> {
        BenchSettings::load(args.iter().map(|a| (*a).to_owned()))
    }

    #[test]
    fn flags_override_the_defaults_in_both_spellings() {
        let settings = load(&["--duration", "2s", "--concurrency=8", "--users", "3"])
            .expect("valid flags")
            .expect("not help");
        assert_eq!(settings.duration, Duration::from_secs(2));
        assert_eq!(settings.concurrency, 8);
        assert_eq!(settings.users, 3);
    }

    #[test]
    fn an_unknown_flag_or_a_missing_value_is_refused() {
        assert!(load(&["--fast"]).is_err());
        assert!(load(&["--users"]).is_err());
        assert!(load(&["--concurrency", "0"]).is_err());
    }

    #[test]
    fn help_asks_for_the_usage() {
        assert!(load(&["--help"]).expect("help").is_none());
    }
}
