//! Building and running the command API: connections, keys, services, routes and the
//! background tasks (outbox relay, signing-key heartbeat, idempotency purge).

use crate::account_limit::AccountLimit;
use crate::bootstrap::ensure_admin;
use crate::commands::Users;
use crate::routes::Limits;
use crate::routes::api_routes;
use crate::sessions::Sessions;
use crate::settings::Settings;
use crate::state::AppState;
use anyhow::Context;
use auth::{PasswordHasher, SigningKey, TokenIssuer, TokenVerifier};
use axum::Router;
use eventstore::{EventStore, OutboxRelay};
use runtime::RedisHandle;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use web::rate_limit::{Caller, Limiter, Quota, RouteLimit};
use web::{Readiness, docs_routes, harden, health_routes};

/// A built command API, bound to its port, not yet serving.
pub struct Application {
    listener: TcpListener,
    router: Router,
    relay: Option<OutboxRelay>,
    key: SigningKey,
    pool: sqlx::PgPool,
    limits: web::ConnectionLimits,
}

impl Application {
    /// Connects, migrates, publishes the signing key, bootstraps the admin and binds.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        // The metrics recorder first, so nothing recorded while starting is lost.
        web::metrics::handle();
        let pool = runtime::connect_postgres(&settings.infra.database_url, settings.database_max_connections)
            .await?;
        let redis = RedisHandle::connect(&settings.infra.redis_url)?;
        let nats = runtime::connect_nats(&settings.infra.nats_url).await?;

        let key = match &settings.private_key_file {
            Some(path) => {
                let pem = std::fs::read_to_string(path)
                    .with_context(|| format!("JWT_PRIVATE_KEY_FILE {} is not readable", path.display()))?;
                SigningKey::from_pkcs8_pem(&pem)
                    .context("JWT_PRIVATE_KEY_FILE is not an Ed25519 PKCS#8 PEM key")?
            }
            None => SigningKey::generate(),
        };
        key.publish(&pool)
            .await
            .context("publishing the token signing key")?;
        let access_ttl =
            chrono::Duration::from_std(settings.access_token_ttl).context("ACCESS_TOKEN_TTL_SECONDS")?;
        let issuer = Arc::new(TokenIssuer::new(
            key.clone(),
            settings.jwt_issuer.clone(),
            access_ttl,
        ));
        let verifier = Arc::new(TokenVerifier::new(pool.clone(), &settings.jwt_issuer));
        verifier.trust(&key);

        let store = EventStore::new(pool.clone());
        let engine = eventstore::Engine::new(store.clone());
        let users = Users::new(
            engine.clone(),
            PasswordHasher::new(settings.argon2_max_concurrency),
        );
        let sessions = Sessions::new(pool.clone(), users.clone(), issuer, settings.refresh_token_ttl);
        if let Some(admin) = &settings.admin {
            ensure_admin(&users, &pool, admin).await?;
        }

        let limiter = Limiter::new(redis.clone(), settings.infra.redis_prefix.clone());
        let auth_quota = Quota::parse(&format!("{}/60s", settings.auth_rate_limit_per_minute))
            .map_err(anyhow::Error::msg)?;
        let limits = Limits {
            auth: RouteLimit::new(
                limiter.clone(),
                "auth",
                auth_quota,
                Caller::AddressAndRoute,
                settings.trust_forwarded_for,
            ),
            api: RouteLimit::new(
                limiter.clone(),
                "command-api",
                settings.api_rate_limit,
                Caller::UserOrAddress(verifier.clone()),
                settings.trust_forwarded_for,
            ),
        };
        let shop = crate::shop::Shop::new(engine.clone());
        let state = AppState {
            users,
            sessions,
            shop,
            engine,
            verifier,
            authority: auth::Authority::new(pool.clone()),
            pool: pool.clone(),
            login_limit: AccountLimit::failed_logins(limiter.clone(), settings.login_failure_limit),
            reset_limit: AccountLimit::password_resets(limiter, settings.password_reset_limit),
            webhooks: webhooks::Webhooks::new(pool.clone()),
            webhook_networks: settings.webhook_networks,
            trust_forwarded_for: settings.trust_forwarded_for,
        };
        let readiness = readiness(&pool, &nats, &redis);
        let (api, document) = api_routes(state, limits);
        let router = api
            .merge(health_routes(Arc::new(readiness)))
            .merge(web::metrics_routes(vec![
                outbox_depth(pool.clone()),
                web::metrics::redis_breaker(redis.clone()),
            ]))
            .merge(crate::asyncapi::routes(crate::asyncapi::document(
                &settings.infra.stream,
                &settings.infra.nats_url,
            )))
            .merge(crate::console::routes(&settings.console)?)
            .merge(docs_routes(document));
        let router = crate::console::with_policy(harden(router, &settings.http));

        let relay = settings.outbox_relay.then(|| {
            OutboxRelay::new(
                pool.clone(),
                async_nats::jetstream::new(nats.clone()),
                settings.infra.stream.clone(),
                store.appended_signal(),
            )
        });
        let address = format!("{}:{}", settings.bind_address, settings.port);
        let listener = TcpListener::bind(&address)
            .await
            .with_context(|| format!("cannot listen on {address}"))?;
        Ok(Self {
            listener,
            router,
            relay,
            key,
            pool,
            limits: settings.http.connections,
        })
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or_default()
    }

    /// Serves until `shutdown` is cancelled, then lets in-flight requests finish.
    pub async fn run_until(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let mut tasks = tokio::task::JoinSet::new();
        if let Some(relay) = self.relay {
            tasks.spawn(relay.run(shutdown.clone()));
        }
        tasks.spawn(key_heartbeat(self.key, self.pool.clone(), shutdown.clone()));
        tasks.spawn(crate::idempotency::purge_expired(
            self.pool.clone(),
            shutdown.clone(),
        ));
        tracing::info!(
            port = self.listener.local_addr().map(|a| a.port()).unwrap_or_default(),
            "command-api listening"
        );
        web::serve(self.listener, self.router, self.limits, shutdown.clone())
            .await
            .context("serving HTTP")?;
        shutdown.cancel();
        while tasks.join_next().await.is_some() {}
        Ok(())
    }
}

fn readiness(pool: &sqlx::PgPool, nats: &async_nats::Client, redis: &RedisHandle) -> Readiness {
    let nats = nats.clone();
    let redis = redis.clone();
    Readiness::new()
        .postgres(pool.clone())
        .check("nats", false, runtime::nats_check(nats))
        .check("redis", false, runtime::redis_check(redis))
}

/// Keeps the signing key's `last_seen_at` fresh so operators can prune dead keys.
async fn key_heartbeat(key: SigningKey, pool: sqlx::PgPool, shutdown: CancellationToken) {
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(3600)) => {}
        }
        if let Err(error) = key.publish(&pool).await {
            tracing::warn!(error = %error, "could not refresh the signing key");
        }
    }
}

/// `outbox_depth`: the committed events JetStream has not acknowledged yet, read at scrape.
fn outbox_depth(pool: sqlx::PgPool) -> web::metrics::Collector {
    web::metrics::collector(move || {
        let pool = pool.clone();
        async move {
            match sqlx::query_scalar::<_, i64>("SELECT count(*) FROM outbox")
                .fetch_one(&pool)
                .await
            {
                Ok(depth) => metrics::gauge!("outbox_depth").set(depth as f64),
                Err(error) => tracing::warn!(error = %error, "outbox depth not read for /metrics"),
            }
        }
    })
}
