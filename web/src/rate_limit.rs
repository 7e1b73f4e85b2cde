//! Rate limits kept in Redis, so every replica draws on one budget, by GCRA (the generic
//! cell rate algorithm): a key stores one timestamp, the "theoretical arrival time" of
//! its next request; a request is allowed when that time is less than one period ahead
//! of now, and moves it one interval (period / limit) further. A client may burst up to
//! the limit, then goes at the limit's pace: there are no window boundaries across which
//! twice the rate would pass, as with fixed windows.
//!
//! The whole decision is one Lua script on Redis' own clock, so replicas with skewed
//! clocks agree. Redis away, slow (every call has the handle's deadline) or broken means
//! no decision: the callers let the request through and log it (at most every ten
//! seconds), since losing a limit for a moment is better than refusing everyone.
//!
//! Hand-written over a crate: the crates that do GCRA (`governor`) count in memory, per
//! process; the shared state here is one key and fifteen lines of Lua.

use crate::ApiError;
use crate::auth::bearer_token;
use auth::TokenVerifier;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use runtime::RedisHandle;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// `RateLimit-Limit`: requests allowed per period.
pub const LIMIT_HEADER: HeaderName = HeaderName::from_static("ratelimit-limit");
/// `RateLimit-Remaining`: requests left now.
pub const REMAINING_HEADER: HeaderName = HeaderName::from_static("ratelimit-remaining");
/// `RateLimit-Reset`: seconds until the whole limit is available again.
pub const RESET_HEADER: HeaderName = HeaderName::from_static("ratelimit-reset");
/// `RateLimit-Policy`: `<limit>;w=<period in seconds>`.
pub const POLICY_HEADER: HeaderName = HeaderName::from_static("ratelimit-policy");

/// GCRA over one key, in microseconds. `ARGV`: interval (µs per request), cost (1 takes
/// a request, 0 looks, -1 gives one back), limit. The burst is `limit × interval`, so a
/// period that does not divide evenly never lets more than `limit` through. Returns
/// `{allowed, remaining, reset ms, retry-after ms}`.
const GCRA: &str = r"
local interval = tonumber(ARGV[1])
local cost = tonumber(ARGV[2])
local burst = interval * tonumber(ARGV[3])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local function store()
  if tat > now then
    redis.call('SET', KEYS[1], string.format('%.0f', tat), 'PX', math.ceil((tat - now) / 1000))
  else
    redis.call('DEL', KEYS[1])
  end
end
local function ms(us) return math.ceil(us / 1000) end
if cost < 0 then
  tat = math.max(now, tat - interval)
  store()
  return {1, math.floor((now + burst - tat) / interval), ms(tat - now), 0}
end
local wanted = tat + interval
if wanted - now > burst then
  return {0, 0, ms(tat - now), ms(wanted - burst - now)}
end
if cost > 0 then
  tat = wanted
  store()
end
return {1, math.floor((now + burst - tat) / interval), ms(tat - now), 0}
";

/// `API_RATE_LIMIT` when unset: 10 requests a second per caller, in bursts of up to 600.
pub const DEFAULT_API_RATE_LIMIT: &str = "600/60s";

/// A `<limit>/<period>` quota from the environment variable `name` (`0`: none).
pub fn quota_from_env(name: &str, default: &str) -> Result<Option<Quota>, runtime::ConfigError> {
    Quota::parse(&runtime::env_or(name, default)).map_err(|reason| runtime::ConfigError {
        name: name.into(),
        reason,
    })
}

/// So many requests per period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    /// Requests per period (and the largest burst).
    pub limit: u32,
    /// The period.
    pub period: Duration,
}

impl Quota {
    /// `<limit>/<period>`, the period a number with `ms`, `s`, `m` or `h` (`600/60s`,
    /// `5/15m`); `0` is no limit (`None`).
    pub fn parse(raw: &str) -> Result<Option<Self>, String> {
        let raw = raw.trim();
        if raw == "0" {
            return Ok(None);
        }
        let refused = || format!("`{raw}` is not `<limit>/<period>` like `600/60s` or `5/15m`, or `0`");
        let (limit, period) = raw.split_once('/').ok_or_else(refused)?;
        let limit: u32 = limit.trim().parse().map_err(|_| refused())?;
        let period = period.trim();
        if period.is_empty() {
            return Err(refused());
        }
        let split = period.find(|c: char| !c.is_ascii_digit()).unwrap_or(period.len());
        let (amount, unit) = period.split_at(split);
        let amount: u64 = if amount.is_empty() {
            1
        } else {
            amount.parse().map_err(|_| refused())?
        };
        let millis = match unit {
            "ms" => amount,
            "s" | "" => amount.saturating_mul(1_000),
            "m" => amount.saturating_mul(60_000),
            "h" => amount.saturating_mul(3_600_000),
            _ => return Err(refused()),
        };
        if limit == 0 {
            return Ok(None);
        }
        if millis == 0 {
            return Err(refused());
        }
        Ok(Some(Self {
            limit,
            period: Duration::from_millis(millis),
        }))
    }

    /// The time one request uses of the budget, in microseconds.
    fn interval_us(&self) -> u64 {
        let period = u64::try_from(self.period.as_micros()).unwrap_or(u64::MAX);
        (period / u64::from(self.limit.max(1))).max(1)
    }

    /// The `RateLimit-Policy` value.
    pub fn policy(&self) -> String {
        format!("{};w={}", self.limit, self.period.as_secs().max(1))
    }
}

impl std::fmt::Display for Quota {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}s", self.limit, self.period.as_secs_f64())
    }
}

/// What the limiter decided for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// Whether the request may go on.
    pub allowed: bool,
    /// The quota's limit.
    pub limit: u32,
    /// Requests left after this one.
    pub remaining: u32,
    /// Until the whole limit is available again.
    pub reset: Duration,
    /// When refused: until one request is allowed again.
    pub retry_after: Duration,
}

impl Decision {
    /// Whole seconds, rounded up, for headers.
    fn secs(duration: Duration) -> u64 {
        duration.as_millis().div_ceil(1000).try_into().unwrap_or(u64::MAX)
    }

    /// `Retry-After` in seconds (at least 1).
    pub fn retry_after_secs(&self) -> u64 {
        Self::secs(self.retry_after).max(1)
    }

    /// Writes the `RateLimit-*` headers of this decision under `quota`, unless the
    /// response already tells of a tighter limit (fewer requests remaining).
    pub fn write_headers(&self, quota: Quota, headers: &mut HeaderMap) {
        let tighter = headers
            .get(&REMAINING_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u32>().ok())
            .is_some_and(|remaining| remaining < self.remaining);
        if tighter {
            return;
        }
        headers.insert(LIMIT_HEADER, HeaderValue::from(self.limit));
        headers.insert(REMAINING_HEADER, HeaderValue::from(self.remaining));
        headers.insert(RESET_HEADER, HeaderValue::from(Self::secs(self.reset)));
        if let Ok(policy) = HeaderValue::from_str(&quota.policy()) {
            headers.insert(POLICY_HEADER, policy);
        }
    }
}

impl Decision {
    /// 429 `RATE_LIMITED` with `Retry-After`, `message`, and this decision's headers.
    pub fn refusal(&self, quota: Quota, message: &str) -> ApiError {
        let mut headers = HeaderMap::new();
        self.write_headers(quota, &mut headers);
        headers.iter().fold(
            ApiError::rate_limited_because(self.retry_after_secs(), message),
            |error, (name, value)| error.with_header(name.clone(), value.to_str().unwrap_or_default()),
        )
    }
}

/// Counts requests in Redis under `<prefix>:ratelimit:<bucket>:<client>`. Cheap to clone.
#[derive(Clone)]
pub struct Limiter {
    redis: RedisHandle,
    prefix: String,
    script: Arc<redis::Script>,
    last_warning: Arc<AtomicU64>,
}

impl Limiter {
    /// A limiter over `redis`, its keys under `prefix`.
    pub fn new(redis: RedisHandle, prefix: impl Into<String>) -> Self {
        Self {
            redis,
            prefix: prefix.into(),
            script: Arc::new(redis::Script::new(GCRA)),
            last_warning: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Takes one request of `client`'s budget in `bucket`; `None` when Redis cannot
    /// decide (let it through).
    pub async fn acquire(&self, bucket: &str, client: &str, quota: Quota) -> Option<Decision> {
        self.run(bucket, client, quota, 1).await
    }

    /// Whether one more request would be allowed, taking nothing.
    pub async fn check(&self, bucket: &str, client: &str, quota: Quota) -> Option<Decision> {
        self.run(bucket, client, quota, 0).await
    }

    /// Gives one request back (one that turned out not to count).
    pub async fn release(&self, bucket: &str, client: &str, quota: Quota) {
        let _ = self.run(bucket, client, quota, -1).await;
    }

    async fn run(&self, bucket: &str, client: &str, quota: Quota, cost: i8) -> Option<Decision> {
        let Some(mut conn) = self.redis.get() else {
            self.warn("Redis is unavailable");
            return None;
        };
        let key = format!("{}:ratelimit:{bucket}:{client}", self.prefix);
        let answer: redis::RedisResult<(i64, i64, i64, i64)> = self
            .script
            .key(key)
            .arg(quota.interval_us())
            .arg(cost)
            .arg(quota.limit)
            .invoke_async(&mut conn)
            .await;
        match answer {
            Ok((allowed, remaining, reset, retry_after)) => {
                let millis = |ms: i64| Duration::from_millis(u64::try_from(ms).unwrap_or(0));
                Some(Decision {
                    allowed: allowed == 1,
                    limit: quota.limit,
                    remaining: u32::try_from(remaining).unwrap_or(0).min(quota.limit),
                    reset: millis(reset),
                    retry_after: millis(retry_after),
                })
            }
            Err(error) => {
                self.warn(&error.to_string());
                None
            }
        }
    }

    /// Logs that requests go unlimited, at most every ten seconds per limiter.
    fn warn(&self, why: &str) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let last = self.last_warning.load(Ordering::Relaxed);
        if now >= last + 10
            && self
                .last_warning
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(
                reason = why,
                "rate limiter cannot decide; letting requests through"
            );
        }
    }
}

/// Who a request counts against: `user:<id>` for a valid bearer token, else
/// `ip:<address>` (from `X-Forwarded-For` only when trusted).
pub async fn client_key(
    headers: &HeaderMap,
    peer: Option<SocketAddr>,
    verifier: Option<&TokenVerifier>,
    trust_forwarded_for: bool,
) -> String {
    if let (Some(verifier), Some(token)) = (verifier, bearer_token(headers))
        && let Ok(claims) = verifier.verify(token).await
    {
        return format!("user:{}", claims.sub);
    }
    format!("ip:{}", client_address(headers, peer, trust_forwarded_for))
}

/// The client's address: when trusted, the last `X-Forwarded-For` entry (the one the
/// proxy in front added; the entries before it are the client's own words and could name
/// a new address on every request), else the peer.
pub fn client_address(headers: &HeaderMap, peer: Option<SocketAddr>, trust_forwarded_for: bool) -> String {
    let forwarded = trust_forwarded_for
        .then(|| {
            headers
                .get_all("x-forwarded-for")
                .iter()
                .next_back()
                .and_then(|v| v.to_str().ok())
        })
        .flatten()
        .and_then(|v| v.rsplit(',').next())
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty());
    forwarded
        .or_else(|| peer.map(|p| p.ip().to_string()))
        .unwrap_or_else(|| "unknown".to_owned())
}

/// The peer's socket address, when the server recorded it (`ConnectInfo`).
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub Option<SocketAddr>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Peer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(Peer(
            parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0),
        ))
    }
}

/// A limit for every route of a router (`API_RATE_LIMIT`), per caller.
#[derive(Clone)]
pub struct RouteLimit {
    limiter: Limiter,
    bucket: &'static str,
    quota: Option<Quota>,
    verifier: Option<Arc<TokenVerifier>>,
    per_route: bool,
    trust_forwarded_for: bool,
}

/// Who a [`RouteLimit`] counts requests against.
#[derive(Clone)]
pub enum Caller {
    /// The user of a valid bearer token, else the client address; one budget across
    /// every route.
    UserOrAddress(Arc<TokenVerifier>),
    /// The client address, one budget per route (the sign-in routes).
    AddressAndRoute,
}

impl RouteLimit {
    /// `quota` per `caller`, counted in `bucket` (`None`: no limit).
    pub fn new(
        limiter: Limiter,
        bucket: &'static str,
        quota: Option<Quota>,
        caller: Caller,
        trust_forwarded_for: bool,
    ) -> Self {
        let (verifier, per_route) = match caller {
            Caller::UserOrAddress(verifier) => (Some(verifier), false),
            Caller::AddressAndRoute => (None, true),
        };
        Self {
            limiter,
            bucket,
            quota,
            verifier,
            per_route,
            trust_forwarded_for,
        }
    }
}

/// Middleware (`from_fn_with_state`): counts the request; 429 `RATE_LIMITED` with
/// `Retry-After` when over, and the `RateLimit-*` headers on every answer.
pub async fn limit(State(limit): State<RouteLimit>, req: Request, next: Next) -> Response {
    let Some(quota) = limit.quota else {
        return next.run(req).await;
    };
    let peer = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0);
    let mut client = client_key(
        req.headers(),
        peer,
        limit.verifier.as_deref(),
        limit.trust_forwarded_for,
    )
    .await;
    if limit.per_route {
        let route = req
            .extensions()
            .get::<axum::extract::MatchedPath>()
            .map_or_else(|| req.uri().path().to_owned(), |p| p.as_str().to_owned());
        client = format!("{client}:{route}");
    }
    let Some(decision) = limit.limiter.acquire(limit.bucket, &client, quota).await else {
        return next.run(req).await;
    };
    let mut response = if decision.allowed {
        next.run(req).await
    } else {
        decision
            .refusal(quota, "too many requests; retry later")
            .into_response()
    };
    decision.write_headers(quota, response.headers_mut());
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotas_read_like_the_configuration_says() {
        let quota = |raw| Quota::parse(raw).expect(raw).expect("a limit");
        assert_eq!(quota("600/60s").period, Duration::from_secs(60));
        assert_eq!(quota("600/60s").limit, 600);
        assert_eq!(quota("5/15m").period, Duration::from_secs(900));
        assert_eq!(quota("100/1h").period, Duration::from_secs(3600));
        assert_eq!(quota("10/500ms").period, Duration::from_millis(500));
        assert_eq!(quota("7/s").period, Duration::from_secs(1));
        assert_eq!(quota(" 600 / 60s ").limit, 600);
        assert_eq!(Quota::parse("0"), Ok(None));
        assert_eq!(Quota::parse("0/60s"), Ok(None));
        for bad in ["", "600", "600/", "x/60s", "600/60y", "600/0s", "-1/60s"] {
            assert!(Quota::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(quota("600/60s").interval_us(), 100_000);
        assert_eq!(quota("600/1s").interval_us(), 1_666);
        assert_eq!(quota("600/60s").policy(), "600;w=60");
    }

    #[test]
    fn the_client_address_is_the_one_the_trusted_proxy_added() {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", HeaderValue::from_static("6.6.6.6, 10.1.2.3"));
        let peer = Some(SocketAddr::from(([127, 0, 0, 1], 5000)));
        assert_eq!(client_address(&headers, peer, true), "10.1.2.3");
        assert_eq!(client_address(&headers, peer, false), "127.0.0.1");
        assert_eq!(client_address(&HeaderMap::new(), peer, true), "127.0.0.1");
    }

    #[test]
    fn a_tighter_limit_already_told_is_kept() {
        let quota = Quota::parse("10/60s").expect("valid").expect("a limit");
        let decision = |remaining| Decision {
            allowed: true,
            limit: 10,
            remaining,
            reset: Duration::from_millis(1500),
            retry_after: Duration::ZERO,
        };
        let mut headers = HeaderMap::new();
        decision(3).write_headers(quota, &mut headers);
        assert_eq!(headers[&RESET_HEADER], "2");
        decision(7).write_headers(quota, &mut headers);
        assert_eq!(headers[&REMAINING_HEADER], "3");
        decision(1).write_headers(quota, &mut headers);
        assert_eq!(headers[&REMAINING_HEADER], "1");
        assert_eq!(headers[&POLICY_HEADER], "10;w=60");
    }
}
