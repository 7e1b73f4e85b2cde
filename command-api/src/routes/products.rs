//! `/api/v1/products`: the catalogue, administrators only.

use super::auth::metadata;
use super::dto::Fields;
use super::shop_dto::{CreateProductRequest, ProductResponse, RestockRequest, UpdateProductRequest};
use super::users::if_match;
use crate::idempotency::{Fingerprint, Prepared};
use crate::shop::{ProductOutcome, ShopError};
use crate::state::AppState;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use domain::money::{Cents, Currency};
use domain::product::{self, Description, ProductCommand, ProductName, Sku};
use domain::user::ValueError;
use serde_json::json;
use uuid::Uuid;
use web::{Actor, ApiError, ApiJson, ApiPath, ApiResponse};

/// The domain's stock range, checked first to name the field at fault.
fn stock_value(stock: i64) -> Result<i64, ValueError> {
    if product::stock_in_range(stock) {
        Ok(stock)
    } else {
        Err(ValueError("must be from 0 to 1000000000"))
    }
}

fn answer(outcome: &ProductOutcome, status: StatusCode) -> ApiResponse {
    ApiResponse::with_status(status, ProductResponse::from(outcome)).etag(outcome.version)
}

async fn replay_after_race(
    fingerprint: &Fingerprint,
    state: &AppState,
    error: ShopError,
) -> Result<ApiResponse, ApiError> {
    match fingerprint.replay(&state.pool).await? {
        Some(answer) => Ok(answer),
        None => Err(error.into()),
    }
}

/// Add a product (admins only).
#[utoipa::path(post, path = "/api/v1/products", tag = "products", request_body = CreateProductRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Replays the first answer for the same request", pattern = "^[!-~]{1,255}$")),
    security(("bearer" = [])),
    responses((status = 201, description = "Created; `product.created` appended", body = web::Envelope<ProductResponse>),
        (status = 400, description = "VALIDATION_ERROR"), (status = 401, description = "UNAUTHORIZED"),
        (status = 403, description = "FORBIDDEN"), (status = 409, description = "CONFLICT: SKU taken"),
        (status = 422, description = "IDEMPOTENCY_KEY_REUSED")))]
pub async fn create(
    State(state): State<AppState>,
    caller: Actor,
    headers: HeaderMap,
    ApiJson(body): ApiJson<CreateProductRequest>,
) -> Result<ApiResponse, ApiError> {
    let mut fields = Fields::default();
    let sku = fields.parse("sku", Sku::parse(&body.sku));
    let name = fields.parse("name", ProductName::parse(&body.name));
    let description = fields.parse("description", Description::parse(&body.description));
    let price_cents = fields.parse("priceCents", Cents::new(body.price_cents));
    let currency = fields.parse("currency", Currency::parse(&body.currency));
    let stock = fields.parse("stock", stock_value(body.stock));
    let command = fields.finish((|| {
        Some(ProductCommand::Create {
            sku: sku?,
            name: name?,
            description: description?,
            price_cents: price_cents?,
            currency: currency?,
            stock: stock?,
        })
    })())?;
    caller.require_admin()?;
    let fingerprint = Fingerprint::of(
        &headers,
        &caller.id.to_string(),
        "POST /api/v1/products",
        &json!(body),
    )?;
    let pending = match fingerprint
        .prepare(&state.pool, StatusCode::CREATED, |o: &ProductOutcome| {
            json!(ProductResponse::from(o))
        })
        .await?
    {
        Prepared::Replay(answer) => return Ok(answer),
        Prepared::Proceed(pending) => pending,
    };
    match state
        .shop
        .create_product(command, &metadata(Some(caller.id)), pending)
        .await
    {
        Ok(outcome) => {
            let location = format!("/api/v1/products/{}", outcome.id);
            Ok(answer(&outcome, StatusCode::CREATED).header(header::LOCATION, &location))
        }
        Err(error) => replay_after_race(&fingerprint, &state, error).await,
    }
}

/// Change name, description or price (admins only).
#[utoipa::path(patch, path = "/api/v1/products/{id}", tag = "products", request_body = UpdateProductRequest,
    params(("id" = Uuid, Path), ("If-Match" = Option<String>, Header, description = "Expected version: an `ETag` of this API (`\"3\"`), or `*`", pattern = r#"^(\*|(W/)?"?[0-9]{1,18}(\.[0-9]{1,18})?"?)$"#)),
    security(("bearer" = [])),
    responses((status = 200, description = "Updated; `product.updated` appended when something changed", body = web::Envelope<ProductResponse>),
        (status = 400, description = "VALIDATION_ERROR"), (status = 403, description = "FORBIDDEN"),
        (status = 404, description = "NOT_FOUND"), (status = 412, description = "PRECONDITION_FAILED"),
        (status = 422, description = "PRODUCT_RETIRED")))]
pub async fn update(
    State(state): State<AppState>,
    caller: Actor,
    ApiPath(id): ApiPath<Uuid>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<UpdateProductRequest>,
) -> Result<ApiResponse, ApiError> {
    let mut fields = Fields::default();
    let name = body
        .name
        .as_deref()
        .map(|n| fields.parse("name", ProductName::parse(n)));
    let description = body
        .description
        .as_deref()
        .map(|d| fields.parse("description", Description::parse(d)));
    let price_cents = body
        .price_cents
        .map(|p| fields.parse("priceCents", Cents::new(p)));
    if name.is_none() && description.is_none() && price_cents.is_none() {
        return Err(ApiError::invalid_field(
            "body",
            "give at least one of name, description, priceCents",
        ));
    }
    let command = fields.finish(Some(ProductCommand::Update {
        name: name.flatten(),
        description: description.flatten(),
        price_cents: price_cents.flatten(),
    }))?;
    let expected = if_match(&headers)?;
    caller.require_admin()?;
    let outcome = state
        .shop
        .change_product(id, command, expected, &metadata(Some(caller.id)), None)
        .await?;
    Ok(answer(&outcome, StatusCode::OK))
}

/// Add stock (admins only).
#[utoipa::path(post, path = "/api/v1/products/{id}/restock", tag = "products", request_body = RestockRequest,
    params(("id" = Uuid, Path), ("Idempotency-Key" = Option<String>, Header, description = "Replays the first answer for the same request", pattern = "^[!-~]{1,255}$")),
    security(("bearer" = [])),
    responses((status = 200, description = "Restocked; `product.restocked` appended", body = web::Envelope<ProductResponse>),
        (status = 400, description = "VALIDATION_ERROR"), (status = 403, description = "FORBIDDEN"),
        (status = 404, description = "NOT_FOUND"), (status = 422, description = "PRODUCT_RETIRED or INVALID_QUANTITY")))]
pub async fn restock(
    State(state): State<AppState>,
    caller: Actor,
    ApiPath(id): ApiPath<Uuid>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<RestockRequest>,
) -> Result<ApiResponse, ApiError> {
    if !product::restock_in_range(body.quantity) {
        return Err(ApiError::invalid_field(
            "quantity",
            "must be from 1 to 1000000000",
        ));
    }
    caller.require_admin()?;
    let route = format!("POST /api/v1/products/{id}/restock");
    let fingerprint = Fingerprint::of(&headers, &caller.id.to_string(), &route, &json!(body))?;
    let pending = match fingerprint
        .prepare(&state.pool, StatusCode::OK, |o: &ProductOutcome| {
            json!(ProductResponse::from(o))
        })
        .await?
    {
        Prepared::Replay(answer) => return Ok(answer),
        Prepared::Proceed(pending) => pending,
    };
    let command = ProductCommand::Restock {
        quantity: body.quantity,
    };
    match state
        .shop
        .change_product(id, command, None, &metadata(Some(caller.id)), pending)
        .await
    {
        Ok(outcome) => Ok(answer(&outcome, StatusCode::OK)),
        Err(error) => replay_after_race(&fingerprint, &state, error).await,
    }
}

/// Retire a product (admins only): no longer orderable, still shown in old orders.
#[utoipa::path(delete, path = "/api/v1/products/{id}", tag = "products",
    params(("id" = Uuid, Path), ("If-Match" = Option<String>, Header, description = "Expected version: an `ETag` of this API (`\"3\"`), or `*`", pattern = r#"^(\*|(W/)?"?[0-9]{1,18}(\.[0-9]{1,18})?"?)$"#)),
    security(("bearer" = [])),
    responses((status = 204, description = "Retired; `product.retired` appended"),
        (status = 403, description = "FORBIDDEN"), (status = 404, description = "NOT_FOUND"),
        (status = 412, description = "PRECONDITION_FAILED"), (status = 422, description = "PRODUCT_RETIRED: already retired")))]
pub async fn retire(
    State(state): State<AppState>,
    caller: Actor,
    ApiPath(id): ApiPath<Uuid>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let expected = if_match(&headers)?;
    caller.require_admin()?;
    state
        .shop
        .change_product(
            id,
            ProductCommand::Retire,
            expected,
            &metadata(Some(caller.id)),
            None,
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
