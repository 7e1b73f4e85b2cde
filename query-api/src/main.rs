//! `query-api`: serves the read API until SIGTERM/SIGINT. `query-api migrate [list | revert
//! <version>]` applies, lists or reverts the database migrations and exits.

use anyhow::{Context, bail};
use query_api::{Application, Settings};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    runtime::telemetry::init("query-api");
    let settings = Settings::from_env().context("invalid configuration")?;
    match std::env::args().nth(1).as_deref() {
        None => serve(settings).await,
        Some("migrate") => runtime::migrations::command(&settings.database_url).await,
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
