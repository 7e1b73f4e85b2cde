//! `Idempotency-Key` over HTTP (DESIGN.md guarantee 6): the same key with the same
//! request replays the first answer and appends nothing; with another request it is
//! refused with 422 `IDEMPOTENCY_KEY_REUSED`. Keys are remembered for 24 hours.

use axum::http::{HeaderMap, HeaderName, StatusCode, header};
use eventstore::{IdempotencyRecord, find_idempotent};
use serde_json::Value;
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use std::time::Duration;
use web::{ApiError, ApiResponse};

/// The request header.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// The key sent with a request, if any; 400 when it is empty, too long or not printable.
pub fn key_from(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get(IDEMPOTENCY_KEY) else {
        return Ok(None);
    };
    let key = value.to_str().map(str::trim).unwrap_or_default();
    if key.is_empty() || key.len() > 255 || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ApiError::invalid_field(
            "Idempotency-Key",
            "must be 1 to 255 printable ASCII characters",
        ));
    }
    Ok(Some(key.to_owned()))
}

/// Fingerprint of a request: route and canonical body (secrets left out by the caller).
pub fn request_hash(route: &str, canonical_body: &Value) -> String {
    let mut hasher = Sha256::new();
    hasher.update(route.as_bytes());
    hasher.update([0]);
    hasher.update(canonical_body.to_string().as_bytes());
    hasher.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// A record to store with the command, before its answer is known.
pub fn pending_record(
    scope: &str,
    key: &str,
    hash: &str,
    status: StatusCode,
    location: Option<String>,
) -> IdempotencyRecord {
    IdempotencyRecord {
        scope: scope.to_owned(),
        key: key.to_owned(),
        request_hash: hash.to_owned(),
        status_code: status.as_u16() as i16,
        body: Value::Null,
        etag: None,
        location,
    }
}

/// The stored answer for a key, if any.
pub async fn lookup(pool: &PgPool, scope: &str, key: &str) -> Result<Option<IdempotencyRecord>, ApiError> {
    find_idempotent(pool, scope, key)
        .await
        .map_err(ApiError::internal)
}

/// 422 for a key reused with another request.
pub fn reused() -> ApiError {
    ApiError::unprocessable(
        "IDEMPOTENCY_KEY_REUSED",
        "this Idempotency-Key was already used with a different request",
    )
}

/// The first answer again, marked as a replay.
pub fn replay(record: &IdempotencyRecord) -> ApiResponse {
    let status = StatusCode::from_u16(record.status_code as u16).unwrap_or(StatusCode::OK);
    let mut response = ApiResponse::with_status(status, record.body.clone())
        .header(HeaderName::from_static("idempotent-replayed"), "true");
    if let Some(version) = record.body.get("version").and_then(Value::as_i64) {
        response = response.etag(version);
    }
    if let Some(location) = &record.location {
        response = response.header(header::LOCATION, location);
    }
    response
}

/// Deletes keys older than a day, every hour, until shutdown.
pub async fn purge_expired(pool: PgPool, shutdown: tokio_util::sync::CancellationToken) {
    loop {
        let result =
            sqlx::query!("DELETE FROM idempotency_keys WHERE created_at < now() - interval '24 hours'")
                .execute(&pool)
                .await;
        if let Err(error) = result {
            tracing::warn!(error = %error, "could not purge expired idempotency keys");
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(3600)) => {}
        }
    }
}

/// What to do with a request that may carry an `Idempotency-Key`.
pub enum Prepared<T> {
    /// The key was used before for this very request: answer this.
    Replay(ApiResponse),
    /// Run the command; store its answer with it when a key was sent.
    Proceed(Option<crate::commands::PendingIdempotency<T>>),
}

/// The key, scope and fingerprint of a request, to look it up again after a race.
pub struct Fingerprint {
    scope: String,
    key: Option<String>,
    hash: String,
}

impl Fingerprint {
    /// Reads the key from the headers and fingerprints the request.
    pub fn of(
        headers: &HeaderMap,
        scope: &str,
        route: &str,
        canonical_body: &Value,
    ) -> Result<Self, ApiError> {
        Ok(Self {
            scope: scope.to_owned(),
            key: key_from(headers)?,
            hash: request_hash(route, canonical_body),
        })
    }

    /// Replays a stored answer, refuses a reused key, or prepares the record to store.
    pub async fn prepare<T>(
        &self,
        pool: &PgPool,
        status: StatusCode,
        render: impl Fn(&T) -> Value + Send + Sync + 'static,
    ) -> Result<Prepared<T>, ApiError> {
        let Some(key) = &self.key else {
            return Ok(Prepared::Proceed(None));
        };
        if let Some(answer) = self.replay(pool).await? {
            return Ok(Prepared::Replay(answer));
        }
        Ok(Prepared::Proceed(Some(crate::commands::PendingIdempotency {
            record: pending_record(&self.scope, key, &self.hash, status, None),
            render: std::sync::Arc::new(render),
        })))
    }

    /// Scope, key and fingerprint, when a key was sent.
    pub fn parts(&self) -> Option<(&str, &str, &str)> {
        self.key
            .as_deref()
            .map(|key| (self.scope.as_str(), key, self.hash.as_str()))
    }

    /// The stored answer for this key, if any (422 when it was for another request).
    pub async fn replay(&self, pool: &PgPool) -> Result<Option<ApiResponse>, ApiError> {
        let Some(key) = &self.key else { return Ok(None) };
        match lookup(pool, &self.scope, key).await? {
            Some(record) if record.request_hash == self.hash => Ok(Some(replay(&record))),
            Some(_) => Err(reused()),
            None => Ok(None),
        }
    }
}
