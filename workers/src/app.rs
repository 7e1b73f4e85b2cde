//! Building the service from settings and running it: the operator HTTP API and one
//! consumer per side effect, all stopped by one cancellation token.

use crate::api::{self, AppState};
use crate::consumer::{ConsumerWorker, consumer_config};
use crate::delivery::Delivery;
use crate::effects::EffectContext;
use crate::ledger::Ledger;
use crate::mail::{self, Mailer, MailerSetupError};
use crate::registry::{Declaration, EFFECTS, Effects};
use crate::settings::Settings;
use crate::webhook::{self, Dispatcher, FanOut};
use auth::TokenVerifier;
use axum::Router;
use eventstore::EventStore;
use sqlx::PgPool;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;
use web::Readiness;
use webhooks::Webhooks;

/// The service could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The mailer the settings ask for cannot be set up.
    #[error(transparent)]
    Mailer(#[from] MailerSetupError),
    /// The HTTP port cannot be bound.
    #[error("cannot listen on {address}: {source}")]
    Bind {
        /// `BIND_ADDRESS:WORKERS_PORT`.
        address: String,
        /// Why.
        source: std::io::Error,
    },
    /// The HTTP client of webhook deliveries cannot be set up (no TLS roots, say).
    #[error("the webhook HTTP client cannot be built: {0}")]
    WebhookClient(#[source] reqwest::Error),
}

/// A built service, listening but not yet serving or consuming.
pub struct Application {
    listener: TcpListener,
    address: SocketAddr,
    router: Router,
    workers: Vec<ConsumerWorker>,
    dispatcher: Dispatcher,
    limits: web::ConnectionLimits,
}

impl Application {
    /// Builds the service with the mailer the settings ask for (SMTP when `SMTP_URL`
    /// is set, else `.eml` files in `MAIL_DIR`). `pool` must be migrated.
    pub async fn build(
        settings: Settings,
        pool: PgPool,
        nats: async_nats::Client,
    ) -> Result<Self, BuildError> {
        let mailer = mail::from_settings(&settings.mail)?;
        Self::build_with_mailer(settings, pool, nats, mailer).await
    }

    /// Builds the service around a given mailer.
    pub async fn build_with_mailer(
        settings: Settings,
        pool: PgPool,
        nats: async_nats::Client,
        mailer: Arc<dyn Mailer>,
    ) -> Result<Self, BuildError> {
        Self::build_with_effects(settings, pool, nats, mailer, EFFECTS).await
    }

    /// Builds the service around a given mailer, running the side effects `declarations`
    /// (production runs [`EFFECTS`]).
    pub async fn build_with_effects(
        settings: Settings,
        pool: PgPool,
        nats: async_nats::Client,
        mailer: Arc<dyn Mailer>,
        declarations: &[Declaration],
    ) -> Result<Self, BuildError> {
        // The metrics recorder first, so nothing recorded while starting is lost.
        web::metrics::handle();
        let context = EffectContext {
            mailer,
            from: settings.mail.from.clone(),
            store: EventStore::new(pool.clone()),
            password_links: settings.mail.password_links.clone(),
        };
        let effects = Effects::from_declarations(declarations, &context);
        let ledger = Ledger::new(pool.clone());
        let jetstream = async_nats::jetstream::new(nats.clone());
        // One limit for the whole process, whichever consumer a message comes from.
        let permits = Arc::new(Semaphore::new(settings.concurrency.max(1)));
        let mut workers: Vec<ConsumerWorker> = effects
            .iter()
            .flat_map(|effect| {
                effect.declaration().subscriptions().map(|subscription| {
                    ConsumerWorker::new(
                        jetstream.clone(),
                        settings.stream.clone(),
                        consumer_config(&settings.stream, &subscription),
                        Delivery::new(ledger.clone(), effect.clone(), settings.retry),
                        permits.clone(),
                        settings.concurrency,
                    )
                })
            })
            .collect();
        // Webhooks: the fan-out is one more consumer; the dispatcher runs beside them.
        let hooks = Webhooks::new(pool.clone());
        let wake = Arc::new(Notify::new());
        workers.push(ConsumerWorker::new(
            jetstream.clone(),
            settings.stream.clone(),
            webhook::consumer_config(&settings.stream),
            FanOut::new(hooks.clone(), settings.retry, wake.clone()),
            permits.clone(),
            settings.concurrency,
        ));
        let dispatcher =
            Dispatcher::new(hooks.clone(), settings.webhooks, wake).map_err(BuildError::WebhookClient)?;
        let state = AppState {
            pool: pool.clone(),
            verifier: Arc::new(TokenVerifier::new(pool.clone(), &settings.jwt_issuer)),
            jetstream,
            stream: settings.stream.clone(),
            effects,
            ledger,
            webhooks: hooks,
        };
        let readiness = Readiness::new()
            .postgres(pool)
            .check("nats", true, runtime::nats_check(nats));
        let router = api::router(state, Arc::new(readiness), &settings.http);
        let bind = (settings.bind_address.as_str(), settings.port);
        let bind_error = |source| BuildError::Bind {
            address: format!("{}:{}", settings.bind_address, settings.port),
            source,
        };
        let listener = TcpListener::bind(bind).await.map_err(bind_error)?;
        let address = listener.local_addr().map_err(bind_error)?;
        Ok(Self {
            listener,
            address,
            router,
            workers,
            dispatcher,
            limits: settings.http.connections,
        })
    }

    /// Where the HTTP API listens.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The HTTP port (useful when the settings asked for port 0).
    pub fn port(&self) -> u16 {
        self.address.port()
    }

    /// Serves and consumes until `shutdown` is cancelled; in-flight requests and
    /// messages finish first.
    pub async fn run(self, shutdown: CancellationToken) -> std::io::Result<()> {
        tracing::info!(http.address = %self.address, "workers listening");
        let stop = shutdown.child_token();
        let workers: Vec<_> = self
            .workers
            .into_iter()
            .map(|worker| tokio::spawn(worker.run(stop.clone())))
            .collect();
        let dispatcher = tokio::spawn(self.dispatcher.run(stop.clone()));
        let served = web::serve(self.listener, self.router, self.limits, stop.clone()).await;
        // If the server failed, stop consuming too.
        stop.cancel();
        for worker in workers {
            if let Err(error) = worker.await {
                tracing::error!(error = %error, "consumer task failed");
            }
        }
        if let Err(error) = dispatcher.await {
            tracing::error!(error = %error, "webhook dispatcher failed");
        }
        served
    }
}
