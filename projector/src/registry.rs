//! The one list of projections. Everything that runs or reports projections derives from
//! [`PROJECTIONS`]: the live consumers (`Projector::run`), the rebuild, the status
//! endpoint (`GET /api/v1/projections`) and the connection pool size. Adding a projection
//! is writing its module (a [`ReadModel`] and a [`LiveProjection`]) and one line below.

use crate::consumer::{Batching, Consumer, LiveProjection};
use crate::documents::Documents;
use crate::heal::RedisDebt;
use crate::model::ReadModel;
use crate::orders::OrdersProjection;
use crate::products::ProductsProjection;
use crate::rebuild::{Replayed, Resume};
use crate::reviews::ReviewsProjection;
use crate::top::TopSellers;
use crate::users::UsersProjection;
use crate::{RebuildError, RebuildLimits, rebuild};
use async_nats::jetstream;
use eventstore::StreamSettings;
use futures::future::BoxFuture;
use runtime::RedisHandle;
use sqlx::{PgConnection, PgPool};
use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// Every projection, in the order the status endpoint lists them.
pub const PROJECTIONS: &[&dyn Projection] = &[
    &Declared::<UsersProjection>::NEW,
    &Declared::<ProductsProjection>::NEW,
    &Declared::<OrdersProjection>::NEW,
    &Declared::<ReviewsProjection>::NEW,
];

/// What every projection may be built from.
#[derive(Clone)]
pub struct Services {
    /// Postgres pool.
    pub pool: PgPool,
    /// Redis connection.
    pub redis: RedisHandle,
    /// The Redis documents.
    pub documents: Documents,
    /// The Redis best-seller set.
    pub top: TopSellers,
    /// Redis writes missed, paid by the healer.
    pub debt: Arc<RedisDebt>,
}

/// What the live consumers run on.
pub struct Live {
    /// What the projections are built from.
    pub services: Services,
    /// JetStream context.
    pub jetstream: jetstream::Context,
    /// The events stream.
    pub stream: StreamSettings,
    /// Batch size and batches in flight of each consumer.
    pub batching: Batching,
}

/// A registered projection, whatever its row type.
pub trait Projection: Sync {
    /// Its name in logs and in `GET /api/v1/projections`.
    fn name(&self) -> &'static str;
    /// Its durable JetStream consumer.
    fn consumer(&self) -> &'static str;
    /// The stream type it reads.
    fn stream_type(&self) -> &'static str;
    /// Its tables (the first is the one counted as its rows).
    fn tables(&self) -> &'static [&'static str];
    /// Runs its live consumer until `shutdown`.
    fn run<'a>(&'a self, live: &'a Live, shutdown: CancellationToken) -> BoxFuture<'a, ()>;
    /// Replays the events of its stream type from `from` into its tables, counting them
    /// in `progress`.
    fn replay<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        limits: RebuildLimits,
        from: Resume,
        progress: &'a AtomicU64,
    ) -> BoxFuture<'a, Result<Replayed, RebuildError>>;
    /// Brings the rows of `ids` (its streams) up to the store; events that changed a row.
    fn catch_up<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        limits: RebuildLimits,
        ids: &'a [Uuid],
    ) -> BoxFuture<'a, Result<u64, RebuildError>>;
    /// Recomputes what it derives in other projections' rows, after every replay.
    fn after_replay<'a>(&'a self, conn: &'a mut PgConnection) -> BoxFuture<'a, Result<(), sqlx::Error>>;
}

/// The registration of a [`LiveProjection`].
pub struct Declared<P>(PhantomData<fn() -> P>);

impl<P> Declared<P> {
    /// The registration.
    pub const NEW: Self = Self(PhantomData);
}

impl<P: LiveProjection> Projection for Declared<P> {
    fn name(&self) -> &'static str {
        P::NAME
    }

    fn consumer(&self) -> &'static str {
        P::CONSUMER
    }

    fn stream_type(&self) -> &'static str {
        P::Model::STREAM_TYPE
    }

    fn tables(&self) -> &'static [&'static str] {
        P::Model::TABLES
    }

    fn run<'a>(&'a self, live: &'a Live, shutdown: CancellationToken) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let consumer = Consumer::new(
                live.services.pool.clone(),
                live.jetstream.clone(),
                live.stream.clone(),
                P::build(&live.services),
                live.batching,
            );
            consumer.run(shutdown).await;
        })
    }

    fn replay<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        limits: RebuildLimits,
        from: Resume,
        progress: &'a AtomicU64,
    ) -> BoxFuture<'a, Result<Replayed, RebuildError>> {
        Box::pin(rebuild::replay_model::<P::Model>(conn, limits, from, progress))
    }

    fn catch_up<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        limits: RebuildLimits,
        ids: &'a [Uuid],
    ) -> BoxFuture<'a, Result<u64, RebuildError>> {
        Box::pin(rebuild::catch_up_streams::<P::Model>(conn, limits, ids))
    }

    fn after_replay<'a>(&'a self, conn: &'a mut PgConnection) -> BoxFuture<'a, Result<(), sqlx::Error>> {
        Box::pin(P::Model::after_replay(conn))
    }
}

/// The projection called `name`.
pub fn find(name: &str) -> Option<&'static dyn Projection> {
    PROJECTIONS
        .iter()
        .copied()
        .find(|projection| projection.name() == name)
}

/// The rows of each projection (its first table), in registry order, read at once.
pub async fn count_rows<'c, E>(conn: E) -> Result<Vec<i64>, sqlx::Error>
where
    E: sqlx::PgExecutor<'c>,
{
    let counts: Vec<String> = PROJECTIONS
        .iter()
        .filter_map(|projection| projection.tables().first())
        .map(|table| format!("(SELECT count(*) FROM {table})"))
        .collect();
    sqlx::query_scalar(&format!("SELECT ARRAY[{}]::int8[]", counts.join(", ")))
        .fetch_one(conn)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn every_projection_has_its_own_name_consumer_and_tables() {
        let names: HashSet<_> = PROJECTIONS.iter().map(|p| p.name()).collect();
        let consumers: HashSet<_> = PROJECTIONS.iter().map(|p| p.consumer()).collect();
        let tables: Vec<_> = PROJECTIONS.iter().flat_map(|p| p.tables()).collect();
        let distinct: HashSet<_> = tables.iter().collect();
        assert_eq!(names.len(), PROJECTIONS.len());
        assert_eq!(consumers.len(), PROJECTIONS.len());
        assert_eq!(distinct.len(), tables.len());
        assert!(PROJECTIONS.iter().all(|p| !p.tables().is_empty()));
    }

    #[test]
    fn the_registry_lists_users_products_orders_and_reviews_in_this_order() {
        let listed: Vec<_> = PROJECTIONS.iter().map(|p| (p.name(), p.stream_type())).collect();
        assert_eq!(
            listed,
            [
                ("users", "user"),
                ("products", "product"),
                ("orders", "order"),
                ("reviews", "review")
            ]
        );
        assert_eq!(find("orders").map(|p| p.consumer()), Some("projector-orders"));
        assert_eq!(find("reviews").map(|p| p.consumer()), Some("projector-reviews"));
        assert!(find("ratings").is_none());
    }
}
