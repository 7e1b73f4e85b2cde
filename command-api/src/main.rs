//! `command-api` binary: `command-api` serves; `command-api migrate` applies migrations and exits.

use anyhow::Context;
use command_api::{Application, Settings};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    runtime::telemetry::init("command-api");
    let settings = Settings::from_env()?;
    if std::env::args().nth(1).as_deref() == Some("migrate") {
        runtime::connect_postgres(&settings.infra.database_url, 2)
            .await
            .context("migrating")?;
        tracing::info!("migrations applied");
        return Ok(());
    }
    let shutdown = runtime::shutdown_signal();
    Application::build(settings).await?.run_until(shutdown).await
}
