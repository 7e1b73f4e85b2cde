//! Per-client rate limits kept in Redis, so every replica counts against one budget.
//! Fixed one-minute windows: `INCR` + `EXPIRE` on `<prefix>:ratelimit:<bucket>:<client>:<window>`.
//! When Redis is unreachable the limiter lets requests through (and logs it): losing
//! the limit briefly is better than refusing every login.

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use runtime::RedisHandle;
use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};
use web::ApiError;

/// A limiter for one family of endpoints.
#[derive(Clone)]
pub struct RateLimiter {
    redis: RedisHandle,
    prefix: String,
    per_minute: u32,
    trust_forwarded_for: bool,
}

impl RateLimiter {
    /// `per_minute` requests per client and endpoint; 0 disables the limit.
    pub fn new(redis: RedisHandle, prefix: String, per_minute: u32, trust_forwarded_for: bool) -> Self {
        Self {
            redis,
            prefix,
            per_minute,
            trust_forwarded_for,
        }
    }

    fn client(&self, headers: &HeaderMap, peer: Option<SocketAddr>) -> String {
        let forwarded = self
            .trust_forwarded_for
            .then(|| headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()))
            .flatten()
            .and_then(|v| v.split(',').next())
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty());
        forwarded
            .or_else(|| peer.map(|p| p.ip().to_string()))
            .unwrap_or_else(|| "unknown".to_owned())
    }

    /// Counts one request; `Some(count)` once counted, `None` when Redis is unavailable.
    async fn count(&self, bucket: &str, client: &str, window: u64) -> Option<u64> {
        let mut conn = self.redis.get()?;
        let key = format!("{}:ratelimit:{bucket}:{client}:{window}", self.prefix);
        let result: redis::RedisResult<(u64, i64)> = redis::pipe()
            .atomic()
            .incr(&key, 1u64)
            .expire(&key, 61)
            .query_async(&mut conn)
            .await;
        match result {
            Ok((count, _)) => Some(count),
            Err(error) => {
                tracing::warn!(error = %error, "rate limiter unavailable; letting the request through");
                None
            }
        }
    }
}

/// Middleware: applies the limiter to the matched route.
pub async fn limit(State(limiter): State<RateLimiter>, req: Request, next: Next) -> Response {
    if limiter.per_minute == 0 {
        return next.run(req).await;
    }
    let bucket = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    let peer = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0);
    let client = limiter.client(req.headers(), peer);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let window = now / 60;
    let reset = 60 - now % 60;
    let Some(count) = limiter.count(&bucket, &client, window).await else {
        return next.run(req).await;
    };
    let limit = u64::from(limiter.per_minute);
    let mut response = if count > limit {
        ApiError::rate_limited(reset).into_response()
    } else {
        next.run(req).await
    };
    let headers = response.headers_mut();
    for (name, value) in [
        ("ratelimit-limit", limit),
        ("ratelimit-remaining", limit.saturating_sub(count)),
        ("ratelimit-reset", reset),
    ] {
        headers.insert(name, HeaderValue::from(value));
    }
    response
}
