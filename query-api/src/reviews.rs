//! `GET /api/v1/products/{id}/reviews`: a product's live reviews from the `reviews_view`
//! read model (kept by the projector), in page or cursor mode, by `createdAt` (default,
//! newest first) or `rating`. Public, like the catalogue. The list, its parameters, its
//! SQL and its handler live here together: the pagination machinery is shared.

use crate::cursor::CursorScope;
use crate::pagination::sql::{fetch_window, push_after, push_order_by};
use crate::pagination::{Listing, Paging, Position, SortKey, SortOrder, Window};
use crate::state::AppState;
use axum::extract::State;
use readmodels::reviews::REVIEW_COLUMNS;
pub use readmodels::reviews::ReviewView;
use serde::{Deserialize, Serialize};
use sqlx::{PgPool, Postgres, QueryBuilder};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;
use web::{ApiError, ApiPath, ApiQuery, ApiResponse, FieldError};

/// Sort fields of the review list.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum ReviewSort {
    /// When it was written (the default).
    #[default]
    CreatedAt,
    /// Its rating.
    Rating,
}

impl ReviewSort {
    fn column(self) -> &'static str {
        match self {
            ReviewSort::CreatedAt => "created_at",
            ReviewSort::Rating => "rating",
        }
    }
}

/// Which product's reviews, in which order: everything a cursor is bound to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReviewScope {
    /// The product.
    pub product_id: Uuid,
    /// Sort field; ties are broken by id in the same direction.
    pub sort: ReviewSort,
    /// Sort direction.
    pub order: SortOrder,
}

impl CursorScope for ReviewScope {
    const LIST: &'static str = "reviews";

    fn fits(&self, key: &SortKey) -> bool {
        matches!(
            (key, self.sort),
            (SortKey::Time(_), ReviewSort::CreatedAt) | (SortKey::Int(_), ReviewSort::Rating)
        )
    }
}

/// Query parameters of a product's reviews. Cursor mode when `cursor` or `limit` is
/// present, page mode otherwise; the two cannot be mixed.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct ListReviewsParams {
    /// Page mode: page number, from 1 (default 1).
    #[param(minimum = 1)]
    pub page: Option<u32>,
    /// Page mode: reviews per page, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub per_page: Option<u32>,
    /// Cursor mode: `nextCursor` of the previous page; only valid for the same product,
    /// `sort` and `order`.
    pub cursor: Option<String>,
    /// Cursor mode: reviews per page, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// Sort field: `createdAt` (default) or `rating`; ties are ordered by id.
    #[param(inline)]
    pub sort: Option<ReviewSort>,
    /// Sort direction (default `desc`: newest or best first).
    #[param(inline)]
    pub order: Option<SortOrder>,
}

/// A validated review list request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewListRequest {
    /// Product and order.
    pub scope: ReviewScope,
    /// Which slice.
    pub window: Window,
}

impl ListReviewsParams {
    /// The request for `product_id`'s reviews; on refusal, every parameter at fault.
    pub fn validate(self, product_id: Uuid) -> Result<ReviewListRequest, Vec<FieldError>> {
        let mut errors = Vec::new();
        let scope = ReviewScope {
            product_id,
            sort: self.sort.unwrap_or_default(),
            order: self.order.unwrap_or(SortOrder::Desc),
        };
        let paging = Paging {
            page: self.page,
            per_page: self.per_page,
            cursor: self.cursor.as_deref(),
            limit: self.limit,
        };
        match paging.window(&scope, &mut errors) {
            Some(window) if errors.is_empty() => Ok(ReviewListRequest { scope, window }),
            _ => Err(errors),
        }
    }
}

fn push_filters(query: &mut QueryBuilder<'_, Postgres>, scope: &ReviewScope) {
    query
        .push(" FROM reviews_view WHERE NOT deleted AND product_id = ")
        .push_bind(scope.product_id);
}

/// One page of a product's live reviews: one query in cursor mode, two in page mode.
pub async fn list_reviews(
    pool: &PgPool,
    request: &ReviewListRequest,
) -> Result<Listing<ReviewView>, sqlx::Error> {
    let scope = &request.scope;
    let column = scope.sort.column();
    let mut select = QueryBuilder::<Postgres>::new(format!("SELECT {REVIEW_COLUMNS}"));
    push_filters(&mut select, scope);
    if let Some(after) = request.window.after() {
        push_after(&mut select, column, scope.order, after);
    }
    push_order_by(&mut select, column, scope.order);
    let mut count = QueryBuilder::<Postgres>::new("SELECT count(*)");
    push_filters(&mut count, scope);
    let mut conn = pool.acquire().await?;
    let sort = scope.sort;
    fetch_window(
        &mut conn,
        select,
        count,
        &request.window,
        move |row: &ReviewView| Position {
            key: match sort {
                ReviewSort::CreatedAt => SortKey::Time(row.created_at),
                ReviewSort::Rating => SortKey::Int(i64::from(row.rating)),
            },
            id: row.id,
        },
    )
    .await
}

/// The review routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_product_reviews))
}

/// A product's reviews, newest first by default; page mode (`page`, `perPage`) or cursor
/// mode (`cursor`, `limit`). An unknown product has no reviews.
#[utoipa::path(
    get,
    path = "/api/v1/products/{id}/reviews",
    tag = "reviews",
    params(("id" = Uuid, Path, description = "Product id"), ListReviewsParams),
    responses(
        (status = 200, description = "A page of reviews", body = web::ListEnvelope<ReviewView>),
        (status = 400, description = "`id` is not a UUID, or a parameter is unknown, malformed or out of range", body = web::ErrorEnvelope),
    )
)]
pub async fn list_product_reviews(
    State(state): State<AppState>,
    ApiPath(product_id): ApiPath<Uuid>,
    ApiQuery(params): ApiQuery<ListReviewsParams>,
) -> Result<ApiResponse, ApiError> {
    let request = params.validate(product_id).map_err(ApiError::validation)?;
    let listing = list_reviews(&state.pool, &request);
    state
        .page(
            "reviews",
            readmodels::reviews::TABLES,
            &request,
            &request.scope,
            listing,
        )
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cursor;

    #[test]
    fn reviews_are_newest_first_and_cursors_stay_with_their_product_and_sort() {
        let product = Uuid::now_v7();
        let request = ListReviewsParams::default().validate(product).expect("valid");
        assert_eq!(request.scope.sort, ReviewSort::CreatedAt);
        assert_eq!(request.scope.order, SortOrder::Desc);
        let by_rating = ListReviewsParams {
            sort: Some(ReviewSort::Rating),
            ..Default::default()
        }
        .validate(product)
        .expect("valid")
        .scope;
        let after = Position {
            key: SortKey::Int(4),
            id: Uuid::now_v7(),
        };
        let params = |sort| ListReviewsParams {
            cursor: Some(cursor::encode(&by_rating, &after)),
            sort,
            ..Default::default()
        };
        assert!(params(Some(ReviewSort::Rating)).validate(product).is_ok());
        assert_eq!(
            params(None).validate(product).expect_err("other sort")[0].field,
            "cursor"
        );
        assert_eq!(
            params(Some(ReviewSort::Rating))
                .validate(Uuid::now_v7())
                .expect_err("other product")[0]
                .field,
            "cursor"
        );
    }
}
