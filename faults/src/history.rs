//! The record of every request the load made and every answer it got, stamped with the
//! phase (the fault being injected or recovered from) it happened in.

use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What a command is expected to have appended when it answered 2xx.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expect {
    /// The stream the main event is on (the id in the answer).
    pub stream: uuid::Uuid,
    /// The main event's type, exactly once.
    pub main: &'static str,
    /// Other events in the same transaction, with how many of each.
    pub others: Vec<(&'static str, usize)>,
}

/// One request and its answer.
#[derive(Debug, Clone)]
pub struct Record {
    /// The phase it started in.
    pub phase: String,
    /// HTTP method.
    pub method: &'static str,
    /// Route template, e.g. `/api/v1/users/{id}`.
    pub route: &'static str,
    /// Status; 0 when no answer came (connection refused or timed out).
    pub status: u16,
    /// The `Retry-After` header, if any.
    pub retry_after: Option<String>,
    /// Time from sending to the full answer.
    pub latency: Duration,
    /// The `x-request-id` sent, which the events' `correlationId` carries.
    pub request_id: String,
    /// True for a write (it may append events).
    pub command: bool,
    /// For a 2xx command: what it should have appended.
    pub expect: Option<Expect>,
    /// True when the client gave up waiting.
    pub timed_out: bool,
}

/// Shared by every load task.
#[derive(Clone)]
pub struct Recorder {
    records: Arc<Mutex<Vec<Record>>>,
    phase: Arc<Mutex<String>>,
}

impl Recorder {
    /// Empty, in phase `warm-up`.
    pub fn new() -> Self {
        Self {
            records: Arc::default(),
            phase: Arc::new(Mutex::new("warm-up".to_owned())),
        }
    }

    /// The current phase.
    pub fn phase(&self) -> String {
        self.phase.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Enters a phase: later requests are counted in it.
    pub fn set_phase(&self, phase: &str) {
        *self.phase.lock().unwrap_or_else(|e| e.into_inner()) = phase.to_owned();
    }

    /// Keeps one record.
    pub fn push(&self, record: Record) {
        self.records
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(record);
    }

    /// Every record so far.
    pub fn records(&self) -> Vec<Record> {
        self.records.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// Every record as CSV, one request a line, for reading a run afterwards.
pub fn csv(records: &[Record]) -> String {
    let mut out = String::from("phase,method,route,status,retry_after,latency_ms,timed_out,request_id\n");
    for r in records {
        out.push_str(&format!(
            "{},{},{},{},{},{},{},{}\n",
            r.phase,
            r.method,
            r.route,
            r.status,
            r.retry_after.as_deref().unwrap_or(""),
            r.latency.as_millis(),
            r.timed_out,
            r.request_id
        ));
    }
    out
}

/// Counts of answers by class.
#[derive(Debug, Default, Clone, Copy)]
pub struct Counts {
    /// All requests.
    pub total: usize,
    /// 2xx.
    pub ok: usize,
    /// 4xx.
    pub client: usize,
    /// 503.
    pub unavailable: usize,
    /// 503 without `Retry-After`.
    pub unavailable_bare: usize,
    /// 500.
    pub internal: usize,
    /// Other 5xx.
    pub other_server: usize,
    /// No answer at all.
    pub none: usize,
    /// Slowest answer.
    pub max_latency: Duration,
}

impl Counts {
    /// Counts `records`.
    pub fn of<'a>(records: impl IntoIterator<Item = &'a Record>) -> Self {
        let mut c = Counts::default();
        for r in records {
            c.total += 1;
            c.max_latency = c.max_latency.max(r.latency);
            match r.status {
                0 => c.none += 1,
                200..=299 => c.ok += 1,
                400..=499 => c.client += 1,
                500 => c.internal += 1,
                503 => {
                    c.unavailable += 1;
                    if r.retry_after.is_none() {
                        c.unavailable_bare += 1;
                    }
                }
                _ => c.other_server += 1,
            }
        }
        c
    }
}
