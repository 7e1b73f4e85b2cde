//! Prometheus metrics: one recorder per process (the `metrics` facade, rendered by
//! `metrics-exporter-prometheus`), served as `GET /metrics` on each service's own HTTP port.
//!
//! Counters and histograms are recorded where things happen (the shared middleware records
//! every HTTP request by route template, method and status). Gauges that describe state
//! held elsewhere (a JetStream consumer's backlog, the outbox depth, open dead letters) are
//! read when Prometheus scrapes, by the service's [`Collector`]s, each within
//! [`COLLECT_TIMEOUT`]: a dependency that does not answer leaves its gauges at their last
//! value and never stalls the scrape.

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use futures::future::BoxFuture;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The longest a collector may take during a scrape.
pub const COLLECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Collectors run at most this often; a scrape in between shows the last values.
pub const COLLECT_EVERY: Duration = Duration::from_secs(1);

/// Histogram buckets of every `*_seconds` metric: 1 ms to 30 s.
const SECONDS_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process's recorder, installed by the first call. Every service calls it when it
/// builds its router, so metrics recorded before the first scrape are kept.
pub fn handle() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), SECONDS_BUCKETS)
                .expect("the buckets are not empty")
                .build_recorder();
            let handle = recorder.handle();
            // Fails only when another recorder is installed (a test harness's): that one
            // then receives the metrics, and this one renders what it has.
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("a metrics recorder was already installed; /metrics shows only its own");
            }
            describe();
            handle
        })
        .clone()
}

/// Reads some state into gauges when Prometheus scrapes.
pub type Collector = Arc<dyn Fn() -> BoxFuture<'static, ()> + Send + Sync>;

/// A collector from an async closure.
pub fn collector<F, Fut>(collect: F) -> Collector
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    Arc::new(move || Box::pin(collect()))
}

/// `redis_breaker_open`: whether this process is skipping Redis right now, read at scrape.
pub fn redis_breaker(redis: runtime::RedisHandle) -> Collector {
    collector(move || {
        let open = if redis.is_available() { 0.0 } else { 1.0 };
        async move { metrics::gauge!("redis_breaker_open").set(open) }
    })
}

/// `GET /metrics`: runs the collectors (together, each bounded by [`COLLECT_TIMEOUT`]),
/// then renders every metric of the process in the Prometheus text format.
pub fn metrics_routes(collectors: Vec<Collector>) -> Router {
    let handle = handle();
    let collectors = Arc::new(collectors);
    let last_collected = Arc::new(Mutex::new(None::<Instant>));
    Router::new().route(
        "/metrics",
        get(move || {
            let handle = handle.clone();
            let collectors = collectors.clone();
            let last_collected = last_collected.clone();
            async move {
                // At most once per COLLECT_EVERY however often it is scraped, so scraping
                // (the route is on the public port) cannot load the dependencies.
                let due = {
                    let mut last = last_collected.lock().unwrap_or_else(|e| e.into_inner());
                    let due = last.is_none_or(|at| at.elapsed() >= COLLECT_EVERY);
                    if due {
                        *last = Some(Instant::now());
                    }
                    due
                };
                if due {
                    futures::future::join_all(collectors.iter().map(|collect| async move {
                        if tokio::time::timeout(COLLECT_TIMEOUT, collect()).await.is_err() {
                            tracing::warn!("a metrics collector timed out; its gauges keep their last value");
                        }
                    }))
                    .await;
                }
                handle.run_upkeep();
                (
                    [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
                    handle.render(),
                )
                    .into_response()
            }
        }),
    )
}

/// Records one finished HTTP request.
pub(crate) fn record_request(method: &str, route: &str, status: u16, seconds: f64) {
    // Any token is a method to HTTP: only the standard ones become label values, so a
    // client cannot make series up.
    let method = match method {
        "GET" | "HEAD" | "POST" | "PUT" | "PATCH" | "DELETE" | "OPTIONS" => method,
        _ => "other",
    };
    let labels = [
        ("method", method.to_owned()),
        ("route", route.to_owned()),
        ("status", status.to_string()),
    ];
    metrics::counter!("http_requests_total", &labels).increment(1);
    metrics::histogram!("http_request_duration_seconds", &labels).record(seconds);
}

/// The help text of every metric the services record (shown by `/metrics` once recorded;
/// the README lists them with their labels).
fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        "http_requests_total",
        "HTTP requests answered, by route template, method and status"
    );
    describe_histogram!(
        "http_request_duration_seconds",
        Unit::Seconds,
        "Time to answer an HTTP request, by route template, method and status"
    );
    describe_counter!(
        "events_appended_total",
        "Events committed to the event store, by stream type"
    );
    describe_gauge!(
        "outbox_depth",
        "Committed events not yet acknowledged by JetStream (outbox rows)"
    );
    describe_histogram!(
        "outbox_publish_lag_seconds",
        Unit::Seconds,
        "Age of the oldest event of a relay pass when JetStream acknowledged the pass's publishes"
    );
    describe_counter!(
        "projection_events_applied_total",
        "Events applied to a read model, by projection (duplicates not counted)"
    );
    describe_gauge!(
        "projection_lag_events",
        "Events of a projection's stream type not yet applied (pending and unacknowledged)"
    );
    describe_gauge!(
        "projection_lag_seconds",
        Unit::Seconds,
        "Age of the newest event a projection applied while events wait; 0 when caught up"
    );
    describe_gauge!(
        "jetstream_consumer_pending",
        "Messages a durable consumer has not delivered yet"
    );
    describe_gauge!(
        "jetstream_consumer_ack_pending",
        "Messages a durable consumer delivered and awaits acknowledgement for"
    );
    describe_gauge!(
        "jetstream_consumer_redelivered",
        "Messages a durable consumer delivered more than once (unacknowledged now)"
    );
    describe_counter!(
        "side_effects_total",
        "Side effects carried out, by effect and outcome"
    );
    describe_gauge!("dead_letters", "Dead letters waiting for an operator, by effect");
    describe_gauge!(
        "redis_breaker_open",
        "1 while the Redis circuit breaker is open (Redis is not used), else 0"
    );
    describe_histogram!(
        "argon2_queue_wait_seconds",
        Unit::Seconds,
        "Time a password hash or check waited for a hashing slot"
    );
}
