//! "Retry all that match": a run over every dead letter a [`Filter`] takes, in the
//! background, so ten thousand of them neither time out a request nor hold one
//! transaction. The run walks the matching dead letters oldest first in chunks
//! ([`dead_letters::next_matching`], a keyset walk: nothing skipped or repeated while
//! others change the set), retries a few at a time under the never-twice rule
//! ([`operator::retry`]), and writes its progress after every chunk to
//! `dead_letter_retries`, from which readers get its rate and ETA. Each dead letter it
//! retries is recorded in `operator_actions`.
//!
//! A run only takes dead letters that were dead when it started, and measures the
//! filter's ages from its start, not from each chunk's read. One whose process died
//! stays `running` with a stale `updatedAt` and is shown `stalled`; starting another
//! retries what is still dead (what it resolved is not dead any more).

use crate::dead_letters::{self, DeadLetterStatus, Filter};
use crate::ledger::Ledger;
use crate::operator::{self, RetryError};
use crate::registry::Effects;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use runtime::audit;
use serde::Serialize;
use sqlx::PgPool;
use sqlx::types::Json;
use std::time::Duration;
use uuid::Uuid;

/// Dead letters read per chunk (and progress written after each).
const CHUNK: i64 = 50;
/// Retries in flight at once in one run.
const CONCURRENCY: usize = 4;
/// A running run whose progress is older than this is shown as stalled.
const STALLED_AFTER: Duration = Duration::from_secs(300);
/// How long a run waits for Postgres to come back before it stops as failed.
const DATABASE_PATIENCE: Duration = Duration::from_secs(120);

/// One bulk retry, with its progress.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RetryRun {
    /// Its id.
    pub id: Uuid,
    /// The administrator who started it.
    pub actor_id: Uuid,
    /// Which dead letters it takes (always those with status `dead`).
    pub filter: Filter,
    /// Why, as the operator said.
    pub reason: Option<String>,
    /// `running`, `done`, or `failed` (stopped by an error; what is left is still dead).
    pub status: String,
    /// Whether it is `running` but has not moved for five minutes (its process died):
    /// start another to retry what is still dead.
    pub stalled: bool,
    /// The dead letters it takes: those matching when it started.
    pub total: i64,
    /// Retried so far (resolved, failed again, or settled by someone else meanwhile).
    pub processed: i64,
    /// Resolved: carried out now, or found done.
    pub resolved: i64,
    /// Failed again (still dead, with the new error).
    pub failed: i64,
    /// The last error a retry or the run met.
    pub last_error: Option<String>,
    /// Dead letters retried per second so far.
    pub rate_per_second: Option<f64>,
    /// Seconds to go at that rate, while running.
    pub eta_seconds: Option<f64>,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// When it last moved.
    pub updated_at: DateTime<Utc>,
    /// When it ended.
    pub finished_at: Option<DateTime<Utc>>,
}

#[derive(sqlx::FromRow)]
struct Row {
    id: Uuid,
    actor_id: Uuid,
    filter: Json<Filter>,
    reason: Option<String>,
    status: String,
    total: i64,
    processed: i64,
    resolved: i64,
    failed: i64,
    last_error: Option<String>,
    started_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    finished_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
}

const COLUMNS: &str = "id, actor_id, filter, reason, status, total, processed, resolved, failed, last_error, \
     started_at, updated_at, finished_at, now() AS now";

impl From<Row> for RetryRun {
    fn from(row: Row) -> Self {
        let running = row.status == "running";
        let end = row.finished_at.unwrap_or(row.updated_at);
        let elapsed = (end - row.started_at).num_milliseconds().max(1) as f64 / 1000.0;
        let rate = (row.processed > 0).then(|| row.processed as f64 / elapsed);
        let eta = rate
            .filter(|_| running)
            .map(|rate| (row.total - row.processed).max(0) as f64 / rate);
        let stalled = running
            && (row.now - row.updated_at)
                .to_std()
                .is_ok_and(|idle| idle > STALLED_AFTER);
        Self {
            id: row.id,
            actor_id: row.actor_id,
            filter: row.filter.0,
            reason: row.reason,
            status: row.status,
            stalled,
            total: row.total,
            processed: row.processed,
            resolved: row.resolved,
            failed: row.failed,
            last_error: row.last_error,
            rate_per_second: rate,
            eta_seconds: eta,
            started_at: row.started_at,
            updated_at: row.updated_at,
            finished_at: row.finished_at,
        }
    }
}

/// What a run needs to retry.
#[derive(Clone)]
pub struct Retrier {
    pool: PgPool,
    ledger: Ledger,
    effects: Effects,
}

impl Retrier {
    /// Retries with the workers' ledger and effects.
    pub fn new(pool: PgPool, ledger: Ledger, effects: Effects) -> Self {
        Self {
            pool,
            ledger,
            effects,
        }
    }

    /// Starts a run over the dead letters `filter` takes (its status is ignored: only
    /// dead ones), recorded in `operator_actions`, and returns it as it begins. Its ages
    /// are measured from the start and kept as times in the run's filter
    /// ([`Filter::fixed_at`]), so every chunk reads the same window.
    pub async fn start(
        &self,
        actor: Uuid,
        filter: Filter,
        reason: Option<&str>,
    ) -> Result<RetryRun, sqlx::Error> {
        let id = Uuid::now_v7();
        let mut tx = self.pool.begin().await?;
        // The transaction's time: the run's `started_at` below is the same instant.
        let started_at: DateTime<Utc> = sqlx::query_scalar("SELECT now()").fetch_one(&mut *tx).await?;
        let filter = Filter {
            status: Some(DeadLetterStatus::Dead),
            ..filter
        }
        .fixed_at(started_at);
        sqlx::query(
            "INSERT INTO dead_letter_retries (id, actor_id, filter, reason, started_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $5)",
        )
        .bind(id)
        .bind(actor)
        .bind(Json(&filter))
        .bind(reason)
        .bind(started_at)
        .execute(&mut *tx)
        .await?;
        let total = dead_letters::count_matching(&self.pool, &filter, started_at).await?;
        sqlx::query("UPDATE dead_letter_retries SET total = $2 WHERE id = $1")
            .bind(id)
            .bind(total)
            .execute(&mut *tx)
            .await?;
        audit::record(&mut *tx, actor, "dead_letter.retry_all", id, reason, "started").await?;
        tx.commit().await?;
        tracing::info!(retry_run.id = %id, total, "bulk retry of dead letters started");
        let this = self.clone();
        tokio::spawn(async move { this.run(id, actor, filter, started_at).await });
        self.find(id)
            .await?
            .ok_or_else(|| sqlx::Error::Protocol("the run just written is not there".into()))
    }

    async fn run(self, id: Uuid, actor: Uuid, filter: Filter, until: DateTime<Utc>) {
        let note = format!("bulk retry {id}");
        let mut after = None;
        loop {
            let Some(chunk) = self
                .patiently(|| dead_letters::next_matching(&self.pool, &filter, until, after, CHUNK))
                .await
            else {
                self.finish(
                    id,
                    "failed",
                    Some("Postgres did not answer for two minutes; what is left is still dead"),
                )
                .await;
                return;
            };
            let Some(last) = chunk.last().copied() else {
                break;
            };
            after = Some(last);
            let outcomes: Vec<Outcome> = futures::stream::iter(chunk)
                .map(|(_, letter)| self.retry_one(letter, actor, &note))
                .buffer_unordered(CONCURRENCY)
                .collect()
                .await;
            let resolved = outcomes.iter().filter(|o| matches!(o, Outcome::Resolved)).count() as i64;
            let failed = outcomes
                .iter()
                .filter(|o| matches!(o, Outcome::Failed(_)))
                .count() as i64;
            let last_error = outcomes.iter().rev().find_map(|o| match o {
                Outcome::Failed(error) => Some(error.clone()),
                _ => None,
            });
            let written = self
                .patiently(|| {
                    sqlx::query(
                        "UPDATE dead_letter_retries SET processed = processed + $2, resolved = resolved + $3,
                             failed = failed + $4, last_error = COALESCE($5, last_error), updated_at = now()
                         WHERE id = $1",
                    )
                    .bind(id)
                    .bind(outcomes.len() as i64)
                    .bind(resolved)
                    .bind(failed)
                    .bind(last_error.as_deref())
                    .execute(&self.pool)
                })
                .await;
            if written.is_none() {
                tracing::error!(retry_run.id = %id, "bulk retry progress not written; stopping");
                return;
            }
        }
        self.finish(id, "done", None).await;
    }

    async fn retry_one(&self, letter: Uuid, actor: Uuid, note: &str) -> Outcome {
        let retried = operator::retry(&self.pool, &self.ledger, &self.effects, letter).await;
        let (outcome, recorded) = match &retried {
            Ok(_) => (Outcome::Resolved, "resolved".to_owned()),
            // Resolved or discarded by someone else since the chunk was read.
            Err(RetryError::NotFound | RetryError::NotDead(_)) => (Outcome::Settled, String::new()),
            Err(error) => (
                Outcome::Failed(error.to_string()),
                format!("not resolved: {error}"),
            ),
        };
        if !matches!(outcome, Outcome::Settled)
            && let Err(error) = audit::record(
                &self.pool,
                actor,
                "dead_letter.retry",
                letter,
                Some(note),
                &recorded,
            )
            .await
        {
            tracing::error!(error = %error, dead_letter.id = %letter, "the retry was not recorded in operator_actions");
        }
        outcome
    }

    async fn finish(&self, id: Uuid, status: &str, error: Option<&str>) {
        let finished = self
            .patiently(|| {
                sqlx::query(
                    "UPDATE dead_letter_retries SET status = $2, last_error = COALESCE($3, last_error),
                         updated_at = now(), finished_at = now() WHERE id = $1",
                )
                .bind(id)
                .bind(status)
                .bind(error)
                .execute(&self.pool)
            })
            .await;
        match finished {
            Some(_) => tracing::info!(retry_run.id = %id, status, "bulk retry of dead letters ended"),
            None => {
                tracing::error!(retry_run.id = %id, status, "bulk retry ended, but its end was not written")
            }
        }
    }

    /// Runs `query` until it succeeds, waiting out Postgres for [`DATABASE_PATIENCE`].
    async fn patiently<T, F, Fut>(&self, mut query: F) -> Option<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, sqlx::Error>>,
    {
        let deadline = tokio::time::Instant::now() + DATABASE_PATIENCE;
        let mut backoff =
            runtime::backoff::Policy::new(Duration::from_millis(200), Duration::from_secs(5)).start();
        loop {
            match query().await {
                Ok(value) => return Some(value),
                Err(error) if tokio::time::Instant::now() < deadline => {
                    tracing::warn!(error = %error, "bulk retry waiting for Postgres");
                    tokio::time::sleep(backoff.next_delay()).await;
                }
                Err(error) => {
                    tracing::error!(error = %error, "bulk retry gave up waiting for Postgres");
                    return None;
                }
            }
        }
    }

    /// One run.
    pub async fn find(&self, id: Uuid) -> Result<Option<RetryRun>, sqlx::Error> {
        sqlx::query_as::<_, Row>(&format!(
            "SELECT {COLUMNS} FROM dead_letter_retries WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map(|row| row.map(RetryRun::from))
    }

    /// A page of runs, newest first, and how many there are.
    pub async fn list(&self, page: u32, per_page: u32) -> Result<(Vec<RetryRun>, i64), sqlx::Error> {
        let total: i64 = sqlx::query_scalar("SELECT count(*) FROM dead_letter_retries")
            .fetch_one(&self.pool)
            .await?;
        let rows = sqlx::query_as::<_, Row>(&format!(
            "SELECT {COLUMNS} FROM dead_letter_retries ORDER BY started_at DESC, id DESC LIMIT $1 OFFSET $2"
        ))
        .bind(i64::from(per_page))
        .bind(i64::from(page.saturating_sub(1)) * i64::from(per_page))
        .fetch_all(&self.pool)
        .await?;
        Ok((rows.into_iter().map(RetryRun::from).collect(), total))
    }
}

enum Outcome {
    Resolved,
    Failed(String),
    Settled,
}
