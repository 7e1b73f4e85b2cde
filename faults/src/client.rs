//! The HTTP client of the load: spreads requests over both replicas of an API, fails over
//! to the other replica only when a connection is refused (as a load balancer would), and
//! records every request with its answer.

use crate::history::{Expect, Record, Recorder};
use serde_json::Value;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Longer than the services' own request timeout (10 s): a request this slow hung.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(15);

/// From a 2xx answer's body, the events the command must have appended.
pub type ExpectFn = dyn Fn(&Value) -> Option<Expect> + Sync;

/// Which API a request goes to.
#[derive(Debug, Clone, Copy)]
pub enum Side {
    /// command-api replicas.
    Command,
    /// query-api replicas.
    Query,
}

/// What came back.
pub struct Answer {
    /// Status, 0 when none.
    pub status: u16,
    /// Parsed body (`Null` when none or not JSON).
    pub body: Value,
}

impl Answer {
    /// True for 2xx.
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// `data.<field>` as a string.
    pub fn data_str(&self, field: &str) -> Option<String> {
        self.body["data"][field].as_str().map(str::to_owned)
    }
}

/// One request to make.
#[derive(Clone)]
pub struct Request<'a> {
    /// API.
    pub side: Side,
    /// Method.
    pub method: &'static str,
    /// Route template, for the record.
    pub route: &'static str,
    /// Actual path.
    pub path: String,
    /// Bearer token.
    pub token: Option<&'a str>,
    /// JSON body.
    pub body: Option<Value>,
    /// `Idempotency-Key`; a retry with the same key also sends the same request id, so that
    /// the events (whichever attempt committed them) carry it.
    pub key: Option<String>,
}

/// Shared by every load task.
pub struct Api {
    http: reqwest::Client,
    commands: Vec<String>,
    queries: Vec<String>,
    recorder: Recorder,
    next: AtomicUsize,
}

impl Api {
    /// A client over the given replicas.
    pub fn new(commands: Vec<String>, queries: Vec<String>, recorder: Recorder) -> Self {
        let http = reqwest::Client::builder()
            .timeout(CLIENT_TIMEOUT)
            .connect_timeout(Duration::from_secs(2))
            .pool_idle_timeout(Duration::from_secs(5))
            .build()
            .unwrap_or_default();
        Self {
            http,
            commands,
            queries,
            recorder,
            next: AtomicUsize::new(0),
        }
    }

    /// Sends `request`; `expect` says, from a 2xx answer, which events it must have appended
    /// (commands only).
    pub async fn send(&self, request: Request<'_>, expect: Option<&ExpectFn>) -> Answer {
        let bases = match request.side {
            Side::Command => &self.commands,
            Side::Query => &self.queries,
        };
        let phase = self.recorder.phase();
        let request_id = match &request.key {
            Some(key) => format!("faults-{key}"),
            None => format!("faults-{}", uuid::Uuid::new_v4().simple()),
        };
        let first = self.next.fetch_add(1, Ordering::Relaxed) % bases.len();
        let start = Instant::now();
        let mut outcome = None;
        for attempt in 0..bases.len() {
            let base = &bases[(first + attempt) % bases.len()];
            let method = reqwest::Method::from_bytes(request.method.as_bytes()).unwrap_or_default();
            let mut builder = self
                .http
                .request(method, format!("{base}{}", request.path))
                .header("x-request-id", &request_id);
            if let Some(key) = &request.key {
                builder = builder.header("idempotency-key", key);
            }
            if let Some(token) = request.token {
                builder = builder.bearer_auth(token);
            }
            if let Some(body) = &request.body {
                builder = builder.json(body);
            }
            match builder.send().await {
                Ok(response) => {
                    outcome = Some(Ok(response));
                    break;
                }
                Err(error) if error.is_connect() => outcome = Some(Err(error)),
                Err(error) => {
                    outcome = Some(Err(error));
                    break;
                }
            }
        }
        let (status, retry_after, body, timed_out) = match outcome {
            Some(Ok(response)) => {
                let status = response.status().as_u16();
                let retry_after = response
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                match response.bytes().await {
                    Ok(bytes) => (
                        status,
                        retry_after,
                        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
                        false,
                    ),
                    Err(error) => (0, None, Value::Null, error.is_timeout()),
                }
            }
            Some(Err(error)) => (0, None, Value::Null, error.is_timeout()),
            None => (0, None, Value::Null, false),
        };
        let command = matches!(request.side, Side::Command);
        let answer = Answer { status, body };
        let expect = match expect {
            Some(expect) if answer.ok() => expect(&answer.body),
            _ => None,
        };
        self.recorder.push(Record {
            phase,
            method: request.method,
            route: request.route,
            status,
            retry_after,
            latency: start.elapsed(),
            request_id,
            command,
            expect,
            timed_out,
        });
        answer
    }

    /// Sends a keyed write, and again with the same key while the answer is 503 or none
    /// (at most three times), as a client that wants its write done once would.
    pub async fn send_keyed(&self, mut request: Request<'_>, expect: &ExpectFn) -> Answer {
        request.key = Some(uuid::Uuid::new_v4().simple().to_string());
        let mut answer = self.send(request.clone(), Some(expect)).await;
        for _ in 0..2 {
            if answer.status != 0 && answer.status != 503 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
            answer = self.send(request.clone(), Some(expect)).await;
        }
        answer
    }
}
