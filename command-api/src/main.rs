//! `command-api` binary: `command-api` serves; `command-api migrate [list | revert
//! <version>]` applies, lists or reverts migrations and exits.

use command_api::{Application, Settings};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    runtime::telemetry::init("command-api");
    let settings = Settings::from_env()?;
    if std::env::args().nth(1).as_deref() == Some("migrate") {
        return runtime::migrations::command(&settings.infra.database_url).await;
    }
    let shutdown = runtime::shutdown_signal();
    Application::build(settings).await?.run_until(shutdown).await
}
