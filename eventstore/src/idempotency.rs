//! Stored first answers of idempotent POSTs (DESIGN.md guarantee 6).

use serde_json::Value;
use sqlx::PgPool;

/// The first answer to a request sent with an `Idempotency-Key`.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct IdempotencyRecord {
    /// Who may replay it: the authenticated user id, or `anonymous`.
    pub scope: String,
    /// The client's key.
    pub key: String,
    /// SHA-256 of method, path and body: a different request under the same key is refused.
    pub request_hash: String,
    /// HTTP status of the first answer.
    pub status_code: i16,
    /// The `data` of the first answer.
    pub body: Value,
    /// `ETag` of the first answer.
    pub etag: Option<String>,
    /// `Location` of the first answer.
    pub location: Option<String>,
}

/// Finds the stored answer for a key.
pub async fn find_idempotent(
    pool: &PgPool,
    scope: &str,
    key: &str,
) -> Result<Option<IdempotencyRecord>, sqlx::Error> {
    sqlx::query_as!(
        IdempotencyRecord,
        "SELECT scope, key, request_hash, status_code, body, etag, location
         FROM idempotency_keys WHERE scope = $1 AND key = $2",
        scope,
        key
    )
    .fetch_optional(pool)
    .await
}
