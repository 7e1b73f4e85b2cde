//! `GET /api/v1/users/{id}/orders` and `GET /api/v1/orders/{id}`: orders for their owner
//! or an administrator.

use super::versioned;
use crate::orders::OrderView;
use crate::orders::{self, ListOrdersParams};
use crate::state::AppState;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;
use web::{ApiError, ApiPath, ApiQuery, ApiResponse, Reader};

/// Orders are personal: clients may store them privately but must revalidate.
const ORDER_CACHE_CONTROL: &str = "private, no-cache";

/// The order routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_user_orders))
        .routes(routes!(get_order))
}

/// A user's orders with their lines, newest first, for that user or an administrator;
/// page mode (`page`, `perPage`) or cursor mode (`cursor`, `limit`). An unknown user
/// has no orders.
#[utoipa::path(
    get,
    path = "/api/v1/users/{id}/orders",
    tag = "orders",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "User id"), ListOrdersParams),
    responses(
        (status = 200, description = "A page of orders", body = web::ListEnvelope<OrderView>),
        (status = 400, description = "`id` is not a UUID, or a parameter is unknown, malformed or out of range", body = web::ErrorEnvelope),
        (status = 401, description = "Missing or invalid token", body = web::ErrorEnvelope),
        (status = 403, description = "Neither that user nor an administrator", body = web::ErrorEnvelope),
    )
)]
pub async fn list_user_orders(
    State(state): State<AppState>,
    caller: Reader,
    ApiPath(user_id): ApiPath<Uuid>,
    ApiQuery(params): ApiQuery<ListOrdersParams>,
) -> Result<ApiResponse, ApiError> {
    let request = params.validate(user_id).map_err(ApiError::validation)?;
    caller.require_self_or_admin(user_id).await?;
    let listing = orders::list_orders(&state.pool, &request);
    state
        .page(
            "orders",
            readmodels::orders::TABLES,
            &request,
            &request.scope,
            listing,
        )
        .await
}

/// One order with its lines as ordered, for its owner or an administrator. Another
/// user's order answers 404 like an unknown one, so ids reveal nothing.
#[utoipa::path(
    get,
    path = "/api/v1/orders/{id}",
    tag = "orders",
    security(("bearer" = [])),
    params(
        ("id" = Uuid, Path, description = "Order id"),
        ("If-None-Match" = Option<String>, Header, description = "ETag of a copy the client holds"),
    ),
    responses(
        (status = 200, description = "The order", body = web::Envelope<OrderView>,
            headers(("ETag" = String, description = "Quoted stream version"))),
        (status = 304, description = "The client's copy is current"),
        (status = 400, description = "`id` is not a UUID", body = web::ErrorEnvelope),
        (status = 401, description = "Missing or invalid token", body = web::ErrorEnvelope),
        (status = 404, description = "Unknown order, or another user's (for non-administrators)", body = web::ErrorEnvelope),
    )
)]
pub async fn get_order(
    State(state): State<AppState>,
    caller: Reader,
    ApiPath(id): ApiPath<Uuid>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let order = state
        .orders
        .find(id)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::not_found("order"))?;
    if order.user_id != caller.id() && !caller.is_admin().await? {
        return Err(ApiError::not_found("order"));
    }
    Ok(versioned(&headers, &order, order.version, ORDER_CACHE_CONTROL))
}
