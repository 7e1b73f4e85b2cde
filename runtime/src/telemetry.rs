//! One tracing subscriber for every service: JSON lines by default (`LOG_FORMAT=pretty`
//! for humans), filtered by `RUST_LOG` (default `info`).

use tracing_subscriber::{EnvFilter, fmt, prelude::*};

/// Installs the global subscriber. Call once, first thing in `main`.
pub fn init(service: &str) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,async_nats=warn,tower_http=warn"));
    let pretty = std::env::var("LOG_FORMAT")
        .map(|f| f == "pretty")
        .unwrap_or(false);
    let registry = tracing_subscriber::registry().with(filter);
    if pretty {
        registry.with(fmt::layer().with_target(false)).init();
    } else {
        registry
            .with(
                fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_span_list(false),
            )
            .init();
    }
    tracing::info!(service, version = env!("CARGO_PKG_VERSION"), "starting");
}
