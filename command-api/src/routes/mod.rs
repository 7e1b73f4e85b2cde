//! The command API's routes and their OpenAPI description.

mod auth;
mod dto;
mod errors;
mod orders;
mod passwords;
mod products;
mod reviews;
mod shop_dto;
mod shop_errors;
mod users;
mod webhooks;

use crate::state::AppState;
use axum::Router;
use axum::middleware::from_fn_with_state;
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use web::rate_limit::{RouteLimit, limit};
use web::{BearerAuth, ErrorResponses, RateLimited};

pub use dto::{TokenResponse, UserResponse};

/// The rate limits of the API's routes.
pub struct Limits {
    /// Per client address and route, on `/api/v1/auth/*` (`AUTH_RATE_LIMIT_PER_MINUTE`).
    pub auth: RouteLimit,
    /// Per caller, on every route (`API_RATE_LIMIT`).
    pub api: RouteLimit,
}

/// The API routes (without health, docs and hardening) and their OpenAPI document: each
/// handler is registered once, and its `#[utoipa::path]` puts it in the document.
pub fn api_routes(state: AppState, limits: Limits) -> (Router, utoipa::openapi::OpenApi) {
    let auth = OpenApiRouter::new()
        .routes(routes!(auth::register))
        .routes(routes!(auth::login))
        .routes(routes!(auth::refresh))
        .routes(routes!(auth::logout))
        .routes(routes!(passwords::request_reset))
        .routes(routes!(passwords::confirm_reset))
        .route_layer(from_fn_with_state(limits.auth, limit));
    let router = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(auth)
        .routes(routes!(users::create))
        .routes(routes!(users::update, users::replace, users::delete))
        .routes(routes!(users::change_role))
        .routes(routes!(users::change_password))
        .routes(routes!(products::create))
        .routes(routes!(products::update, products::retire))
        .routes(routes!(products::restock))
        .routes(routes!(orders::place))
        .routes(routes!(orders::cancel))
        .routes(routes!(reviews::write))
        .routes(routes!(reviews::edit, reviews::delete))
        .routes(routes!(webhooks::create, webhooks::list))
        .routes(routes!(webhooks::show, webhooks::update, webhooks::delete))
        .routes(routes!(webhooks::rotate_secret))
        .routes(routes!(webhooks::deliveries))
        .routes(routes!(webhooks::delivery))
        .routes(routes!(webhooks::retry))
        .routes(routes!(webhooks::replay))
        .with_state(state);
    let (router, mut document) = router.split_for_parts();
    let router = router
        .route_layer(axum::middleware::from_fn(consistency_token))
        .route_layer(from_fn_with_state(limits.api, limit));
    // The document's modifiers ran before the router added the paths: run them again.
    BearerAuth.modify(&mut document);
    ErrorResponses.modify(&mut document);
    RateLimited.modify(&mut document);
    web::ConsistencyIssued.modify(&mut document);
    (router, document)
}

/// Puts `X-Consistency-Token` on every successful answer whose request appended events
/// (what the engine committed while it was handled; see `eventstore::consistency`).
async fn consistency_token(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let (mut response, written) = eventstore::consistency::recording(next.run(request)).await;
    if !written.is_empty()
        && response.status().is_success()
        && let Ok(value) = axum::http::HeaderValue::from_str(&written.to_string())
    {
        response.headers_mut().insert(
            axum::http::HeaderName::from_static(eventstore::consistency::HEADER),
            value,
        );
    }
    response
}

/// The OpenAPI document of the command API (its paths come from [`api_routes`]).
#[derive(OpenApi)]
#[openapi(
    info(title = "command-api", description = "Writes: registration, sessions, users, products, orders and reviews (every write appends events); webhook endpoints for subscribers without NATS."),
    components(schemas(dto::RegisterRequest, dto::LoginRequest, dto::RefreshRequest, dto::UpdateUserRequest, dto::ReplaceUserRequest, dto::CreateUserRequest,
                       dto::RoleRequest, dto::PasswordRequest, dto::UserResponse, dto::TokenResponse,
                       shop_dto::CreateProductRequest, shop_dto::UpdateProductRequest, shop_dto::RestockRequest,
                       shop_dto::OrderItem, shop_dto::PlaceOrderRequest, shop_dto::ProductResponse,
                       shop_dto::OrderResponse, reviews::WriteReviewRequest, reviews::EditReviewRequest,
                       reviews::ReviewResponse, webhooks::CreateWebhookRequest, webhooks::UpdateWebhookRequest,
                       webhooks::ReplayRequest, webhooks::ReplayAccepted, web::FieldError)),
    modifiers(&BearerAuth, &ErrorResponses),
)]
pub struct ApiDoc;
