//! `/api/v1/products/{id}/reviews`: product reviews, the first aggregate written only
//! against the engine (no service of its own): a handler validates, asks the review
//! decider through `Engine::execute`, and answers.

use super::auth::metadata;
use super::users::if_match;
use crate::commands::{Positioned, answer as answer_of};
use crate::idempotency::{Fingerprint, Prepared};
use crate::shop;
use crate::state::AppState;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use domain::Decider;
use domain::product::{ProductAggregate, ProductState};
use domain::review::{
    Comment, Eligibility, Rating, Review, ReviewAggregate, ReviewCommand, ReviewError, ReviewState,
    claim_value,
};
use domain::user::ValueError;
use eventstore::{CommandFailure, Commit, EventEnvelope, Expect, StoreError};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use uuid::Uuid;
use web::{Actor, ApiError, ApiJson, ApiPath, ApiResponse, FieldError};

/// The claim that keeps one review per product and author.
pub const REVIEW_CLAIM: &str = "review.author";

/// `POST /api/v1/products/{id}/reviews`.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WriteReviewRequest {
    /// 1 to 5.
    #[schema(minimum = 1, maximum = 5)]
    pub rating: i64,
    /// At most 2000 characters; empty or `null` for none.
    #[schema(max_length = 2000)]
    pub comment: Option<String>,
}

/// `PATCH /api/v1/products/{id}/reviews/{reviewId}`: at least one field; `"comment": null`
/// removes the comment.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EditReviewRequest {
    /// 1 to 5.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 5)]
    pub rating: Option<i64>,
    /// At most 2000 characters; `null` or empty removes it.
    #[serde(default, deserialize_with = "present")]
    #[schema(max_length = 2000, value_type = Option<String>)]
    pub comment: Option<Option<String>>,
}

/// A field that may be given as `null`: absent is `None`, `null` is `Some(None)`.
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    deserializer: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(deserializer).map(Some)
}

/// A review as written.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReviewResponse {
    /// Review id.
    pub id: Uuid,
    /// The product.
    pub product_id: Uuid,
    /// The author.
    pub user_id: Uuid,
    /// 1 to 5.
    pub rating: u8,
    /// Free text, or `null`.
    pub comment: Option<String>,
    /// Stream version, also the `ETag`.
    pub version: i64,
    /// Global position of the last event written; `null` when nothing changed.
    pub position: Option<i64>,
}

impl Positioned for ReviewResponse {
    fn at(mut self, envelopes: &[EventEnvelope]) -> Self {
        self.position = envelopes.last().map(|e| e.position).or(self.position);
        self
    }
}

impl ReviewResponse {
    fn of(id: Uuid, review: &Review, version: i64) -> Self {
        Self {
            id,
            product_id: review.product_id,
            user_id: review.author_id,
            rating: review.rating.get(),
            comment: review.comment.as_ref().map(|c| c.as_str().to_owned()),
            version,
            position: None,
        }
    }
}

fn rating(field: &str, raw: i64, errors: &mut Vec<FieldError>) -> Option<Rating> {
    Rating::parse(raw)
        .map_err(|e| errors.push(FieldError::new(field, e.0)))
        .ok()
}

fn comment(raw: Option<&str>, errors: &mut Vec<FieldError>) -> Option<Option<Comment>> {
    match raw.map(Comment::parse) {
        None => Some(None),
        Some(Ok(comment)) => Some(comment),
        Some(Err(ValueError(message))) => {
            errors.push(FieldError::new("comment", message));
            None
        }
    }
}

fn refused(error: CommandFailure<ReviewError>) -> ApiError {
    match error {
        CommandFailure::Rejected(ReviewError::ProductNotFound) => ApiError::not_found("product"),
        CommandFailure::Rejected(ReviewError::NotFound) => ApiError::not_found("review"),
        CommandFailure::Rejected(ReviewError::NotPurchased) => ApiError::unprocessable(
            "REVIEW_NOT_ALLOWED",
            "only a user with a placed, not cancelled order of this product may review it",
        ),
        CommandFailure::Rejected(ReviewError::AlreadyExists)
        | CommandFailure::Store(StoreError::AlreadyClaimed { .. }) => {
            ApiError::conflict("you have already reviewed this product")
        }
        CommandFailure::Rejected(ReviewError::Forbidden) => ApiError::forbidden(),
        CommandFailure::Stale { current } => ApiError::precondition_failed(current),
        CommandFailure::Contention => ApiError::version_conflict(),
        CommandFailure::Store(StoreError::IdempotencyKeyTaken) => {
            ApiError::conflict("a concurrent request with this Idempotency-Key was answered first")
        }
        CommandFailure::Store(error) => ApiError::internal(error),
    }
}

/// Review a product you bought: one review per product and user.
#[utoipa::path(post, path = "/api/v1/products/{id}/reviews", tag = "reviews", request_body = WriteReviewRequest,
    params(("id" = Uuid, Path), ("Idempotency-Key" = Option<String>, Header, description = "Replays the first answer for the same request", pattern = "^[!-~]{1,255}$")),
    security(("bearer" = [])),
    responses((status = 201, description = "Written; `review.written` appended", body = web::Envelope<ReviewResponse>),
        (status = 400, description = "VALIDATION_ERROR"), (status = 401, description = "UNAUTHORIZED"),
        (status = 404, description = "NOT_FOUND: product"), (status = 409, description = "CONFLICT: already reviewed"),
        (status = 422, description = "REVIEW_NOT_ALLOWED (no placed order of the product), IDEMPOTENCY_KEY_REUSED")))]
pub async fn write(
    State(state): State<AppState>,
    caller: Actor,
    ApiPath(product_id): ApiPath<Uuid>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<WriteReviewRequest>,
) -> Result<ApiResponse, ApiError> {
    let mut errors = Vec::new();
    let stars = rating("rating", body.rating, &mut errors);
    let text = comment(body.comment.as_deref(), &mut errors);
    let (Some(stars), Some(text)) = (stars, text) else {
        return Err(ApiError::validation(errors));
    };
    let route = format!("POST /api/v1/products/{product_id}/reviews");
    let fingerprint = Fingerprint::of(&headers, &caller.id.to_string(), &route, &json!(body))?;
    let pending = match fingerprint
        .prepare(&state.pool, StatusCode::CREATED, |r: &ReviewResponse| json!(r))
        .await?
    {
        Prepared::Replay(answer) => return Ok(answer),
        Prepared::Proceed(pending) => pending,
    };
    let eligibility = Eligibility {
        product_exists: product_exists(&state, product_id).await?,
        purchased: shop::has_bought(&state.pool, caller.id, product_id)
            .await
            .map_err(ApiError::internal)?,
    };
    let id = Uuid::now_v7();
    let command = ReviewCommand::Write {
        product_id,
        author_id: caller.id,
        rating: stars,
        comment: text,
        eligibility,
    };
    let written = state
        .engine
        .execute::<ReviewAggregate, _, ReviewError>(id, Expect::Any, |loaded| {
            let events = ReviewAggregate::decide(&command, &loaded.state)?;
            let (change, after) = eventstore::change::<ReviewAggregate>(id, loaded, &events);
            let ReviewState::Live(review) = after else {
                return Err(ReviewError::NotFound);
            };
            let answer = ReviewResponse::of(id, &review, eventstore::version_after(loaded, &events));
            let commit = Commit::new(metadata(Some(caller.id)))
                .claim(REVIEW_CLAIM, claim_value(product_id, caller.id), id)
                .change(change)
                .idempotent(answer_of(pending.as_ref(), &answer));
            Ok((commit, answer))
        })
        .await;
    match written {
        Ok((answer, envelopes)) => {
            let answer = answer.at(&envelopes);
            let location = format!("/api/v1/products/{product_id}/reviews/{id}");
            let version = answer.version;
            Ok(ApiResponse::created(answer)
                .etag(version)
                .header(header::LOCATION, &location))
        }
        // A concurrent request with the same key may have won: answer as it did.
        Err(error) => match fingerprint.replay(&state.pool).await? {
            Some(answer) => Ok(answer),
            None => Err(refused(error)),
        },
    }
}

async fn product_exists(state: &AppState, product_id: Uuid) -> Result<bool, ApiError> {
    let cached = state
        .engine
        .load::<ProductAggregate>(product_id)
        .await
        .map_err(ApiError::internal)?;
    if matches!(cached.state, ProductState::Existing(_)) {
        return Ok(true);
    }
    // Products are never deleted, so only "not found" needs the store's word.
    let fresh = state
        .engine
        .load_fresh::<ProductAggregate>(product_id)
        .await
        .map_err(ApiError::internal)?;
    Ok(matches!(fresh.state, ProductState::Existing(_)))
}

/// A review of this product, or 404 as if it did not exist.
fn of_product(state: &ReviewState, product_id: Uuid) -> Result<(), ReviewError> {
    match state {
        ReviewState::Live(review) if review.product_id == product_id => Ok(()),
        _ => Err(ReviewError::NotFound),
    }
}

/// Change your review's rating or comment.
#[utoipa::path(patch, path = "/api/v1/products/{id}/reviews/{reviewId}", tag = "reviews", request_body = EditReviewRequest,
    params(("id" = Uuid, Path), ("reviewId" = Uuid, Path),
        ("If-Match" = Option<String>, Header, description = "Expected version: an `ETag` of this API (`\"3\"`), or `*`", pattern = r#"^(\*|(W/)?"?[0-9]{1,18}"?)$"#)),
    security(("bearer" = [])),
    responses((status = 200, description = "Edited; `review.edited` appended when something changed", body = web::Envelope<ReviewResponse>),
        (status = 400, description = "VALIDATION_ERROR"), (status = 401, description = "UNAUTHORIZED"),
        (status = 403, description = "FORBIDDEN: not the author"), (status = 404, description = "NOT_FOUND"),
        (status = 412, description = "PRECONDITION_FAILED")))]
pub async fn edit(
    State(state): State<AppState>,
    caller: Actor,
    ApiPath((product_id, review_id)): ApiPath<(Uuid, Uuid)>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<EditReviewRequest>,
) -> Result<ApiResponse, ApiError> {
    if body.rating.is_none() && body.comment.is_none() {
        return Err(ApiError::invalid_field(
            "body",
            "give at least one of rating, comment",
        ));
    }
    let mut errors = Vec::new();
    let stars = body.rating.map(|r| rating("rating", r, &mut errors));
    let text = body.comment.as_ref().map(|c| comment(c.as_deref(), &mut errors));
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let command = ReviewCommand::Edit {
        editor_id: caller.id,
        rating: stars.flatten(),
        comment: text.flatten(),
    };
    let expected = if_match(&headers)?;
    let edited = state
        .engine
        .execute::<ReviewAggregate, _, ReviewError>(review_id, Expect::from(expected), |loaded| {
            of_product(&loaded.state, product_id)?;
            let events = ReviewAggregate::decide(&command, &loaded.state)?;
            let (change, after) = eventstore::change::<ReviewAggregate>(review_id, loaded, &events);
            let ReviewState::Live(review) = after else {
                return Err(ReviewError::NotFound);
            };
            let answer = ReviewResponse::of(review_id, &review, eventstore::version_after(loaded, &events));
            Ok((Commit::new(metadata(Some(caller.id))).change(change), answer))
        })
        .await
        .map_err(refused)?;
    let (answer, envelopes) = edited;
    let answer = answer.at(&envelopes);
    let version = answer.version;
    Ok(ApiResponse::ok(answer).etag(version))
}

/// Delete a review (its author or an administrator).
#[utoipa::path(delete, path = "/api/v1/products/{id}/reviews/{reviewId}", tag = "reviews",
    params(("id" = Uuid, Path), ("reviewId" = Uuid, Path),
        ("If-Match" = Option<String>, Header, description = "Expected version: an `ETag` of this API (`\"3\"`), or `*`", pattern = r#"^(\*|(W/)?"?[0-9]{1,18}"?)$"#)),
    security(("bearer" = [])),
    responses((status = 204, description = "Deleted; `review.deleted` appended"),
        (status = 401, description = "UNAUTHORIZED"), (status = 403, description = "FORBIDDEN: neither author nor admin"),
        (status = 404, description = "NOT_FOUND"), (status = 412, description = "PRECONDITION_FAILED")))]
pub async fn delete(
    State(state): State<AppState>,
    caller: Actor,
    ApiPath((product_id, review_id)): ApiPath<(Uuid, Uuid)>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let command = ReviewCommand::Delete {
        by: caller.id,
        admin: caller.is_admin(),
    };
    let expected = if_match(&headers)?;
    state
        .engine
        .execute::<ReviewAggregate, _, ReviewError>(review_id, Expect::from(expected), |loaded| {
            of_product(&loaded.state, product_id)?;
            let events = ReviewAggregate::decide(&command, &loaded.state)?;
            let (change, _) = eventstore::change::<ReviewAggregate>(review_id, loaded, &events);
            // The author may review the product again once this one is gone.
            let commit = Commit::new(metadata(Some(caller.id)))
                .change(change)
                .release(REVIEW_CLAIM, review_id);
            Ok((commit, ()))
        })
        .await
        .map_err(refused)?;
    Ok(StatusCode::NO_CONTENT)
}
