//! The OpenAPI document served at `/openapi.json` (and `/docs`): every endpoint (added by
//! the router), the envelopes (`web::Envelope<T>`, `web::ListEnvelope<T>`,
//! `web::ErrorEnvelope`, generic over the item) and the bearer-token scheme.

use crate::listing::SortField;
use crate::orders::{OrderLineView, OrderSort, OrderView};
use crate::pagination::SortOrder;
use crate::products::{ProductSort, ProductView, TopProduct};
use crate::reviews::{ReviewSort, ReviewView};
use readmodels::users::UserView;
use serde::Serialize;
use std::collections::BTreeMap;
use utoipa::{OpenApi, ToSchema};
use web::{BearerAuth, ErrorResponses};
use web::{CursorPage, FieldError, PagePage};

/// `data` of the health endpoints.
#[derive(Serialize, ToSchema)]
pub struct HealthStatus {
    /// `live` or `ready`.
    pub status: String,
    /// Readiness only: `up` or `down` per dependency (`postgres` critical, `redis` not).
    pub checks: Option<BTreeMap<String, String>>,
}

/// The process answers (served by `web::health_routes`; declared here for the document).
#[utoipa::path(get, path = "/health/live", tag = "health",
    responses((status = 200, description = "Alive", body = web::Envelope<HealthStatus>)))]
#[allow(dead_code)]
fn health_live() {}

/// Postgres answers (Redis is reported but not required).
#[utoipa::path(get, path = "/health/ready", tag = "health",
    responses(
        (status = 200, description = "Ready", body = web::Envelope<HealthStatus>),
        (status = 503, description = "Postgres does not answer", body = web::ErrorEnvelope),
    ))]
#[allow(dead_code)]
fn health_ready() {}

/// The document.
#[derive(OpenApi)]
#[openapi(
    info(title = "query-api", description = "Read side of the CQRS backend: users, products, best sellers and orders from Redis and Postgres read models."),
    paths(health_live, health_ready),
    components(schemas(
        UserView, PagePage, CursorPage, FieldError, HealthStatus, SortField, SortOrder,
        ProductView, ProductSort, TopProduct, OrderView, OrderLineView, OrderSort, ReviewView, ReviewSort
    )),
    modifiers(&BearerAuth, &ErrorResponses),
    tags(
        (name = "users", description = "Users as readers see them"),
        (name = "products", description = "The public catalogue and best sellers (no token needed)"),
        (name = "orders", description = "Orders with their lines, for their owner or an administrator"),
        (name = "reviews", description = "Product reviews by their buyers (no token needed)"),
        (name = "health", description = "Liveness and readiness"),
    )
)]
struct ApiDoc;

/// The OpenAPI document of the query API without its API paths, which the router adds
/// (see `query_api::router`).
pub fn openapi() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}
