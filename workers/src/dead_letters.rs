//! Dead letters: side effects that failed on every attempt, kept for operators to list,
//! inspect, retry and discard.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::error::BoxDynError;
use sqlx::postgres::{PgTypeInfo, PgValueRef};
use sqlx::{PgPool, Postgres};
use uuid::Uuid;

/// Where a dead letter stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DeadLetterStatus {
    /// Failed and waiting for an operator.
    Dead,
    /// Carried out later (by an operator's retry).
    Resolved,
    /// Given up by an operator.
    Discarded,
}

impl DeadLetterStatus {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Dead => "dead",
            Self::Resolved => "resolved",
            Self::Discarded => "discarded",
        }
    }
}

impl sqlx::Type<Postgres> for DeadLetterStatus {
    fn type_info() -> PgTypeInfo {
        <String as sqlx::Type<Postgres>>::type_info()
    }

    fn compatible(ty: &PgTypeInfo) -> bool {
        <String as sqlx::Type<Postgres>>::compatible(ty)
    }
}

impl<'r> sqlx::Decode<'r, Postgres> for DeadLetterStatus {
    fn decode(value: PgValueRef<'r>) -> Result<Self, BoxDynError> {
        match <&str as sqlx::Decode<Postgres>>::decode(value)? {
            "dead" => Ok(Self::Dead),
            "resolved" => Ok(Self::Resolved),
            "discarded" => Ok(Self::Discarded),
            other => Err(format!("unknown dead letter status {other}").into()),
        }
    }
}

/// One dead letter with the event it is about.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeadLetter {
    /// Id (UUID v7).
    pub id: Uuid,
    /// The event whose side effect failed.
    pub event_id: Uuid,
    /// The side effect, e.g. `welcome_email`.
    pub effect: String,
    /// The NATS subject the event arrived on.
    pub subject: String,
    /// The full event envelope.
    #[schema(value_type = Object)]
    pub event: Value,
    /// The last error.
    pub error: String,
    /// Attempts made so far, operator retries included.
    pub attempts: i32,
    /// Where it stands.
    pub status: DeadLetterStatus,
    /// When it became a dead letter.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

/// A dead letter in a list: everything but the event.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeadLetterSummary {
    /// Id (UUID v7).
    pub id: Uuid,
    /// The event whose side effect failed.
    pub event_id: Uuid,
    /// The side effect.
    pub effect: String,
    /// The NATS subject the event arrived on.
    pub subject: String,
    /// The last error.
    pub error: String,
    /// Attempts made so far.
    pub attempts: i32,
    /// Where it stands.
    pub status: DeadLetterStatus,
    /// When it became a dead letter.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

/// Every column of `dead_letters`, in [`DeadLetter`] order.
pub(crate) const COLUMNS: &str =
    "id, event_id, effect, subject, event, error, attempts, status, created_at, updated_at";

/// One page of dead letters, newest first, and how many match in all.
pub async fn list(
    pool: &PgPool,
    status: Option<DeadLetterStatus>,
    effect: Option<&str>,
    page: u32,
    per_page: u32,
) -> Result<(Vec<DeadLetterSummary>, i64), sqlx::Error> {
    let status = status.map(DeadLetterStatus::as_str);
    let filter = "($1::text IS NULL OR status = $1) AND ($2::text IS NULL OR effect = $2)";
    let total: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM dead_letters WHERE {filter}"))
        .bind(status)
        .bind(effect)
        .fetch_one(pool)
        .await?;
    let offset = i64::from(page.saturating_sub(1)) * i64::from(per_page);
    let items = sqlx::query_as::<_, DeadLetterSummary>(&format!(
        "SELECT id, event_id, effect, subject, error, attempts, status, created_at, updated_at
         FROM dead_letters WHERE {filter}
         ORDER BY created_at DESC, id DESC LIMIT $3 OFFSET $4"
    ))
    .bind(status)
    .bind(effect)
    .bind(i64::from(per_page))
    .bind(offset)
    .fetch_all(pool)
    .await?;
    Ok((items, total))
}

/// One dead letter.
pub async fn find(pool: &PgPool, id: Uuid) -> Result<Option<DeadLetter>, sqlx::Error> {
    sqlx::query_as::<_, DeadLetter>(&format!("SELECT {COLUMNS} FROM dead_letters WHERE id = $1"))
        .bind(id)
        .fetch_optional(pool)
        .await
}

/// What discarding did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Discarded {
    /// It is discarded now.
    Done,
    /// It was discarded before: nothing changed.
    AlreadyDiscarded,
    /// There is no such dead letter.
    NotFound,
    /// It was resolved; there is nothing left to discard.
    AlreadyResolved,
}

/// Marks a dead letter discarded: the workers will not carry out its effect again. Takes
/// the connection of the caller's transaction, so the operator's record of it commits with it.
pub async fn discard(conn: &mut sqlx::PgConnection, id: Uuid) -> Result<Discarded, sqlx::Error> {
    let status: Option<DeadLetterStatus> = sqlx::query_scalar(
        "UPDATE dead_letters SET status = 'discarded', updated_at = now()
         WHERE id = $1 AND status = 'dead' RETURNING status",
    )
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    if status.is_some() {
        return Ok(Discarded::Done);
    }
    let current: Option<DeadLetterStatus> =
        sqlx::query_scalar("SELECT status FROM dead_letters WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?;
    Ok(match current {
        None => Discarded::NotFound,
        Some(DeadLetterStatus::Resolved) => Discarded::AlreadyResolved,
        Some(_) => Discarded::AlreadyDiscarded,
    })
}
