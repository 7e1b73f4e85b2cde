//! The projector binary: `projector` runs the live projection, `projector migrate [list |
//! revert <version>]` applies, lists or reverts migrations, `projector rebuild` rebuilds
//! every projection from the event store.

use anyhow::Context;
use projector::{Projector, Settings};
use std::time::Duration;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    runtime::telemetry::init("projector");
    let settings = Settings::from_env().context("bad setting")?;
    let command = std::env::args().nth(1);
    match command.as_deref() {
        None => serve(settings).await,
        Some("migrate") => runtime::migrations::command(&settings.infra.database_url).await,
        Some("rebuild") => rebuild(settings).await,
        Some(other) => anyhow::bail!("unknown command {other:?}; expected `migrate` or `rebuild`"),
    }
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    let shutdown = runtime::shutdown_signal();
    let pool = runtime::connect_postgres(&settings.infra.database_url, settings.max_db_connections()).await?;
    let nats = runtime::connect_nats(&settings.infra.nats_url).await?;
    let redis = runtime::RedisHandle::connect(&settings.infra.redis_url)?;
    let projector = Projector::build(settings, pool, nats, redis)
        .await
        .context("could not bind PROJECTOR_PORT")?;
    projector.run(shutdown).await.context("HTTP server failed")
}

/// Rebuilds every projection. Stop the live projectors first: they would wait on the
/// rebuild's lock anyway, and readers see a partly filled table until it finishes.
async fn rebuild(settings: Settings) -> anyhow::Result<()> {
    let pool = runtime::connect_postgres(&settings.infra.database_url, 4).await?;
    let redis = runtime::RedisHandle::connect(&settings.infra.redis_url)?
        .wait(Duration::from_secs(10))
        .await
        .context("Redis is not reachable; the rebuild refills it and needs it")?;
    let documents = Projector::documents(&settings);
    let report = projector::rebuild(&pool, &documents, &redis, settings.rebuild)
        .await
        .context("rebuild failed")?;
    println!(
        "projections rebuilt: {} events in {:.2}s ({:.0} events/s): {} users, {} products, \
         {} orders; redis: {} old documents cleared, {} written ({} users, {} products, \
         {} orders), {} best sellers, in {:.2}s",
        report.events,
        report.replay_duration.as_secs_f64(),
        report.events_per_second(),
        report.rows,
        report.products,
        report.orders,
        report.cleared_documents,
        report.documents.total(),
        report.documents.users,
        report.documents.products,
        report.documents.orders,
        report.top_sellers,
        report.cache_duration.as_secs_f64(),
    );
    Ok(())
}
