//! `/api/v2`: `GET /api/v2/me` and `GET /api/v2/users/{id}` answer the user with a summary
//! of their orders, from the orders read model the projector keeps. The v1 routes they
//! replace keep their exact shape and say so in `Deprecation` and `Link` headers.

use super::versioned;
use crate::state::AppState;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use chrono::{DateTime, Utc};
use readmodels::users::UserView;
use serde::Serialize;
use sqlx::PgPool;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;
use web::{ApiError, ApiPath, AuthUser, Reader};

/// When the replaced v1 routes were deprecated (RFC 9745 `Deprecation`: `@<unix time>`).
const DEPRECATED_SINCE: &str = "@1796169600";
/// `Deprecation`.
const DEPRECATION: HeaderName = HeaderName::from_static("deprecation");

/// The v2 user routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(me)).routes(routes!(get_user))
}

/// A user with their orders.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserWithOrders {
    /// The user, as v1 shows them.
    #[serde(flatten)]
    pub user: UserView,
    /// Their orders.
    pub orders: OrderSummary,
}

/// A user's orders, cancelled ones left out.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderSummary {
    /// Orders placed and not cancelled.
    pub count: i64,
    /// What they add up to, per currency (integer minor units), by currency code.
    pub total_spent: Vec<Spent>,
    /// When the latest of them was placed.
    pub last_order_at: Option<DateTime<Utc>>,
}

/// An amount in one currency.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Spent {
    /// ISO 4217 code.
    pub currency: String,
    /// Integer minor units.
    pub amount_cents: i64,
}

/// The caller, with a summary of their orders.
#[utoipa::path(get, path = "/api/v2/me", tag = "users (v2)", security(("bearer" = [])),
    params(("If-None-Match" = Option<String>, Header, description = "ETag of a copy the client holds")),
    responses(
        (status = 200, description = "The caller and their orders", body = web::Envelope<UserWithOrders>,
            headers(("ETag" = String, description = "`\"<user version>.<orders version>\"`"))),
        (status = 304, description = "The client's copy is current"),
        (status = 401, description = "Missing or invalid token", body = web::ErrorEnvelope),
        (status = 404, description = "The caller's user is not (or no longer) there", body = web::ErrorEnvelope)))]
pub async fn me(
    State(state): State<AppState>,
    caller: AuthUser,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    user_with_orders(&state, caller.id, &headers).await
}

/// One user with a summary of their orders, for that user or an administrator.
#[utoipa::path(get, path = "/api/v2/users/{id}", tag = "users (v2)", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "User id"),
        ("If-None-Match" = Option<String>, Header, description = "ETag of a copy the client holds")),
    responses(
        (status = 200, description = "The user and their orders", body = web::Envelope<UserWithOrders>,
            headers(("ETag" = String, description = "`\"<user version>.<orders version>\"`"))),
        (status = 304, description = "The client's copy is current"),
        (status = 400, description = "`id` is not a UUID", body = web::ErrorEnvelope),
        (status = 401, description = "Missing or invalid token", body = web::ErrorEnvelope),
        (status = 403, description = "Neither that user nor a current administrator", body = web::ErrorEnvelope),
        (status = 404, description = "Unknown or deleted user", body = web::ErrorEnvelope)))]
pub async fn get_user(
    State(state): State<AppState>,
    caller: Reader,
    ApiPath(id): ApiPath<Uuid>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    caller.require_self_or_admin(id).await?;
    user_with_orders(&state, id, &headers).await
}

async fn user_with_orders(state: &AppState, id: Uuid, headers: &HeaderMap) -> Result<Response, ApiError> {
    let user = super::users::live_user(state, id).await?;
    let (orders, orders_version) = order_summary(&state.pool, id).await.map_err(ApiError::internal)?;
    let version = format!("{}.{orders_version}", user.version);
    let body = UserWithOrders { user, orders };
    Ok(versioned(
        headers,
        &body,
        version,
        super::users::SINGLE_USER_CACHE_CONTROL,
    ))
}

/// The summary and a version that grows with every change of the user's orders (the sum
/// of their stream versions: a new order adds one, a cancellation one more).
async fn order_summary(pool: &PgPool, user_id: Uuid) -> Result<(OrderSummary, i64), sqlx::Error> {
    let rows: Vec<CurrencyRow> = sqlx::query_as(
        "SELECT currency,
                count(*) FILTER (WHERE status = 'placed') AS placed,
                coalesce(sum(total_cents) FILTER (WHERE status = 'placed'), 0)::BIGINT AS spent,
                max(placed_at) FILTER (WHERE status = 'placed') AS last_placed_at,
                sum(version)::BIGINT AS versions
         FROM orders_view WHERE user_id = $1
         GROUP BY currency ORDER BY currency",
    )
    .bind(user_id)
    .fetch_all(pool)
    .await?;
    let summary = OrderSummary {
        count: rows.iter().map(|r| r.placed).sum(),
        total_spent: rows
            .iter()
            .filter(|r| r.placed > 0)
            .map(|r| Spent {
                currency: r.currency.clone(),
                amount_cents: r.spent,
            })
            .collect(),
        last_order_at: rows.iter().filter_map(|r| r.last_placed_at).max(),
    };
    Ok((summary, rows.iter().map(|r| r.versions).sum()))
}

/// A user's orders in one currency.
#[derive(sqlx::FromRow)]
struct CurrencyRow {
    currency: String,
    placed: i64,
    spent: i64,
    last_placed_at: Option<DateTime<Utc>>,
    versions: i64,
}

/// Middleware of the v1 routes that `/api/v2` replaces: every answer carries
/// `Deprecation` and a `Link` to the same path under `/api/v2`.
pub async fn deprecation(request: Request, next: Next) -> Response {
    let successor = request.uri().path().replacen("/api/v1/", "/api/v2/", 1);
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(DEPRECATION, HeaderValue::from_static(DEPRECATED_SINCE));
    if let Ok(link) = HeaderValue::from_str(&format!("<{successor}>; rel=\"successor-version\"")) {
        headers.insert(header::LINK, link);
    }
    response
}

/// Marks the replaced v1 operations deprecated in the OpenAPI document.
pub fn mark_deprecated(document: &mut utoipa::openapi::OpenApi) {
    for path in ["/api/v1/me", "/api/v1/users/{id}"] {
        if let Some(operation) = document
            .paths
            .paths
            .get_mut(path)
            .and_then(|item| item.get.as_mut())
        {
            operation.deprecated = Some(utoipa::openapi::Deprecated::True);
            let note = "Deprecated: `/api/v2` answers the user with their orders. This route keeps \
                its shape; its answers carry `Deprecation` and a `Link` to the successor.";
            operation.description = Some(match operation.description.take() {
                Some(description) => format!("{description}\n\n{note}"),
                None => note.to_owned(),
            });
        }
    }
}
