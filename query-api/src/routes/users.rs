//! `GET /api/v1/me`, `GET /api/v1/users/{id}` and `GET /api/v1/users`.

use super::versioned;
use crate::listing::{self, ListUsersParams};
use crate::state::AppState;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use readmodels::users::UserView;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;
use web::{ApiError, ApiPath, ApiQuery, ApiResponse, AuthUser, Reader};

/// Single users may be stored by the client but must be revalidated (with `If-None-Match`).
pub(super) const SINGLE_USER_CACHE_CONTROL: &str = "private, no-cache";

/// The user routes.
pub fn routes() -> OpenApiRouter<AppState> {
    // The two that `/api/v2` replaces say so on every answer, errors and 304s included.
    let replaced = OpenApiRouter::new()
        .routes(routes!(me))
        .routes(routes!(get_user))
        .route_layer(axum::middleware::from_fn(super::users_v2::deprecation));
    OpenApiRouter::new().routes(routes!(list_users)).merge(replaced)
}

/// The caller's own user.
#[utoipa::path(
    get,
    path = "/api/v1/me",
    tag = "users",
    security(("bearer" = [])),
    params(("If-None-Match" = Option<String>, Header, description = "ETag of a copy the client holds")),
    responses(
        (status = 200, description = "The caller", body = web::Envelope<UserView>,
            headers(("ETag" = String, description = "Quoted stream version"))),
        (status = 304, description = "The client's copy is current"),
        (status = 401, description = "Missing or invalid token", body = web::ErrorEnvelope),
        (status = 404, description = "The caller's user is not (or no longer) there", body = web::ErrorEnvelope),
    )
)]
pub async fn me(
    State(state): State<AppState>,
    caller: AuthUser,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    single_user(&state, caller.id, &headers).await
}

/// One user, for that user or an administrator.
#[utoipa::path(
    get,
    path = "/api/v1/users/{id}",
    tag = "users",
    security(("bearer" = [])),
    params(
        ("id" = Uuid, Path, description = "User id"),
        ("If-None-Match" = Option<String>, Header, description = "ETag of a copy the client holds"),
    ),
    responses(
        (status = 200, description = "The user", body = web::Envelope<UserView>,
            headers(("ETag" = String, description = "Quoted stream version"))),
        (status = 304, description = "The client's copy is current"),
        (status = 400, description = "`id` is not a UUID", body = web::ErrorEnvelope),
        (status = 401, description = "Missing or invalid token", body = web::ErrorEnvelope),
        (status = 403, description = "Neither that user nor a current administrator", body = web::ErrorEnvelope),
        (status = 404, description = "Unknown or deleted user", body = web::ErrorEnvelope),
    )
)]
pub async fn get_user(
    State(state): State<AppState>,
    caller: Reader,
    ApiPath(id): ApiPath<Uuid>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    caller.require_self_or_admin(id).await?;
    single_user(&state, id, &headers).await
}

/// Lists live users (administrators only), in page mode (`page`, `perPage`) or cursor
/// mode (`cursor`, `limit`; a request with either is in cursor mode).
#[utoipa::path(
    get,
    path = "/api/v1/users",
    tag = "users",
    security(("bearer" = [])),
    params(ListUsersParams),
    responses(
        (status = 200, description = "A page of users", body = web::ListEnvelope<UserView>),
        (status = 400, description = "A parameter is unknown, malformed or out of range", body = web::ErrorEnvelope),
        (status = 401, description = "Missing or invalid token, or the caller's account is gone", body = web::ErrorEnvelope),
        (status = 403, description = "Not a current administrator", body = web::ErrorEnvelope),
    )
)]
pub async fn list_users(
    State(state): State<AppState>,
    caller: Reader,
    ApiQuery(params): ApiQuery<ListUsersParams>,
) -> Result<ApiResponse, ApiError> {
    let request = params.validate().map_err(ApiError::validation)?;
    caller.require_admin().await?;
    let listing = listing::list_users(&state.pool, &request);
    state
        .page(
            "users",
            readmodels::users::TABLES,
            &request,
            &request.scope,
            listing,
        )
        .await
}

/// A live user with its `ETag`, or 304 when the client's `If-None-Match` names it.
async fn single_user(state: &AppState, id: Uuid, headers: &HeaderMap) -> Result<Response, ApiError> {
    let user = live_user(state, id).await?;
    Ok(versioned(headers, &user, user.version, SINGLE_USER_CACHE_CONTROL))
}

/// A live user through the cache; 404 when unknown or deleted.
pub(super) async fn live_user(state: &AppState, id: Uuid) -> Result<UserView, ApiError> {
    state
        .users
        .find(id)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::not_found("user"))
}
