//! One tracing subscriber for every service: JSON lines by default (`LOG_FORMAT=pretty`
//! for humans), filtered by `RUST_LOG` (default `info`). The fields of every span a line
//! is written in are flattened into the line.

use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::{EnvFilter, Layer, fmt, prelude::*};

/// The JSON lines the services write, to `writer`: the event's fields and those of every
/// span it is written in (a request's `requestId`, `userId`, `method`, `path`; an event's
/// `eventId`, `correlationId`) at the top level of each line.
///
/// json-subscriber rather than tracing-subscriber's own JSON, which can only nest span
/// fields under `span`.
pub fn json_lines<S, W>(writer: W) -> impl Layer<S>
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    json_subscriber::fmt::layer()
        .with_writer(writer)
        .flatten_event(true)
        .with_current_span(false)
        .with_span_list(false)
        .flatten_span_list_on_top_level(true)
}

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
        registry.with(json_lines(std::io::stdout)).init();
    }
    tracing::info!(service, version = env!("CARGO_PKG_VERSION"), "starting");
}
