//! `GET /health/live` (the process answers) and `GET /health/ready` (its dependencies
//! answer). A check marked non-critical is reported but does not make the service
//! unready: the command API keeps accepting writes while NATS is down, for instance,
//! because the outbox carries them over.

use crate::{ApiError, ApiResponse, FieldError};
use axum::Router;
use axum::extract::State;
use axum::routing::get;
use futures::future::{BoxFuture, join_all};
use serde_json::{Map, Value, json};
use std::sync::Arc;
use std::time::Duration;

type Check = Box<dyn Fn() -> BoxFuture<'static, Result<(), String>> + Send + Sync>;

/// The dependency checks of one service.
#[derive(Default)]
pub struct Readiness {
    checks: Vec<(&'static str, bool, Check)>,
}

impl Readiness {
    /// No checks yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a check; `critical` ones decide readiness.
    pub fn check<F>(mut self, name: &'static str, critical: bool, check: F) -> Self
    where
        F: Fn() -> BoxFuture<'static, Result<(), String>> + Send + Sync + 'static,
    {
        self.checks.push((name, critical, Box::new(check)));
        self
    }

    /// Adds the Postgres check.
    pub fn postgres(self, pool: sqlx::PgPool) -> Self {
        self.check("postgres", true, move || {
            let pool = pool.clone();
            Box::pin(async move {
                sqlx::query("SELECT 1")
                    .execute(&pool)
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            })
        })
    }
}

/// The health routes.
pub fn health_routes(readiness: Arc<Readiness>) -> Router {
    Router::new()
        .route(
            "/health/live",
            get(|| async { ApiResponse::ok(json!({ "status": "live" })) }),
        )
        .route("/health/ready", get(ready))
        .with_state(readiness)
}

async fn ready(State(readiness): State<Arc<Readiness>>) -> Result<ApiResponse, ApiError> {
    let results = join_all(readiness.checks.iter().map(|(name, critical, check)| async move {
        let outcome = match tokio::time::timeout(Duration::from_secs(2), check()).await {
            Ok(result) => result,
            Err(_) => Err("timed out".to_owned()),
        };
        (*name, *critical, outcome)
    }))
    .await;
    let mut checks = Map::new();
    let mut failures = Vec::new();
    for (name, critical, outcome) in results {
        match outcome {
            Ok(()) => {
                checks.insert(name.into(), Value::from("up"));
            }
            Err(error) => {
                checks.insert(name.into(), Value::from("down"));
                if critical {
                    failures.push(FieldError::new(name, error));
                } else {
                    tracing::warn!(dependency = name, error = %error, "non-critical dependency down");
                }
            }
        }
    }
    if failures.is_empty() {
        Ok(ApiResponse::ok(json!({ "status": "ready", "checks": checks })))
    } else {
        Err(ApiError::unavailable("a dependency is not answering").with_details(failures))
    }
}
