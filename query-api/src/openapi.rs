//! The OpenAPI document served at `/openapi.json` (and `/docs`): every endpoint, the
//! envelopes as they appear on the wire, and the bearer-token scheme.

use crate::listing::SortField;
use crate::orders::{OrderLineView, OrderSort, OrderView};
use crate::pagination::SortOrder;
use crate::products::{ProductSort, ProductView, TopProduct};
use crate::reviews::{ReviewListResponse, ReviewSort, ReviewView};
use readmodels::users::UserView;
use serde::Serialize;
use std::collections::BTreeMap;
use utoipa::{OpenApi, ToSchema};
use web::{BearerAuth, ErrorResponses};
use web::{CursorPage, FieldError, PagePage};

/// `meta` of every answer.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Meta {
    /// The request id, also in the `x-request-id` header.
    pub request_id: String,
}

/// A single user.
#[derive(Serialize, ToSchema)]
pub struct UserResponse {
    /// The user.
    pub data: UserView,
    /// Request metadata.
    pub meta: Meta,
}

/// `meta.pagination`: page mode or cursor mode, by the request's parameters.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum Pagination {
    /// `?page=&perPage=`.
    Page(PagePage),
    /// `?cursor=&limit=`.
    Cursor(CursorPage),
}

/// `meta` of a list.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ListMeta {
    /// The request id.
    pub request_id: String,
    /// Where this page stands.
    pub pagination: Pagination,
}

/// A page of users.
#[derive(Serialize, ToSchema)]
pub struct UserListResponse {
    /// The users on this page.
    pub data: Vec<UserView>,
    /// Request and pagination metadata.
    pub meta: ListMeta,
}

/// A single product.
#[derive(Serialize, ToSchema)]
pub struct ProductResponse {
    /// The product.
    pub data: ProductView,
    /// Request metadata.
    pub meta: Meta,
}

/// A page of products.
#[derive(Serialize, ToSchema)]
pub struct ProductListResponse {
    /// The products on this page.
    pub data: Vec<ProductView>,
    /// Request and pagination metadata.
    pub meta: ListMeta,
}

/// The best sellers.
#[derive(Serialize, ToSchema)]
pub struct TopProductsResponse {
    /// Most units sold first, ties by id.
    pub data: Vec<TopProduct>,
    /// Request metadata.
    pub meta: Meta,
}

/// A single order.
#[derive(Serialize, ToSchema)]
pub struct OrderResponse {
    /// The order with its lines.
    pub data: OrderView,
    /// Request metadata.
    pub meta: Meta,
}

/// A page of orders.
#[derive(Serialize, ToSchema)]
pub struct OrderListResponse {
    /// The orders on this page, each with its lines.
    pub data: Vec<OrderView>,
    /// Request and pagination metadata.
    pub meta: ListMeta,
}

/// The error object.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    /// Stable machine code (`VALIDATION_ERROR`, `UNAUTHORIZED`, `FORBIDDEN`, `NOT_FOUND`, ...).
    pub code: String,
    /// Human-readable explanation, safe to show.
    pub message: String,
    /// The fields (or query/path parameters) at fault, when any.
    pub details: Option<Vec<FieldError>>,
}

/// Every error answer.
#[derive(Serialize, ToSchema)]
pub struct ErrorResponse {
    /// What went wrong.
    pub error: ErrorBody,
    /// Request metadata.
    pub meta: Meta,
}

/// `data` of the health endpoints.
#[derive(Serialize, ToSchema)]
pub struct HealthStatus {
    /// `live` or `ready`.
    pub status: String,
    /// Readiness only: `up` or `down` per dependency (`postgres` critical, `redis` not).
    pub checks: Option<BTreeMap<String, String>>,
}

/// A health answer.
#[derive(Serialize, ToSchema)]
pub struct HealthResponse {
    /// The status.
    pub data: HealthStatus,
    /// Request metadata.
    pub meta: Meta,
}

/// The process answers (served by `web::health_routes`; declared here for the document).
#[utoipa::path(get, path = "/health/live", tag = "health",
    responses((status = 200, description = "Alive", body = HealthResponse)))]
#[allow(dead_code)]
fn health_live() {}

/// Postgres answers (Redis is reported but not required).
#[utoipa::path(get, path = "/health/ready", tag = "health",
    responses(
        (status = 200, description = "Ready", body = HealthResponse),
        (status = 503, description = "Postgres does not answer", body = ErrorResponse),
    ))]
#[allow(dead_code)]
fn health_ready() {}

/// The document.
#[derive(OpenApi)]
#[openapi(
    info(title = "query-api", description = "Read side of the CQRS backend: users, products, best sellers and orders from Redis and Postgres read models."),
    paths(health_live, health_ready),
    components(schemas(
        UserView, UserResponse, UserListResponse, Meta, ListMeta, Pagination, PagePage, CursorPage,
        ErrorResponse, ErrorBody, FieldError, HealthResponse, HealthStatus, SortField, SortOrder,
        ProductView, ProductResponse, ProductListResponse, ProductSort, TopProduct, TopProductsResponse,
        OrderView, OrderLineView, OrderResponse, OrderListResponse, OrderSort,
        ReviewView, ReviewListResponse, ReviewSort
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
