//! The system under test, started in this process exactly as the binaries start it:
//! command API (with its outbox relay), query API and projector, on free ports.

use crate::Scratch;
use anyhow::Context;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use web::HttpSettings;

/// A server running on a task, stopped through its token.
pub struct Running {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    token: CancellationToken,
    task: JoinHandle<()>,
}

impl Running {
    /// `base` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Cancels it and waits (bounded) for in-flight work to finish.
    pub async fn stop(self) {
        self.token.cancel();
        if tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .is_err()
        {
            tracing::warn!(server = %self.base, "server did not stop in time");
        }
    }
}

fn spawn<F>(base: String, run: impl FnOnce(CancellationToken) -> F) -> Running
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let token = CancellationToken::new();
    let task = tokio::spawn(run(token.clone()));
    Running { base, token, task }
}

/// The bootstrap administrator of a run (reads the user list).
pub fn admin_email(scratch: &Scratch) -> String {
    format!("bench-admin-{}@example.com", scratch.infra.redis_prefix)
}

/// The command API with production defaults, no rate limits, argon2 bounded by
/// `argon2_max_concurrency`, and a bootstrap administrator ([`admin_email`]).
pub async fn command_api(scratch: &Scratch, argon2_max_concurrency: usize) -> anyhow::Result<Running> {
    let settings = command_api::Settings {
        infra: scratch.infra.clone(),
        bind_address: "127.0.0.1".into(),
        port: 0,
        http: HttpSettings::default(),
        jwt_issuer: "cqrs-backend".into(),
        access_token_ttl: Duration::from_secs(900),
        refresh_token_ttl: Duration::from_secs(3600),
        private_key_file: None,
        auth_rate_limit_per_minute: 0,
        // The load comes from one address and a few thousand users at far more than a
        // client's share: the API-wide limit would refuse most of it.
        api_rate_limit: None,
        login_failure_limit: None,
        password_reset_limit: None,
        trust_forwarded_for: false,
        admin: Some(command_api::AdminAccount {
            email: admin_email(scratch),
            password: crate::users::PASSWORD.into(),
            name: "Bench Admin".into(),
        }),
        argon2_max_concurrency,
        database_max_connections: 20,
        outbox_relay: true,
        console: Default::default(),
        // Public addresses only; the bench registers no webhooks.
        webhook_networks: Default::default(),
    };
    let app = command_api::Application::build(settings)
        .await
        .context("building the command API")?;
    let base = format!("http://127.0.0.1:{}", app.port());
    Ok(spawn(base, |token| async move {
        if let Err(error) = app.run_until(token).await {
            tracing::error!(error = %error, "command API stopped with an error");
        }
    }))
}

/// The query API with production defaults, no rate limit.
pub async fn query_api(scratch: &Scratch) -> anyhow::Result<Running> {
    let settings = query_api::Settings {
        database_url: scratch.infra.database_url.clone(),
        database_max_connections: 10,
        redis_url: scratch.infra.redis_url.clone(),
        redis_prefix: scratch.infra.redis_prefix.clone(),
        jwt_issuer: "cqrs-backend".into(),
        bind_address: [127, 0, 0, 1].into(),
        port: 0,
        cache_ttl: Duration::from_secs(3600),
        negative_cache_ttl: Duration::from_secs(5),
        consistency_wait: std::time::Duration::from_secs(2),
        http: HttpSettings::default(),
        api_rate_limit: None,
        trust_forwarded_for: false,
    };
    let app = query_api::Application::build(settings)
        .await
        .context("building the query API")?;
    let base = format!("http://127.0.0.1:{}", app.port());
    Ok(spawn(base, |token| async move {
        if let Err(error) = app.run_until(token).await {
            tracing::error!(error = %error, "query API stopped with an error");
        }
    }))
}

/// The projector with production defaults, consuming this run's stream.
pub async fn projector(scratch: &Scratch) -> anyhow::Result<Running> {
    let mut settings = projector::Settings::new(scratch.infra.clone());
    settings.bind_address = [127, 0, 0, 1].into();
    settings.port = 0;
    let pool = runtime::connect_postgres(&scratch.infra.database_url, settings.max_db_connections()).await?;
    let nats = runtime::connect_nats(&scratch.infra.nats_url).await?;
    let redis = runtime::RedisHandle::connect(&scratch.infra.redis_url)?;
    redis
        .wait(Duration::from_secs(5))
        .await
        .context("the projector could not reach Redis")?;
    let app = projector::Projector::build(settings, pool, nats, redis)
        .await
        .context("building the projector")?;
    let base = format!("http://{}", app.local_addr()?);
    Ok(spawn(base, |token| async move {
        if let Err(error) = app.run(token).await {
            tracing::error!(error = %error, "projector stopped with an error");
        }
    }))
}
