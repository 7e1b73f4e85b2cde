//! `bench`: measures the DESIGN.md performance targets and prints them as a table.
//! Run it in release mode: `cargo run --release -p bench -- --help`.

use bench::{BenchSettings, USAGE};
use std::process::ExitCode;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
    let settings = match BenchSettings::load(std::env::args().skip(1)) {
        Ok(Some(settings)) => settings,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(error) => {
            eprintln!("bench: {error}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    // Warnings only by default: per-request logs would measure the terminal, not the code.
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn,sqlx=error")),
        )
        .with_writer(std::io::stderr)
        .init();
    if cfg!(debug_assertions) {
        eprintln!("bench: this is a debug build; run `cargo run --release -p bench` for real figures");
    }
    eprintln!(
        "bench: {:.1} s per measurement, {} in flight, {} users, {} cores",
        settings.duration.as_secs_f64(),
        settings.concurrency,
        settings.users,
        std::thread::available_parallelism().map_or(0, usize::from)
    );
    let (report, outcome) = bench::execute(&settings).await;
    println!("\n{}", report.render());
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("bench: stopped early: {error:#}");
            ExitCode::FAILURE
        }
    }
}
