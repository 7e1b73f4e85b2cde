//! The per-request context (request id, authenticated user) visible to every piece of
//! code that runs for the request, so envelopes and logs carry the same id.

use std::sync::{Arc, OnceLock};
use uuid::Uuid;

/// What is known about the request being served.
#[derive(Debug)]
pub(crate) struct RequestContext {
    pub(crate) request_id: String,
    pub(crate) user_id: OnceLock<Uuid>,
    /// The request's span, whose fields every line logged for the request carries.
    pub(crate) span: tracing::Span,
}

tokio::task_local! {
    pub(crate) static CONTEXT: Arc<RequestContext>;
}

/// The id of the request being served (empty outside a request).
pub fn current_request_id() -> String {
    CONTEXT.try_with(|c| c.request_id.clone()).unwrap_or_default()
}

/// The time of an answer as `meta.timestamp` writes it: RFC 3339 in UTC, milliseconds.
pub fn answer_timestamp() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Remembers the authenticated user: every line logged for the request from now on, and
/// its access line, carry `userId`.
pub fn record_user_id(user_id: Uuid) {
    let _ = CONTEXT.try_with(|c| {
        if c.user_id.set(user_id).is_ok() {
            c.span.record("userId", tracing::field::display(user_id));
        }
    });
}
