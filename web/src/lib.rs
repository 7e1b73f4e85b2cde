//! The HTTP layer shared by every service: the response and error envelopes of
//! DESIGN.md, extractors whose rejections are our errors, the authenticated-user
//! extractor, request ids and access logs, hardening middleware, health endpoints,
//! API docs, and a server with graceful shutdown.

mod auth;
mod context;
mod docs;
mod envelope;
mod error;
mod extract;
mod health;
mod middleware;
mod server;

pub use auth::{Actor, AuthUser, Reader};
pub use context::{current_request_id, record_user_id};
pub use docs::{BearerAuth, docs_routes};
pub use envelope::{ApiResponse, CursorPage, PagePage};
pub use error::{ApiError, FieldError};
pub use extract::{ApiJson, ApiPath, ApiQuery};
pub use health::{Readiness, health_routes};
pub use middleware::{HttpSettings, harden};
pub use server::serve;
