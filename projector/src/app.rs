//! The projector application: HTTP endpoints plus every registered projection's live
//! consumer (see [`crate::registry`]), built from settings and connections so tests start
//! the same thing `main` does, in-process.

use crate::Settings;
use crate::consumer::Batching;
use crate::documents::Documents;
use crate::generations::Generations;
use crate::heal::{self, RedisDebt};
use crate::http::{self, HttpState};
use crate::registry::{Live, PROJECTIONS, Services};
use crate::top::TopSellers;
use auth::TokenVerifier;
use runtime::RedisHandle;
use sqlx::PgPool;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// A projector bound to its port, ready to run.
pub struct Projector {
    settings: Settings,
    pool: PgPool,
    nats: async_nats::Client,
    redis: RedisHandle,
    listener: TcpListener,
}

impl Projector {
    /// Binds the HTTP port (`settings.port`, 0 for any free port).
    pub async fn build(
        settings: Settings,
        pool: PgPool,
        nats: async_nats::Client,
        redis: RedisHandle,
    ) -> std::io::Result<Self> {
        // The metrics recorder first, so nothing recorded while starting is lost.
        web::metrics::handle();
        let listener = TcpListener::bind((settings.bind_address, settings.port)).await?;
        Ok(Self {
            settings,
            pool,
            nats,
            redis,
            listener,
        })
    }

    /// Where the HTTP endpoints listen.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The Redis documents this projector writes.
    pub fn documents(settings: &Settings) -> Documents {
        Documents::new(&settings.infra.redis_prefix, settings.cache_ttl)
    }

    /// The Redis best-seller set this projector writes.
    pub fn top_sellers(settings: &Settings) -> TopSellers {
        TopSellers::new(&settings.infra.redis_prefix)
    }

    /// Serves HTTP and projects events until `shutdown` is cancelled; the messages in flight
    /// are finished (committed and acknowledged) before it returns.
    pub async fn run(self, shutdown: CancellationToken) -> std::io::Result<()> {
        let jetstream = async_nats::jetstream::new(self.nats.clone());
        let debt = Arc::new(RedisDebt::default());
        let top = Self::top_sellers(&self.settings).with_debt(debt.clone());
        let documents = Self::documents(&self.settings);
        let live = Live {
            services: Services {
                pool: self.pool.clone(),
                redis: self.redis.clone(),
                documents: documents.clone(),
                top: top.clone(),
                debt: debt.clone(),
            },
            jetstream: jetstream.clone(),
            stream: self.settings.infra.stream.clone(),
            batching: Batching {
                size: self.settings.batch_size,
                in_flight: self.settings.concurrency,
            },
        };
        let state = HttpState {
            pool: self.pool.clone(),
            jetstream,
            stream_name: self.settings.infra.stream.name.clone(),
            verifier: Arc::new(TokenVerifier::new(self.pool.clone(), &self.settings.jwt_issuer)),
            generations: Generations::new(
                self.pool.clone(),
                self.redis.clone(),
                documents.clone(),
                top.clone(),
                self.settings.rebuild,
            ),
        };
        let router = http::router(state, self.nats.clone(), self.redis.clone(), &self.settings.http);
        tracing::info!(
            http.address = %self.listener.local_addr()?,
            stream = %self.settings.infra.stream.name,
            "projector started"
        );
        // If the server fails, the projection stops too: a replica without health endpoints
        // would be restarted by its orchestrator anyway.
        let stop = shutdown.child_token();
        let serve = async {
            let served = web::serve(
                self.listener,
                router,
                self.settings.http.connections,
                stop.clone(),
            )
            .await;
            stop.cancel();
            served
        };
        let consumers = futures::future::join_all(
            PROJECTIONS
                .iter()
                .map(|projection| projection.run(&live, stop.clone())),
        );
        let (served, _, ()) = tokio::join!(
            serve,
            consumers,
            heal::heal(&debt, &self.pool, &self.redis, &documents, &top, stop.clone()),
        );
        served
    }
}
