//! The HTTP layer shared by every service: the response and error envelopes of
//! DESIGN.md, extractors whose rejections are our errors, the authenticated-user
//! extractor, request ids and access logs, hardening middleware, health endpoints,
//! API docs, the shared HTTP settings, and a server with connection limits and graceful
//! shutdown.

mod auth;
mod context;
mod docs;
mod envelope;
mod error;
mod extract;
mod health;
mod json;
pub mod metrics;
mod middleware;
pub mod rate_limit;
mod schemas;
mod server;
mod settings;
mod timeouts;

pub use auth::{Actor, Admin, AuthUser, MAX_REASON, Reader, optional_reason};
pub use context::{current_request_id, record_user_id};
pub use docs::{
    BearerAuth, ConsistencyAccepted, ConsistencyIssued, ErrorResponses, RateLimited, docs_routes,
};
pub use envelope::{ApiResponse, CursorPage, PagePage};
pub use error::{ApiError, FieldError};
pub use extract::{ApiJson, ApiPath, ApiQuery, OptionalJson};
pub use health::{Readiness, health_routes};
pub use metrics::metrics_routes;
pub use middleware::harden;
pub use schemas::{
    Envelope, ErrorBody, ErrorEnvelope, ListEnvelope, ListMeta, Meta, PageMeta, PagedEnvelope, Pagination,
};
pub use server::serve;
pub use settings::{ConnectionLimits, HttpSettings};
