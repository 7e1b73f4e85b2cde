//! `query-api`: serves the read API until SIGTERM/SIGINT. `query-api migrate` applies the
//! database migrations and exits.

use anyhow::{Context, bail};
use query_api::{Application, Settings};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    runtime::telemetry::init("query-api");
    let settings = Settings::from_env().context("invalid configuration")?;
    match std::env::args().nth(1).as_deref() {
        None => serve(settings).await,
        Some("migrate") => {
            // Creates the database when missing and applies pending migrations (runtime::migrate).
            runtime::connect_postgres(&settings.database_url, 1).await?;
            tracing::info!("migrations applied");
            Ok(())
        }
        Some(other) => bail!("unknown command `{other}` (expected no argument, or `migrate`)"),
    }
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    let app = Application::build(settings).await?;
    tracing::info!(port = app.port(), "query-api listening");
    app.run_until(runtime::shutdown_signal())
        .await
        .context("the HTTP server failed")
}
