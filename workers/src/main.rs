//! The workers binary: `workers` runs the service, `workers migrate [list | revert
//! <version>]` applies, lists or reverts migrations.

use anyhow::Context;
use workers::{Application, Settings};

#[tokio::main]
async fn main() {
    runtime::telemetry::init("workers");
    if let Err(error) = run().await {
        tracing::error!(error = format!("{error:#}"), "workers failed");
        eprintln!("workers: {error:#}");
        std::process::exit(1);
    }
}

async fn run() -> anyhow::Result<()> {
    if std::env::args().nth(1).as_deref() == Some("migrate") {
        let url = runtime::env_or("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/cqrs");
        return runtime::migrations::command(&url).await;
    }
    let settings = Settings::from_env().context("invalid configuration")?;
    let pool = runtime::connect_postgres(&settings.database_url, settings.database_max_connections).await?;
    let nats = runtime::connect_nats(&settings.nats_url).await?;
    let shutdown = runtime::shutdown_signal();
    let app = Application::build(settings, pool, nats)
        .await
        .context("could not start the workers")?;
    app.run(shutdown).await.context("HTTP server failed")?;
    tracing::info!("workers stopped");
    Ok(())
}
