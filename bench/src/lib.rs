//! Benchmarks of the DESIGN.md performance targets ("Performance we design for"): each
//! target is measured on this machine as a ratio to a ceiling measured in the same run,
//! against the real services started in-process on scratch resources.

pub mod catchup;
pub mod ceilings;
pub mod diagnostics;
pub mod flood;
pub mod load;
pub mod rebuild;
pub mod report;
pub mod run;
pub mod scratch;
pub mod services;
pub mod settings;
pub mod users;
pub mod visibility;

pub use report::Report;
pub use scratch::Scratch;
pub use settings::{BenchSettings, USAGE};

use std::time::Duration;

/// Runs every measurement on fresh scratch resources and removes them again, also when a
/// measurement fails or the run is interrupted. The report holds what was measured
/// before any failure.
pub async fn execute(settings: &BenchSettings) -> (Report, anyhow::Result<()>) {
    let mut report = Report::default();
    let scratch = match Scratch::create(settings).await {
        Ok(scratch) => scratch,
        Err(error) => return (report, Err(error)),
    };
    let mut servers = run::Servers::default();
    let load_before = load_average();
    let outcome = tokio::select! {
        outcome = run::run(settings, &scratch, &mut report, &mut servers) => outcome,
        _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
    };
    servers.stop_all().await;
    report.note(format!(
        "machine: {} cores, load average {} before and {} after the run (anything else running \
         shares the cores: compare ratios, and runs with each other, with that in mind); request \
         logs off (RUST_LOG=warn,sqlx=error)",
        std::thread::available_parallelism().map_or(0, usize::from),
        load_before,
        load_average()
    ));
    for failure in scratch.cleanup().await {
        report.note(format!("cleanup failed: {failure}"));
    }
    (report, outcome)
}

/// An HTTP client keeping up to `connections` idle keep-alive connections per host.
pub fn http_client(connections: usize) -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .pool_max_idle_per_host(connections)
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(30))
        .build()?)
}

/// Sends `request` and reads the whole body; `Err` unless the status is `expected`.
pub async fn expect_status(request: reqwest::RequestBuilder, expected: u16) -> Result<(), String> {
    let response = request.send().await.map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let body = response.bytes().await.map_err(|e| e.to_string())?;
    if status == expected {
        Ok(())
    } else {
        let shown = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
        Err(format!("status {status}: {shown}"))
    }
}

/// The one-minute load average (Linux), or `?`.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|text| text.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".to_owned())
}

/// Says on stderr what is being measured (the table goes to stdout).
pub fn progress(what: &str) {
    eprintln!("bench: {what}");
}
