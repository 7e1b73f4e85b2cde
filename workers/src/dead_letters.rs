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

/// Which dead letters a list or a bulk retry takes: every condition given must hold.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Filter {
    /// Only this status.
    pub status: Option<DeadLetterStatus>,
    /// Only this side effect (e.g. `welcome_email`).
    pub effect: Option<String>,
    /// Only those whose last error contains this text (any case).
    pub error: Option<String>,
    /// Only those that became dead letters at least this many seconds ago.
    pub older_than_seconds: Option<u64>,
    /// Only those that became dead letters at most this many seconds ago.
    pub newer_than_seconds: Option<u64>,
}

/// The `WHERE` clause of a [`Filter`], its parameters `$1`..`$5` bound by [`bind`].
const FILTER: &str = "($1::text IS NULL OR status = $1) AND ($2::text IS NULL OR effect = $2)
     AND ($3::text IS NULL OR error ILIKE '%' || $3 || '%' ESCAPE '\\')
     AND ($4::float8 IS NULL OR created_at <= now() - make_interval(secs => $4))
     AND ($5::float8 IS NULL OR created_at >= now() - make_interval(secs => $5))";

/// `text` as a literal part of an `ILIKE` pattern.
fn like_escaped(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

fn bind<'q, O>(
    query: sqlx::query::QueryAs<'q, Postgres, O, sqlx::postgres::PgArguments>,
    filter: &'q Filter,
) -> sqlx::query::QueryAs<'q, Postgres, O, sqlx::postgres::PgArguments> {
    query
        .bind(filter.status.map(DeadLetterStatus::as_str))
        .bind(filter.effect.as_deref())
        .bind(filter.error.as_deref().map(like_escaped))
        .bind(filter.older_than_seconds.map(|s| s as f64))
        .bind(filter.newer_than_seconds.map(|s| s as f64))
}

/// One page of dead letters, newest first, and how many match in all.
pub async fn list(
    pool: &PgPool,
    filter: &Filter,
    page: u32,
    per_page: u32,
) -> Result<(Vec<DeadLetterSummary>, i64), sqlx::Error> {
    let (total,): (i64,) = bind(
        sqlx::query_as(&format!("SELECT count(*) FROM dead_letters WHERE {FILTER}")),
        filter,
    )
    .fetch_one(pool)
    .await?;
    let offset = i64::from(page.saturating_sub(1)) * i64::from(per_page);
    let items = bind(
        sqlx::query_as::<_, DeadLetterSummary>(&format!(
            "SELECT id, event_id, effect, subject, error, attempts, status, created_at, updated_at
             FROM dead_letters WHERE {FILTER}
             ORDER BY created_at DESC, id DESC LIMIT $6 OFFSET $7"
        )),
        filter,
    )
    .bind(i64::from(per_page))
    .bind(offset)
    .fetch_all(pool)
    .await?;
    Ok((items, total))
}

/// The next `limit` ids that `filter` takes and that became dead letters no later than
/// `until`, oldest first, after `(created_at, id)` = `after`: a keyset walk that neither
/// skips nor repeats however the set changes meanwhile.
pub async fn next_matching(
    pool: &PgPool,
    filter: &Filter,
    until: DateTime<Utc>,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<(DateTime<Utc>, Uuid)>, sqlx::Error> {
    bind(
        sqlx::query_as(&format!(
            "SELECT created_at, id FROM dead_letters WHERE {FILTER} AND created_at <= $6
               AND ($7::timestamptz IS NULL OR (created_at, id) > ($7, $8))
             ORDER BY created_at, id LIMIT $9"
        )),
        filter,
    )
    .bind(until)
    .bind(after.map(|(at, _)| at))
    .bind(after.map(|(_, id)| id))
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// How many dead letters `filter` takes that became dead letters no later than `until`.
pub async fn count_matching(
    pool: &PgPool,
    filter: &Filter,
    until: DateTime<Utc>,
) -> Result<i64, sqlx::Error> {
    let (total,): (i64,) = bind(
        sqlx::query_as(&format!(
            "SELECT count(*) FROM dead_letters WHERE {FILTER} AND created_at <= $6"
        )),
        filter,
    )
    .bind(until)
    .fetch_one(pool)
    .await?;
    Ok(total)
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
