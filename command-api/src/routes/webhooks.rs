//! `/api/v1/webhooks`: endpoints that admins register for subscribers without NATS, their
//! deliveries (status codes, timings, every attempt), retries and replays. The workers
//! make the deliveries (`workers/src/webhook.rs`); this is where admins manage them.

use super::users::if_match;
use crate::idempotency::Fingerprint;
use crate::state::AppState;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use eventstore::StoreError;
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;
use web::{Admin, ApiError, ApiJson, ApiPath, ApiQuery, ApiResponse, FieldError, PagePage};
use webhooks::input;
use webhooks::{
    Delivery, DeliveryDetail, DeliveryStatus, Guarded, NewWebhook, Remember, Webhook, WebhookPatch,
    WebhookWithSecret,
};

/// An endpoint to register.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CreateWebhookRequest {
    /// Where deliveries are POSTed: an absolute `http` or `https` URL without user name,
    /// password or fragment, at most 2048 characters, whose host is not `localhost` nor
    /// a loopback, private or link-local address (unless `WEBHOOK_ALLOW_PRIVATE_NETWORKS`).
    #[schema(example = "https://subscriber.example.com/hooks/orders")]
    pub url: String,
    /// Event types to deliver (from the catalogue at `/asyncapi.json`, e.g.
    /// `order.placed`), or `["*"]` for every type; 1 to 64.
    #[schema(example = json!(["order.placed", "order.cancelled"]))]
    pub event_types: Vec<String>,
    /// What it is for, at most 500 characters.
    pub description: Option<String>,
}

/// Changes to an endpoint: only what is given changes.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct UpdateWebhookRequest {
    /// A new URL.
    pub url: Option<String>,
    /// New event types (they replace the old ones).
    pub event_types: Option<Vec<String>>,
    /// A new description; `null` removes it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, nullable)]
    pub description: Option<Option<String>>,
    /// `false` stops deliveries; `true` resumes them (also for an endpoint the workers
    /// disabled), clearing the reason: its waiting deliveries go out.
    pub enabled: Option<bool>,
}

/// A field that is there, `null` or not: `Some(None)` for `null`, `None` when absent
/// (with `#[serde(default)]`).
fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(deserializer).map(Some)
}

/// Which stored events to send again.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ReplayRequest {
    /// The first position to send (event positions start at 1).
    #[schema(minimum = 1, example = 1)]
    pub from_position: i64,
    /// The last position to send (inclusive); default: the last event now.
    #[schema(minimum = 1)]
    pub to_position: Option<i64>,
}

/// A replay under way.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReplayAccepted {
    /// The endpoint.
    pub webhook_id: Uuid,
    /// The first position queued.
    pub from_position: i64,
    /// The last position queued: the one asked for, or the last event when it started.
    pub to_position: i64,
}

/// Paging of the endpoints.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Page number, from 1 (default 1).
    page: Option<u32>,
    /// Items per page, 1 to 100 (default 20).
    per_page: Option<u32>,
}

/// Paging and filters of the deliveries.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct DeliveriesQuery {
    /// Page number, from 1 (default 1).
    page: Option<u32>,
    /// Items per page, 1 to 100 (default 20).
    per_page: Option<u32>,
    /// Only deliveries with this status.
    status: Option<DeliveryStatus>,
    /// Only deliveries of this event type.
    event_type: Option<String>,
}

fn field<T>(name: &str, checked: Result<T, String>, errors: &mut Vec<FieldError>) -> Option<T> {
    checked
        .map_err(|message| errors.push(FieldError::new(name, message)))
        .ok()
}

/// The host of an endpoint's URL, all of it that goes into logs: subscribers often put
/// a token of their own in the path or query.
fn host_of(url: &str) -> String {
    url::Url::parse(url)
        .ok()
        .and_then(|url| url.host_str().map(str::to_owned))
        .unwrap_or_default()
}

fn found(webhook: Webhook) -> ApiResponse {
    let version = webhook.version;
    ApiResponse::ok(webhook).etag(version)
}

fn guarded<T>(outcome: Guarded<T>) -> Result<T, ApiError> {
    match outcome {
        Guarded::Done(value) => Ok(value),
        Guarded::NotFound => Err(ApiError::not_found("webhook")),
        Guarded::Stale(current) => Err(ApiError::precondition_failed(current)),
    }
}

/// Register an endpoint (admins only). A signing secret is made for it and shown in this
/// answer only. It receives the events of its types appended from now on; earlier ones
/// by a replay.
#[utoipa::path(post, path = "/api/v1/webhooks", tag = "webhooks", request_body = CreateWebhookRequest,
    security(("bearer" = [])),
    responses((status = 201, description = "Registered; `data.secret` signs its deliveries and is not shown again", body = web::Envelope<WebhookWithSecret>),
        (status = 400, description = "VALIDATION_ERROR"), (status = 401, description = "UNAUTHORIZED"),
        (status = 403, description = "FORBIDDEN: not an admin"),
        (status = 422, description = "IDEMPOTENCY_KEY_REUSED")),
    params(("Idempotency-Key" = Option<String>, Header, description = "Replays the first answer (the same endpoint and secret) for the same request", pattern = "^[!-~]{1,255}$")))]
pub async fn create(
    State(state): State<AppState>,
    Admin(caller): Admin,
    headers: HeaderMap,
    ApiJson(body): ApiJson<CreateWebhookRequest>,
) -> Result<ApiResponse, ApiError> {
    let mut errors = Vec::new();
    let url = field("url", input::url(&body.url, state.webhook_networks), &mut errors);
    let event_types = field("eventTypes", input::event_types(&body.event_types), &mut errors);
    let description = field(
        "description",
        input::description(body.description.as_deref()),
        &mut errors,
    );
    let (Some(url), Some(event_types), Some(description)) = (url, event_types, description) else {
        return Err(ApiError::validation(errors));
    };
    let new = NewWebhook {
        url,
        event_types,
        description,
    };
    let fingerprint = Fingerprint::of(
        &headers,
        &caller.id.to_string(),
        "POST /api/v1/webhooks",
        &serde_json::json!({"url": new.url, "eventTypes": new.event_types, "description": new.description}),
    )?;
    if let Some(answer) = fingerprint.replay(&state.pool).await? {
        return Ok(answer);
    }
    let remember = fingerprint.parts().map(|(scope, key, hash)| Remember {
        scope: scope.to_owned(),
        key: key.to_owned(),
        request_hash: hash.to_owned(),
    });
    let created = match state.webhooks.create(&new, caller.id, remember.as_ref()).await {
        Ok(created) => created,
        // A concurrent request with the same key stored its answer first: answer as it did.
        Err(error) if remember.is_some() && StoreError::violated_constraint(&error).is_some() => {
            return match fingerprint.replay(&state.pool).await? {
                Some(answer) => Ok(answer),
                None => Err(ApiError::internal(error)),
            };
        }
        Err(error) => return Err(ApiError::internal(error)),
    };
    tracing::info!(
        webhook.id = %created.webhook.id,
        url.host = host_of(&created.webhook.url),
        "webhook registered"
    );
    let location = format!("/api/v1/webhooks/{}", created.webhook.id);
    let version = created.webhook.version;
    Ok(ApiResponse::created(created)
        .etag(version)
        .header(header::LOCATION, &location))
}

/// List the endpoints, oldest first (admins only; never their secrets).
#[utoipa::path(get, path = "/api/v1/webhooks", tag = "webhooks", params(ListQuery),
    security(("bearer" = [])),
    responses((status = 200, description = "A page of endpoints; `meta.pagination`", body = web::PagedEnvelope<Webhook>),
        (status = 400, description = "VALIDATION_ERROR: paging"), (status = 401, description = "UNAUTHORIZED"),
        (status = 403, description = "FORBIDDEN: not an admin")))]
pub async fn list(
    State(state): State<AppState>,
    _: Admin,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<ApiResponse, ApiError> {
    let (page, per_page) = PagePage::requested(query.page, query.per_page)?;
    let (items, total) = state
        .webhooks
        .list(page, per_page)
        .await
        .map_err(ApiError::internal)?;
    Ok(ApiResponse::ok(items).pagination(PagePage::new(page, per_page, total)))
}

/// One endpoint, with its `ETag` (admins only).
#[utoipa::path(get, path = "/api/v1/webhooks/{id}", tag = "webhooks", params(("id" = Uuid, Path)),
    security(("bearer" = [])),
    responses((status = 200, description = "The endpoint; disabled ones say why in `disabledReason`", body = web::Envelope<Webhook>),
        (status = 400, description = "VALIDATION_ERROR: malformed id"), (status = 401, description = "UNAUTHORIZED"),
        (status = 403, description = "FORBIDDEN: not an admin"), (status = 404, description = "NOT_FOUND")))]
pub async fn show(
    State(state): State<AppState>,
    _: Admin,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<ApiResponse, ApiError> {
    state
        .webhooks
        .find(id)
        .await
        .map_err(ApiError::internal)?
        .map(found)
        .ok_or_else(|| ApiError::not_found("webhook"))
}

/// Change an endpoint's URL, event types, description, or whether it is enabled (admins
/// only), with `If-Match` to refuse a change made meanwhile.
#[utoipa::path(patch, path = "/api/v1/webhooks/{id}", tag = "webhooks", request_body = UpdateWebhookRequest,
    params(("id" = Uuid, Path), ("If-Match" = Option<String>, Header, description = "Expected version: its `ETag` (`\"3\"`), or `*`", pattern = r#"^(\*|(W/)?"?[0-9]{1,18}"?)$"#)),
    security(("bearer" = [])),
    responses((status = 200, description = "Changed", body = web::Envelope<Webhook>),
        (status = 400, description = "VALIDATION_ERROR"), (status = 401, description = "UNAUTHORIZED"),
        (status = 403, description = "FORBIDDEN: not an admin"), (status = 404, description = "NOT_FOUND"),
        (status = 412, description = "PRECONDITION_FAILED: changed meanwhile")))]
pub async fn update(
    State(state): State<AppState>,
    Admin(caller): Admin,
    ApiPath(id): ApiPath<Uuid>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<UpdateWebhookRequest>,
) -> Result<ApiResponse, ApiError> {
    let expected = if_match(&headers)?;
    if body.url.is_none()
        && body.event_types.is_none()
        && body.description.is_none()
        && body.enabled.is_none()
    {
        return Err(ApiError::validation(vec![FieldError::new(
            "body",
            "give at least one of url, eventTypes, description and enabled",
        )]));
    }
    let mut errors = Vec::new();
    let patch = WebhookPatch {
        url: body
            .url
            .as_deref()
            .and_then(|url| field("url", input::url(url, state.webhook_networks), &mut errors)),
        event_types: body
            .event_types
            .as_deref()
            .and_then(|types| field("eventTypes", input::event_types(types), &mut errors)),
        description: body
            .description
            .as_ref()
            .and_then(|text| field("description", input::description(text.as_deref()), &mut errors)),
        enabled: body.enabled,
    };
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let webhook = guarded(
        state
            .webhooks
            .update(id, &patch, expected, caller.id)
            .await
            .map_err(ApiError::internal)?,
    )?;
    tracing::info!(webhook.id = %id, enabled = webhook.enabled, "webhook changed");
    Ok(found(webhook))
}

/// Delete an endpoint with its deliveries (admins only), with `If-Match`.
#[utoipa::path(delete, path = "/api/v1/webhooks/{id}", tag = "webhooks",
    params(("id" = Uuid, Path), ("If-Match" = Option<String>, Header, description = "Expected version: its `ETag` (`\"3\"`), or `*`", pattern = r#"^(\*|(W/)?"?[0-9]{1,18}"?)$"#)),
    security(("bearer" = [])),
    responses((status = 204, description = "Deleted; nothing more is delivered to it"),
        (status = 400, description = "VALIDATION_ERROR"), (status = 401, description = "UNAUTHORIZED"),
        (status = 403, description = "FORBIDDEN: not an admin"), (status = 404, description = "NOT_FOUND"),
        (status = 412, description = "PRECONDITION_FAILED: changed meanwhile")))]
pub async fn delete(
    State(state): State<AppState>,
    Admin(caller): Admin,
    ApiPath(id): ApiPath<Uuid>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let expected = if_match(&headers)?;
    guarded(
        state
            .webhooks
            .delete(id, expected, caller.id)
            .await
            .map_err(ApiError::internal)?,
    )?;
    tracing::info!(webhook.id = %id, "webhook deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// Give an endpoint a new signing secret, shown in this answer only (admins only).
/// Deliveries from now on are signed with it; the old one stops working at once.
#[utoipa::path(post, path = "/api/v1/webhooks/{id}/secret", tag = "webhooks", params(("id" = Uuid, Path)),
    security(("bearer" = [])),
    responses((status = 200, description = "The endpoint with its new secret", body = web::Envelope<WebhookWithSecret>),
        (status = 400, description = "VALIDATION_ERROR: malformed id"), (status = 401, description = "UNAUTHORIZED"),
        (status = 403, description = "FORBIDDEN: not an admin"), (status = 404, description = "NOT_FOUND")))]
pub async fn rotate_secret(
    State(state): State<AppState>,
    Admin(caller): Admin,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<ApiResponse, ApiError> {
    let rotated = state
        .webhooks
        .rotate_secret(id, caller.id)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::not_found("webhook"))?;
    tracing::info!(webhook.id = %id, "webhook secret rotated");
    let version = rotated.webhook.version;
    Ok(ApiResponse::ok(rotated).etag(version))
}

/// An endpoint's deliveries, newest first, with the last status code, error and
/// duration of each (admins only).
#[utoipa::path(get, path = "/api/v1/webhooks/{id}/deliveries", tag = "webhooks",
    params(("id" = Uuid, Path), DeliveriesQuery),
    security(("bearer" = [])),
    responses((status = 200, description = "A page of deliveries; `meta.pagination`", body = web::PagedEnvelope<Delivery>),
        (status = 400, description = "VALIDATION_ERROR"), (status = 401, description = "UNAUTHORIZED"),
        (status = 403, description = "FORBIDDEN: not an admin"), (status = 404, description = "NOT_FOUND: no such endpoint")))]
pub async fn deliveries(
    State(state): State<AppState>,
    _: Admin,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(query): ApiQuery<DeliveriesQuery>,
) -> Result<ApiResponse, ApiError> {
    let (page, per_page) = PagePage::requested(query.page, query.per_page)?;
    if let Some(event_type) = query.event_type.as_deref() {
        known_event_type(event_type).map_err(|message| ApiError::invalid_field("eventType", message))?;
    }
    let hooks = &state.webhooks;
    if hooks.find(id).await.map_err(ApiError::internal)?.is_none() {
        return Err(ApiError::not_found("webhook"));
    }
    let (items, total) = hooks
        .deliveries(id, query.status, query.event_type.as_deref(), page, per_page)
        .await
        .map_err(ApiError::internal)?;
    Ok(ApiResponse::ok(items).pagination(PagePage::new(page, per_page, total)))
}

fn known_event_type(event_type: &str) -> Result<(), String> {
    match input::event_types(&[event_type.to_owned()]) {
        Ok(types) if types.iter().all(|t| t != "*") => Ok(()),
        _ => Err("is not an event type of the catalogue".to_owned()),
    }
}

/// One delivery with every attempt: when, how long, the status code or the error
/// (admins only).
#[utoipa::path(get, path = "/api/v1/webhooks/{id}/deliveries/{deliveryId}", tag = "webhooks",
    params(("id" = Uuid, Path), ("deliveryId" = Uuid, Path)),
    security(("bearer" = [])),
    responses((status = 200, description = "The delivery and its attempts", body = web::Envelope<DeliveryDetail>),
        (status = 400, description = "VALIDATION_ERROR: malformed id"), (status = 401, description = "UNAUTHORIZED"),
        (status = 403, description = "FORBIDDEN: not an admin"), (status = 404, description = "NOT_FOUND")))]
pub async fn delivery(
    State(state): State<AppState>,
    _: Admin,
    ApiPath((id, delivery_id)): ApiPath<(Uuid, Uuid)>,
) -> Result<ApiResponse, ApiError> {
    state
        .webhooks
        .delivery(id, delivery_id)
        .await
        .map_err(ApiError::internal)?
        .map(ApiResponse::ok)
        .ok_or_else(|| ApiError::not_found("delivery"))
}

/// Send one delivery again now, with a fresh round of attempts: a dead one, or a
/// delivered one the receiver lost (admins only).
#[utoipa::path(post, path = "/api/v1/webhooks/{id}/deliveries/{deliveryId}/retry", tag = "webhooks",
    params(("id" = Uuid, Path), ("deliveryId" = Uuid, Path)),
    security(("bearer" = [])),
    responses((status = 202, description = "Due now; the workers send it shortly", body = web::Envelope<Delivery>),
        (status = 400, description = "VALIDATION_ERROR: malformed id"), (status = 401, description = "UNAUTHORIZED"),
        (status = 403, description = "FORBIDDEN: not an admin"), (status = 404, description = "NOT_FOUND")))]
pub async fn retry(
    State(state): State<AppState>,
    Admin(caller): Admin,
    ApiPath((id, delivery_id)): ApiPath<(Uuid, Uuid)>,
) -> Result<ApiResponse, ApiError> {
    let delivery = state
        .webhooks
        .retry_delivery(id, delivery_id, caller.id)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::not_found("delivery"))?;
    tracing::info!(webhook.id = %id, delivery.id = %delivery_id, "webhook delivery retried");
    Ok(ApiResponse::with_status(StatusCode::ACCEPTED, delivery))
}

/// Send the stored events of the endpoint's types again from a position (admins only):
/// delivered ones too, each with its `Webhook-Id` so receivers drop copies they have.
/// The replay is queued in the background, ten thousand positions per statement, so a
/// replay of millions neither times out nor holds one long transaction; follow it in
/// the deliveries list.
#[utoipa::path(post, path = "/api/v1/webhooks/{id}/replay", tag = "webhooks", request_body = ReplayRequest,
    params(("id" = Uuid, Path)),
    security(("bearer" = [])),
    responses((status = 202, description = "Being queued", body = web::Envelope<ReplayAccepted>),
        (status = 400, description = "VALIDATION_ERROR"), (status = 401, description = "UNAUTHORIZED"),
        (status = 403, description = "FORBIDDEN: not an admin"), (status = 404, description = "NOT_FOUND"),
        (status = 422, description = "NOTHING_TO_REPLAY: fromPosition is past the last stored event")))]
pub async fn replay(
    State(state): State<AppState>,
    Admin(caller): Admin,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<ReplayRequest>,
) -> Result<ApiResponse, ApiError> {
    let mut errors = Vec::new();
    if body.from_position < 1 {
        errors.push(FieldError::new("fromPosition", "must be at least 1"));
    }
    if body.to_position.is_some_and(|to| to < body.from_position.max(1)) {
        errors.push(FieldError::new("toPosition", "must not be below fromPosition"));
    }
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let hooks = state.webhooks.clone();
    if hooks.find(id).await.map_err(ApiError::internal)?.is_none() {
        return Err(ApiError::not_found("webhook"));
    }
    let last = hooks.last_position().await.map_err(ApiError::internal)?;
    let to = body.to_position.map_or(last, |to| to.min(last));
    let from = body.from_position;
    if from > to {
        return Err(ApiError::unprocessable(
            "NOTHING_TO_REPLAY",
            format!("fromPosition {from} is past the last stored event ({last})"),
        ));
    }
    let reason = reason_of(from, to);
    runtime::audit::record(
        &state.pool,
        caller.id,
        "webhook.replay",
        id,
        Some(&reason),
        "queued",
    )
    .await
    .map_err(ApiError::internal)?;
    let pool = state.pool.clone();
    let actor = caller.id;
    tokio::spawn(async move {
        match hooks.replay(id, from, Some(to)).await {
            Ok(queued) => {
                tracing::info!(webhook.id = %id, from, to, queued = ?queued, "webhook replay queued")
            }
            Err(error) => {
                tracing::warn!(webhook.id = %id, from, to, error = %error, "webhook replay stopped part-way; run it again");
                // The record says so too, when Postgres answers again by then.
                let recorded = runtime::audit::record(
                    &pool,
                    actor,
                    "webhook.replay",
                    id,
                    Some(&reason_of(from, to)),
                    "stopped part-way",
                )
                .await;
                if let Err(error) = recorded {
                    tracing::warn!(error = %error, "the stop of a webhook replay was not recorded");
                }
            }
        }
    });
    Ok(ApiResponse::with_status(
        StatusCode::ACCEPTED,
        ReplayAccepted {
            webhook_id: id,
            from_position: from,
            to_position: to,
        },
    ))
}

/// What a replay covers, as the record of operator actions says it.
fn reason_of(from: i64, to: i64) -> String {
    format!("positions {from} to {to}")
}
