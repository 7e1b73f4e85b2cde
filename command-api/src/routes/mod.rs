//! The command API's routes and their OpenAPI description.

mod auth;
mod dto;
mod errors;
mod orders;
mod products;
mod shop_dto;
mod shop_errors;
mod users;

use crate::rate_limit::{RateLimiter, limit};
use crate::state::AppState;
use axum::Router;
use axum::middleware::from_fn_with_state;
use axum::routing::{patch, post, put};
use utoipa::OpenApi;
use web::{BearerAuth, ErrorResponses};

pub use dto::{TokenResponse, UserResponse};

/// The API routes (without health, docs and hardening).
pub fn api_routes(state: AppState, limiter: RateLimiter) -> Router {
    let auth = Router::new()
        .route("/api/v1/auth/register", post(auth::register))
        .route("/api/v1/auth/login", post(auth::login))
        .route("/api/v1/auth/refresh", post(auth::refresh))
        .route("/api/v1/auth/logout", post(auth::logout))
        .route_layer(from_fn_with_state(limiter, limit));
    let users = Router::new()
        .route("/api/v1/users/{id}", patch(users::rename).delete(users::delete))
        .route("/api/v1/users/{id}/role", put(users::change_role))
        .route("/api/v1/users/{id}/password", put(users::change_password));
    let shop = Router::new()
        .route("/api/v1/products", post(products::create))
        .route(
            "/api/v1/products/{id}",
            patch(products::update).delete(products::retire),
        )
        .route("/api/v1/products/{id}/restock", post(products::restock))
        .route("/api/v1/users/{id}/orders", post(orders::place))
        .route("/api/v1/orders/{id}/cancel", post(orders::cancel));
    auth.merge(users).merge(shop).with_state(state)
}

/// The OpenAPI document of the command API.
#[derive(OpenApi)]
#[openapi(
    info(title = "command-api", description = "Writes: registration, sessions and user changes. Every write appends events."),
    paths(auth::register, auth::login, auth::refresh, auth::logout, users::rename, users::change_role,
          users::change_password, users::delete, products::create, products::update, products::restock,
          products::retire, orders::place, orders::cancel),
    components(schemas(dto::RegisterRequest, dto::LoginRequest, dto::RefreshRequest, dto::RenameRequest,
                       dto::RoleRequest, dto::PasswordRequest, dto::UserResponse, dto::TokenResponse,
                       shop_dto::CreateProductRequest, shop_dto::UpdateProductRequest, shop_dto::RestockRequest,
                       shop_dto::OrderItem, shop_dto::PlaceOrderRequest, shop_dto::ProductResponse,
                       shop_dto::OrderResponse, web::FieldError)),
    modifiers(&BearerAuth, &ErrorResponses),
)]
pub struct ApiDoc;
