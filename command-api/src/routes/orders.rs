//! `/api/v1/users/{id}/orders` and `/api/v1/orders/{id}/cancel`.

use super::auth::metadata;
use super::shop_dto::{OrderResponse, PlaceOrderRequest};
use crate::idempotency::{Fingerprint, Prepared};
use crate::shop::{Caller, OrderOutcome};
use crate::state::AppState;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use domain::order::{self, Item, LineFault, LinesError};
use serde_json::json;
use uuid::Uuid;
use web::{Actor, ApiError, ApiJson, ApiPath, ApiResponse, FieldError};

/// The domain's line rules, checked before any state is read so that every faulty line
/// is named in one 400 answer (the order decider applies the same rules).
fn validate(body: &PlaceOrderRequest) -> Result<Vec<Item>, ApiError> {
    let items: Vec<Item> = body.items.iter().map(|i| (i.product_id, i.quantity)).collect();
    match order::check_items(&items) {
        Ok(()) => Ok(items),
        Err(LinesError::Count) => Err(ApiError::invalid_field("items", "must have 1 to 50 lines")),
        Err(LinesError::Lines(faults)) => Err(ApiError::validation(
            faults
                .into_iter()
                .map(|fault| match fault {
                    LineFault::Quantity(i) => {
                        FieldError::new(format!("items[{i}].quantity"), "must be from 1 to 1000")
                    }
                    LineFault::Duplicate(i) => {
                        FieldError::new(format!("items[{i}].productId"), "appears in another line")
                    }
                })
                .collect(),
        )),
    }
}

/// Place an order (the user themself or an admin): each line priced now, all stock taken
/// at once or none.
#[utoipa::path(post, path = "/api/v1/users/{id}/orders", tag = "orders", request_body = PlaceOrderRequest,
    params(("id" = Uuid, Path), ("Idempotency-Key" = Option<String>, Header, description = "Replays the first answer for the same request", pattern = "^[!-~]{1,255}$")),
    security(("bearer" = [])),
    responses((status = 201, description = "Placed; `order.placed` and `product.stock_reserved` appended", body = web::Envelope<OrderResponse>),
        (status = 400, description = "VALIDATION_ERROR"), (status = 401, description = "UNAUTHORIZED"),
        (status = 403, description = "FORBIDDEN"), (status = 404, description = "NOT_FOUND: user"),
        (status = 422, description = "INSUFFICIENT_STOCK, UNKNOWN_PRODUCT, PRODUCT_RETIRED, CURRENCY_MISMATCH, IDEMPOTENCY_KEY_REUSED")))]
pub async fn place(
    State(state): State<AppState>,
    caller: Actor,
    ApiPath(user_id): ApiPath<Uuid>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<PlaceOrderRequest>,
) -> Result<ApiResponse, ApiError> {
    let items = validate(&body)?;
    caller.require_self_or_admin(user_id)?;
    let route = format!("POST /api/v1/users/{user_id}/orders");
    let fingerprint = Fingerprint::of(&headers, &caller.id.to_string(), &route, &json!(body))?;
    let pending = match fingerprint
        .prepare(&state.pool, StatusCode::CREATED, |o: &OrderOutcome| {
            json!(OrderResponse::from(o))
        })
        .await?
    {
        Prepared::Replay(answer) => return Ok(answer),
        Prepared::Proceed(pending) => pending,
    };
    match state
        .shop
        .place_order(user_id, &items, &metadata(Some(caller.id)), pending)
        .await
    {
        Ok(outcome) => {
            let location = format!("/api/v1/orders/{}", outcome.id);
            Ok(ApiResponse::created(OrderResponse::from(&outcome))
                .etag(outcome.version)
                .header(header::LOCATION, &location))
        }
        // A concurrent request with the same key may have won (it holds the stock or
        // stored its answer first): answer as it did.
        Err(error) => match fingerprint.replay(&state.pool).await? {
            Some(answer) => Ok(answer),
            None => Err(error.into()),
        },
    }
}

/// Cancel a placed order (owner or admin): its stock goes back.
#[utoipa::path(post, path = "/api/v1/orders/{id}/cancel", tag = "orders",
    params(("id" = Uuid, Path)),
    security(("bearer" = [])),
    responses((status = 200, description = "Cancelled; `order.cancelled` and `product.stock_released` appended", body = web::Envelope<OrderResponse>),
        (status = 401, description = "UNAUTHORIZED"),
        (status = 404, description = "NOT_FOUND (also another user's order)"), (status = 422, description = "ORDER_NOT_CANCELLABLE")))]
pub async fn cancel(
    State(state): State<AppState>,
    caller: Actor,
    ApiPath(order_id): ApiPath<Uuid>,
    _headers: HeaderMap,
) -> Result<ApiResponse, ApiError> {
    let caller = Caller {
        id: caller.id,
        admin: caller.is_admin(),
    };
    let outcome = state
        .shop
        .cancel_order(order_id, caller, &metadata(Some(caller.id)))
        .await?;
    Ok(ApiResponse::ok(OrderResponse::from(&outcome)).etag(outcome.version))
}
