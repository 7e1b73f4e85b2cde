//! The never-twice rule for side effects (DESIGN.md guarantee 5).
//!
//! [`Ledger::open`] starts one Postgres transaction and takes a transaction-scoped
//! advisory lock on (effect, event id). Whoever holds it alone decides: if
//! `side_effects` already has the row, the effect happened and nothing is sent; else
//! the effect is carried out while the lock is held and the row is inserted in the same
//! transaction ([`OpenEffect::complete`]). Competing workers, redeliveries and operator
//! retries of one event therefore run one after the other and only the first sends.
//!
//! When the database goes away after the email was accepted and before the commit, the
//! worker records the effect again in a new transaction ([`Ledger::record_completed`])
//! until Postgres is back (see `delivery`), holding the message meanwhile, so a Postgres
//! restart or crash does not send twice. The one window left is a crash of the worker
//! itself in that moment (or Postgres away for longer than that wait): the row is
//! missing, the message is redelivered and the email goes out again. Side effects are
//! thus at-least-once, with duplicates limited to that window; the Message-ID derived
//! from the event id lets receivers drop such a copy.

use crate::dead_letters::{COLUMNS, DeadLetter};
use serde_json::Value;
use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

/// How often [`Ledger::record_completed_within`] tries again.
pub const RECORD_POLL: std::time::Duration = std::time::Duration::from_millis(250);

/// How long a carried-out effect whose commit was lost is recorded again before giving up
/// (half the consumer's ack wait, so JetStream keeps the message meanwhile).
pub const RECORD_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// Records which side effects happened.
#[derive(Clone)]
pub struct Ledger {
    pool: PgPool,
}

impl Ledger {
    /// A ledger over a migrated database.
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// Records that the effect happened, in a transaction of its own: for an effect whose
    /// own transaction was lost after it was carried out.
    pub async fn record_completed(&self, event_id: Uuid, effect: &str) -> Result<(), sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        mark_completed(&mut tx, event_id, effect).await?;
        tx.commit().await
    }

    /// [`Ledger::record_completed`], polling every [`RECORD_POLL`] until Postgres
    /// answers, for at most `wait`: for an effect carried out just before Postgres went
    /// away, which must be recorded rather than carried out again.
    pub async fn record_completed_within(
        &self,
        event_id: Uuid,
        effect: &str,
        wait: std::time::Duration,
    ) -> Result<(), sqlx::Error> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match self.record_completed(event_id, effect).await {
                Err(error) if tokio::time::Instant::now() < deadline => {
                    tracing::debug!(error = %error, "database still away; recording the side effect again shortly");
                    tokio::time::sleep(RECORD_POLL).await;
                }
                done => return done,
            }
        }
    }

    /// Locks (effect, event) for this transaction and reads what is known about it.
    pub async fn open(&self, event_id: Uuid, effect: &str) -> Result<OpenEffect, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1), hashtext($2))")
            .bind(effect)
            .bind(event_id.to_string())
            .execute(&mut *tx)
            .await?;
        let completed: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM side_effects WHERE event_id = $1 AND effect = $2)",
        )
        .bind(event_id)
        .bind(effect)
        .fetch_one(&mut *tx)
        .await?;
        let dead_letter = sqlx::query_as::<_, DeadLetter>(&format!(
            "SELECT {COLUMNS} FROM dead_letters WHERE event_id = $1 AND effect = $2 FOR UPDATE"
        ))
        .bind(event_id)
        .bind(effect)
        .fetch_optional(&mut *tx)
        .await?;
        Ok(OpenEffect {
            tx,
            event_id,
            effect: effect.to_owned(),
            completed,
            dead_letter,
        })
    }
}

/// A locked (effect, event) pair. Dropping it rolls back and releases the lock.
pub struct OpenEffect {
    tx: Transaction<'static, Postgres>,
    event_id: Uuid,
    effect: String,
    completed: bool,
    dead_letter: Option<DeadLetter>,
}

impl OpenEffect {
    /// Whether the effect already happened.
    pub fn is_completed(&self) -> bool {
        self.completed
    }

    /// The dead letter of this effect, if it has one.
    pub fn dead_letter(&self) -> Option<&DeadLetter> {
        self.dead_letter.as_ref()
    }

    /// Releases the lock without recording anything.
    pub async fn release(self) -> Result<(), sqlx::Error> {
        self.tx.commit().await
    }

    /// Records that the effect happened (resolving its dead letter, if any) and commits.
    pub async fn complete(mut self) -> Result<(), sqlx::Error> {
        mark_completed(&mut self.tx, self.event_id, &self.effect).await?;
        self.tx.commit().await
    }

    /// Turns the effect into a dead letter after its last failed attempt, and commits.
    /// Returns the new dead letter's id (`None` when the effect already had one).
    pub async fn bury(
        mut self,
        subject: &str,
        event: &Value,
        error: &str,
        attempts: i32,
    ) -> Result<Option<Uuid>, sqlx::Error> {
        let id: Option<Uuid> = sqlx::query_scalar(
            "INSERT INTO dead_letters (id, event_id, effect, subject, event, error, attempts)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (event_id, effect) DO NOTHING RETURNING id",
        )
        .bind(Uuid::now_v7())
        .bind(self.event_id)
        .bind(&self.effect)
        .bind(subject)
        .bind(event)
        .bind(error)
        .bind(attempts)
        .fetch_optional(&mut *self.tx)
        .await?;
        self.tx.commit().await?;
        Ok(id)
    }

    /// Records one more failed attempt on the dead letter, and commits.
    pub async fn record_failure(mut self, error: &str) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE dead_letters SET attempts = attempts + 1, error = $3, updated_at = now()
             WHERE event_id = $1 AND effect = $2",
        )
        .bind(self.event_id)
        .bind(&self.effect)
        .bind(error)
        .execute(&mut *self.tx)
        .await?;
        self.tx.commit().await
    }
}

/// Inserts the effect's row and resolves its dead letter, if any.
async fn mark_completed(
    conn: &mut sqlx::PgConnection,
    event_id: Uuid,
    effect: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO side_effects (event_id, effect) VALUES ($1, $2) ON CONFLICT DO NOTHING")
        .bind(event_id)
        .bind(effect)
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "UPDATE dead_letters SET status = 'resolved', updated_at = now()
         WHERE event_id = $1 AND effect = $2 AND status = 'dead'",
    )
    .bind(event_id)
    .bind(effect)
    .execute(&mut *conn)
    .await?;
    Ok(())
}
