//! `/api/v1/consumers`: what the workers' JetStream consumers have not finished yet.

use super::AppState;
use axum::extract::State;
use serde::Serialize;
use web::Admin;
use web::{ApiError, ApiResponse, Envelope, ErrorEnvelope};

/// The state of one consumer, from JetStream's consumer info.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConsumerState {
    /// Durable name.
    pub name: String,
    /// Stream it reads.
    pub stream: String,
    /// Subject filter.
    pub filter_subject: String,
    /// Messages in the stream not yet delivered to it.
    pub num_pending: u64,
    /// Messages delivered and not yet acknowledged (in flight or waiting for a retry).
    pub num_ack_pending: usize,
    /// Messages delivered more than once.
    pub num_redelivered: usize,
    /// Pull requests waiting for messages.
    pub num_waiting: usize,
    /// Highest stream sequence delivered.
    pub delivered_stream_sequence: u64,
    /// Stream sequence below which everything is acknowledged.
    pub ack_floor_stream_sequence: u64,
}

/// Lists the workers' consumers with their backlog, so an operator sees what is stuck.
#[utoipa::path(
    get, path = "/api/v1/consumers", tag = "consumers",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "One entry per consumer", body = Envelope<Vec<ConsumerState>>),
        (status = 401, description = "No valid token", body = ErrorEnvelope),
        (status = 403, description = "Not an administrator", body = ErrorEnvelope),
        (status = 503, description = "JetStream or the signing keys are not answering", body = ErrorEnvelope)
    )
)]
pub(super) async fn list(_: Admin, State(state): State<AppState>) -> Result<ApiResponse, ApiError> {
    let unavailable = |error: &dyn std::fmt::Display| {
        tracing::warn!(error = %error, "consumer info unavailable");
        ApiError::unavailable("JetStream consumer info is not available")
    };
    let stream = state
        .jetstream
        .get_stream(&state.stream.name)
        .await
        .map_err(|e| unavailable(&e))?;
    let subscriptions = state.effects.subscriptions();
    let mut consumers = Vec::with_capacity(subscriptions.len());
    for subscription in subscriptions {
        let info = stream
            .consumer_info(&subscription.consumer)
            .await
            .map_err(|e| unavailable(&e))?;
        consumers.push(ConsumerState {
            name: info.name,
            stream: info.stream_name,
            filter_subject: info.config.filter_subject,
            num_pending: info.num_pending,
            num_ack_pending: info.num_ack_pending,
            num_redelivered: info.num_redelivered,
            num_waiting: info.num_waiting,
            delivered_stream_sequence: info.delivered.stream_sequence,
            ack_floor_stream_sequence: info.ack_floor.stream_sequence,
        });
    }
    Ok(ApiResponse::ok(consumers))
}

/// Reads every consumer of the workers into the `jetstream_consumer_*` gauges at scrape.
pub(super) fn collector(state: &AppState) -> web::metrics::Collector {
    let jetstream = state.jetstream.clone();
    let stream = state.stream.name.clone();
    let consumers: Vec<String> = state
        .effects
        .subscriptions()
        .into_iter()
        .map(|subscription| subscription.consumer)
        .collect();
    web::metrics::collector(move || {
        let (jetstream, stream, consumers) = (jetstream.clone(), stream.clone(), consumers.clone());
        async move {
            let stream = match jetstream.get_stream_no_info(&stream).await {
                Ok(stream) => stream,
                Err(error) => {
                    tracing::warn!(error = %error, "consumer state not read for /metrics");
                    return;
                }
            };
            for consumer in &consumers {
                match stream.consumer_info(consumer).await {
                    Ok(info) => runtime::consumers::record_consumer(&info),
                    Err(error) => tracing::debug!(error = %error, consumer, "no consumer info"),
                }
            }
        }
    })
}
