//! `GET /api/v1/products`, `GET /api/v1/products/top` and `GET /api/v1/products/{id}`:
//! the public catalogue, readable without a token.

use super::versioned;
use crate::products::{self, ListProductsParams, TopProductsParams};
use crate::products::{ProductView, TopProduct};
use crate::state::AppState;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;
use web::{ApiError, ApiPath, ApiQuery, ApiResponse};

/// Anyone may store a product, but must revalidate it (with `If-None-Match`).
const PRODUCT_CACHE_CONTROL: &str = "public, no-cache";

/// The product routes (the static `/top` wins over `/{id}`).
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_products))
        .routes(routes!(top_products))
        .routes(routes!(get_product))
}

/// Lists the products on sale (retired ones are left out), in page mode (`page`,
/// `perPage`) or cursor mode (`cursor`, `limit`; a request with either is in cursor
/// mode).
#[utoipa::path(
    get,
    path = "/api/v1/products",
    tag = "products",
    params(ListProductsParams),
    responses(
        (status = 200, description = "A page of products", body = web::ListEnvelope<ProductView>),
        (status = 400, description = "A parameter is unknown, malformed or out of range", body = web::ErrorEnvelope),
    )
)]
pub async fn list_products(
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<ListProductsParams>,
) -> Result<ApiResponse, ApiError> {
    let request = params.validate().map_err(ApiError::validation)?;
    let listing = products::list_products(&state.pool, &request);
    state
        .page(
            "products",
            readmodels::products::TABLES,
            &request,
            &request.scope,
            listing,
        )
        .await
}

/// The best sellers by units in placed (not cancelled) orders, most first, ties by id.
/// Ranked in Redis; answered from PostgreSQL alone, identically, when Redis is not
/// available.
#[utoipa::path(
    get,
    path = "/api/v1/products/top",
    tag = "products",
    params(TopProductsParams),
    responses(
        (status = 200, description = "The best sellers", body = web::Envelope<Vec<TopProduct>>),
        (status = 400, description = "`limit` is malformed or out of range, or a parameter is unknown", body = web::ErrorEnvelope),
    )
)]
pub async fn top_products(
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<TopProductsParams>,
) -> Result<ApiResponse, ApiError> {
    let limit = params.validate().map_err(ApiError::validation)?;
    let top = state.best_sellers.top(limit).await.map_err(ApiError::internal)?;
    Ok(ApiResponse::ok(top))
}

/// One product, also when retired (so old orders can link to it).
#[utoipa::path(
    get,
    path = "/api/v1/products/{id}",
    tag = "products",
    params(
        ("id" = Uuid, Path, description = "Product id"),
        ("If-None-Match" = Option<String>, Header, description = "ETag of a copy the client holds"),
    ),
    responses(
        (status = 200, description = "The product", body = web::Envelope<ProductView>,
            headers(("ETag" = String, description = "Quoted stream version"))),
        (status = 304, description = "The client's copy is current"),
        (status = 400, description = "`id` is not a UUID", body = web::ErrorEnvelope),
        (status = 404, description = "Unknown product", body = web::ErrorEnvelope),
    )
)]
pub async fn get_product(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let product = state
        .products
        .find(id)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::not_found("product"))?;
    Ok(versioned(
        &headers,
        &product,
        product.etag(),
        PRODUCT_CACHE_CONTROL,
    ))
}
