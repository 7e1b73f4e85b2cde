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
    /// Only those that became dead letters at or before this time; when set it takes the
    /// place of `olderThanSeconds` (a bulk retry's `olderThanSeconds` measured from its
    /// start, [`Filter::fixed_at`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_until: Option<DateTime<Utc>>,
    /// Only those that became dead letters at or after this time; when set it takes the
    /// place of `newerThanSeconds`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_since: Option<DateTime<Utc>>,
}

impl Filter {
    /// The filter with its ages turned into times measured back from `now`, so that a
    /// run reading chunk after chunk takes one window however long it runs, instead of
    /// one that slides with the clock. The ages stay, for readers of the run.
    pub fn fixed_at(self, now: DateTime<Utc>) -> Self {
        // An age too large to subtract reaches back before any dead letter.
        let back = |seconds: u64| {
            i64::try_from(seconds)
                .ok()
                .and_then(chrono::TimeDelta::try_seconds)
                .and_then(|age| now.checked_sub_signed(age))
                .unwrap_or(DateTime::<Utc>::MIN_UTC)
        };
        Self {
            created_until: self.created_until.or(self.older_than_seconds.map(back)),
            created_since: self.created_since.or(self.newer_than_seconds.map(back)),
            ..self
        }
    }
}

/// The `WHERE` clause of a [`Filter`], its parameters `$1`..`$7` bound by [`bind`]: a
/// fixed time (`$6`, `$7`) wins over the age it was computed from (`$4`, `$5`).
const FILTER: &str = "($1::text IS NULL OR status = $1) AND ($2::text IS NULL OR effect = $2)
     AND ($3::text IS NULL OR error ILIKE '%' || $3 || '%' ESCAPE '\\')
     AND created_at <= COALESCE($6::timestamptz, now() - make_interval(secs => $4::float8), 'infinity')
     AND created_at >= COALESCE($7::timestamptz, now() - make_interval(secs => $5::float8), '-infinity')";

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
        .bind(filter.created_until)
        .bind(filter.created_since)
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
             ORDER BY created_at DESC, id DESC LIMIT $8 OFFSET $9"
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
            "SELECT created_at, id FROM dead_letters WHERE {FILTER} AND created_at <= $8
               AND ($9::timestamptz IS NULL OR (created_at, id) > ($9, $10))
             ORDER BY created_at, id LIMIT $11"
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
            "SELECT count(*) FROM dead_letters WHERE {FILTER} AND created_at <= $8"
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixing_a_filter_turns_its_ages_into_times_before_the_start_and_keeps_the_ages() {
        let start = DateTime::parse_from_rfc3339("2026-12-03T12:00:00Z")
            .expect("a time")
            .to_utc();
        let filter = Filter {
            older_than_seconds: Some(1800),
            newer_than_seconds: Some(7200),
            ..Filter::default()
        }
        .fixed_at(start);
        assert_eq!(filter.created_until, Some(start - chrono::TimeDelta::minutes(30)));
        assert_eq!(filter.created_since, Some(start - chrono::TimeDelta::hours(2)));
        assert_eq!(
            (filter.older_than_seconds, filter.newer_than_seconds),
            (Some(1800), Some(7200))
        );
        // Fixed once, fixed for good: a later start does not move it.
        assert_eq!(
            filter.clone().fixed_at(start + chrono::TimeDelta::hours(1)),
            filter
        );
        // Without ages there is nothing to fix; an age beyond the calendar reaches back to its start.
        assert_eq!(Filter::default().fixed_at(start), Filter::default());
        let ancient = Filter {
            newer_than_seconds: Some(u64::MAX),
            ..Filter::default()
        }
        .fixed_at(start);
        assert_eq!(ancient.created_since, Some(DateTime::<Utc>::MIN_UTC));
    }

    #[test]
    fn a_stored_filter_without_fixed_times_still_reads() {
        let filter: Filter =
            serde_json::from_str(r#"{"status":"dead","olderThanSeconds":60}"#).expect("a stored filter");
        assert_eq!(
            (filter.created_until, filter.older_than_seconds),
            (None, Some(60))
        );
    }
}
