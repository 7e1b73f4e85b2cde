//! The operator console: one web page at `/console` (its files in `command-api/console/`,
//! built into the binary). The page signs an administrator in on this API, then reads
//! and acts on the projector and the workers through `/console/api/{service}/{path}`, a
//! relay to their `/api/v1/{path}` that passes the caller's token on; so the page has one
//! origin (no CORS to configure) and every action is the administrator's own, checked and
//! audited by the service that does it.
//!
//! The relay ([`relay`]) is hand-written (a few lines over reqwest) rather than a proxy
//! crate: it forwards three headers to known paths of two fixed bases, and nothing else.
//! Every answer under `/console`, relayed or not, carries the console's CSP
//! ([`with_policy`]).

mod relay;

use crate::settings::ConsoleSettings;
use anyhow::Context;
use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use relay::Relay;
use std::sync::Arc;
use std::time::Duration;
use url::Url;

const INDEX: &str = include_str!("../console/index.html");
const SCRIPT: &str = include_str!("../console/app.js");
const STYLE: &str = include_str!("../console/app.css");

/// Only the page's own files run, and it talks to its own origin only.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
     img-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Longest a relayed call may take (below the request timeout, so the page gets the
/// relay's 503 rather than the timeout's).
const RELAY_TIMEOUT: Duration = Duration::from_secs(8);

/// The page, its files and the relay. Their CSP is set by [`with_policy`], around the
/// whole hardened router, so that it is on the fallback's and the timeout's answers too.
pub fn routes(settings: &ConsoleSettings) -> anyhow::Result<Router> {
    let http = reqwest::Client::builder()
        .timeout(RELAY_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .context("cannot build the console relay's HTTP client")?;
    let base = |name: &str, raw: &str| {
        Url::parse(raw)
            .map(Arc::new)
            .with_context(|| format!("{name} is not a URL"))
    };
    let relay = Relay {
        http,
        workers: base("CONSOLE_WORKERS_URL", &settings.workers_url)?,
        projector: base("CONSOLE_PROJECTOR_URL", &settings.projector_url)?,
    };
    Ok(Router::new()
        .route("/console", get(index))
        .route("/console/", get(index))
        .route(
            "/console/app.js",
            get(|| async { file("text/javascript; charset=utf-8", SCRIPT) }),
        )
        .route(
            "/console/app.css",
            get(|| async { file("text/css; charset=utf-8", STYLE) }),
        )
        .route("/console/api/{service}/{*path}", any(relay::relay_call))
        .with_state(relay))
}

/// Sets the console's CSP on every answer to a request under `/console`: the page, its
/// files, relayed answers and every error (the relay's, the fallback's, the hardening's).
/// Wrap the finished, hardened router in it.
pub fn with_policy(router: Router) -> Router {
    router.layer(middleware::from_fn(policy))
}

async fn policy(request: Request, next: Next) -> Response {
    let path = request.uri().path();
    let console = path == "/console" || path.starts_with("/console/");
    let mut response = next.run(request).await;
    if console {
        response
            .headers_mut()
            .insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    }
    response
}

async fn index() -> Response {
    file("text/html; charset=utf-8", INDEX)
}

fn file(content_type: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}
