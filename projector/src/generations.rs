//! Rebuilds without downtime: every projection's tables and Redis documents are built
//! again as a new *generation* beside the live one, while readers and the live projector
//! go on with the live one, and then swapped in at once.
//!
//! A run ([`Generations::start`]) goes through these phases, recorded in
//! `projection_rebuilds` every second (the heartbeat), so the console and `ops` follow it:
//!
//! 1. `copying`: the schema `rm_g<n>` gets an empty copy of every table of
//!    [`crate::registry::PROJECTIONS`] (columns, defaults, checks, indexes, foreign keys).
//! 2. `replaying`: every event of the store is replayed into it with the same fold as the
//!    live projection ([`crate::rebuild`]), over a pool whose `search_path` puts `rm_g<n>`
//!    first, so the very SQL of the projections writes there; `eventsDone` of `eventsTotal`.
//! 3. `catching up`: rounds of replay from where the last one ended (less a margin, for
//!    events that committed late with an earlier position) until little is new.
//! 4. `filling redis`: the documents of the new generation are written to a key space of
//!    its own (`<prefix>:k<n>`), beside those the readers use.
//! 5. `swapping`: with the projection lock held exclusively (live projector transactions
//!    wait; readers do not), the last events are applied, every stream that the live
//!    tables have further along is caught up from the store, the counts are checked (no
//!    stream behind the store, no fewer rows than live), and then, in one transaction,
//!    the live tables move to `rm_g<old>` and the new ones to `public` (with the live
//!    tables' triggers and index names), the generations table records the swap and every
//!    reader is told (`row_changes`). Readers' prepared statements name tables, not
//!    objects, so their next query reads the new tables.
//!
//! If a check fails or anything errs, the new generation is dropped and the live one was
//! never touched. The generation swapped out stays in `rm_g<old>` until it is dropped
//! ([`Generations::drop_generation`]); activating it again ([`Kind::Activate`]) runs the
//! same phases from its retired position instead of from the first event.
//! A run whose projector died stays `running` without heartbeat: after
//! [`ABANDONED_AFTER`] the next start marks it failed and drops what it built.

use crate::documents::Documents;
use crate::rebuild::{RebuildLimits, Replayed, Resume};
use crate::registry::PROJECTIONS;
use crate::top::TopSellers;
use crate::{RebuildError, store};
use chrono::{DateTime, Utc};
use runtime::RedisHandle;
use serde::Serialize;
use sqlx::postgres::PgPoolOptions;
use sqlx::{Connection, Executor, PgConnection, PgPool};
use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use uuid::Uuid;

/// Advisory lock key that takes starts one at a time.
const START_LOCK: i64 = 0x726d_6765_6e5f_7631;
/// How often a run records its progress.
const HEARTBEAT: Duration = Duration::from_secs(1);
/// A running run that has not recorded progress for this long lost its projector.
pub const ABANDONED_AFTER: Duration = Duration::from_secs(60);
/// Positions replayed again at the start of each catch-up round: an event that
/// committed after a later one has an earlier position.
const LATE_COMMIT_MARGIN: i64 = 10_000;
/// Catch-up rounds at most before the swap.
const CATCH_UP_ROUNDS: usize = 5;
/// A round that applied fewer events than this is close enough to swap.
const CAUGHT_UP: u64 = 1_000;
/// How long the documents of the generation swapped out are kept: readers move to the
/// new key space within their poll interval (250 ms), this is ample.
const OLD_DOCUMENTS_GRACE: Duration = Duration::from_secs(3);
/// How long the swap waits for its table locks before it lets readers through and tries
/// again: readers queue behind a waiting exclusive lock, so this is how long one may wait.
const SWAP_LOCK_TIMEOUT: &str = "200ms";
/// Swap attempts before the run fails.
const SWAP_ATTEMPTS: usize = 25;

/// The schema a generation's tables are in while it is not live.
pub fn schema_of(generation: i64) -> String {
    format!("rm_g{generation}")
}

/// What a run does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Builds a new generation from the whole event store.
    Rebuild,
    /// Makes a retired generation live again, caught up from where it stopped.
    Activate(i64),
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Rebuild => "rebuild",
            Kind::Activate(_) => "activate",
        }
    }
}

/// Why a run cannot start, or a generation cannot be dropped.
#[derive(Debug, thiserror::Error)]
pub enum GenerationError {
    /// Another run is going on.
    #[error("rebuild {0} is running; one runs at a time")]
    Running(Uuid),
    /// No such generation.
    #[error("no generation {0}")]
    NotFound(i64),
    /// The generation is live, building, failed or dropped.
    #[error("generation {generation} is {state}; only a retired generation can be {what}")]
    NotRetired {
        /// The generation.
        generation: i64,
        /// Its state.
        state: String,
        /// What was asked.
        what: &'static str,
    },
    /// Its tables no longer have the live tables' columns (a migration changed them).
    #[error("generation {0} was retired before a migration changed the read models; rebuild instead")]
    Outdated(i64),
    /// Postgres failed.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

/// One run, with its progress.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RebuildRun {
    /// Its id.
    pub id: Uuid,
    /// `rebuild` (a new generation) or `activate` (a retired one made live again).
    pub kind: String,
    /// The generation it builds or activates.
    pub generation: i64,
    /// The generation that was live when it started.
    pub from_generation: i64,
    /// The administrator who started it.
    pub actor_id: Uuid,
    /// Why, as the operator said.
    pub reason: Option<String>,
    /// `running`, `done` (swapped in) or `failed` (the live generation is untouched).
    pub status: String,
    /// `preparing`, `copying`, `replaying`, `catching up`, `filling redis`, `swapping`,
    /// `done` or `failed`.
    pub phase: String,
    /// Whether it is `running` but has not moved for a minute (its projector stopped);
    /// the next start marks it failed.
    pub stalled: bool,
    /// Events to replay (grows while catching up).
    pub events_total: i64,
    /// Events replayed so far.
    pub events_done: i64,
    /// `eventsDone` of `eventsTotal`, in percent.
    pub percent: f64,
    /// Events replayed per second so far.
    pub rate_per_second: Option<f64>,
    /// Seconds to go at that rate, while running.
    pub eta_seconds: Option<f64>,
    /// The counts compared before the swap, per projection.
    pub checks: Option<serde_json::Value>,
    /// Why it failed.
    pub error: Option<String>,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// When it last moved.
    pub updated_at: DateTime<Utc>,
    /// When it ended.
    pub finished_at: Option<DateTime<Utc>>,
}

#[derive(sqlx::FromRow)]
struct RunRow {
    id: Uuid,
    kind: String,
    generation: i64,
    from_generation: i64,
    actor_id: Uuid,
    reason: Option<String>,
    status: String,
    phase: String,
    events_total: i64,
    events_done: i64,
    checks: Option<serde_json::Value>,
    error: Option<String>,
    started_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    finished_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
}

const RUN_COLUMNS: &str = "id, kind, generation, from_generation, actor_id, reason, status, phase, \
     events_total, events_done, checks, error, started_at, updated_at, finished_at, now() AS now";

impl From<RunRow> for RebuildRun {
    fn from(row: RunRow) -> Self {
        let running = row.status == "running";
        let end = row.finished_at.unwrap_or(row.updated_at);
        let elapsed = (end - row.started_at).num_milliseconds().max(1) as f64 / 1000.0;
        let rate = (row.events_done > 0).then(|| row.events_done as f64 / elapsed);
        let eta = rate
            .filter(|_| running)
            .map(|rate| (row.events_total - row.events_done).max(0) as f64 / rate);
        let percent = match (row.status.as_str(), row.events_total) {
            ("done", _) => 100.0,
            (_, 0) => 0.0,
            (_, total) => (row.events_done as f64 * 100.0 / total as f64).min(100.0),
        };
        let stalled = running
            && (row.now - row.updated_at)
                .to_std()
                .is_ok_and(|idle| idle > ABANDONED_AFTER);
        Self {
            id: row.id,
            kind: row.kind,
            generation: row.generation,
            from_generation: row.from_generation,
            actor_id: row.actor_id,
            reason: row.reason,
            status: row.status,
            phase: row.phase,
            stalled,
            events_total: row.events_total,
            events_done: row.events_done,
            percent,
            rate_per_second: rate,
            eta_seconds: eta,
            checks: row.checks,
            error: row.error,
            started_at: row.started_at,
            updated_at: row.updated_at,
            finished_at: row.finished_at,
        }
    }
}

/// One generation of the read models.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Generation {
    /// Its number (1 is the tables the migrations created).
    pub generation: i64,
    /// The Redis key space of its documents.
    pub keyspace: i64,
    /// `building`, `live`, `retired` (kept for a rollback), `dropped` or `failed`.
    pub state: String,
    /// Where its tables are: `public` while live, `rm_g<n>` while building or retired.
    pub schema: String,
    /// The event-store position its tables reflect, once retired.
    pub position: Option<i64>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last became live.
    pub live_since: Option<DateTime<Utc>>,
    /// When it was last swapped out.
    pub retired_at: Option<DateTime<Utc>>,
}

const GENERATION_COLUMNS: &str = "generation, keyspace, state, \
     CASE WHEN state = 'live' THEN 'public' ELSE 'rm_g' || generation END AS schema, \
     position, created_at, live_since, retired_at";

/// How a run ended.
struct End {
    status: &'static str,
    error: Option<String>,
    done: i64,
    total: i64,
    checks: Option<serde_json::Value>,
}

/// Attempts at recording how a run ended.
const END_ATTEMPTS: u32 = 15;

/// What a run is working on, shared with its heartbeat.
#[derive(Debug, Default)]
struct Progress {
    phase: Mutex<&'static str>,
    total: AtomicU64,
    done: AtomicU64,
}

impl Progress {
    fn enter(&self, phase: &'static str) {
        tracing::info!(rebuild.phase = phase, "rebuild: {phase}");
        if let Ok(mut current) = self.phase.lock() {
            *current = phase;
        }
    }

    fn phase(&self) -> &'static str {
        self.phase.lock().map_or("preparing", |phase| *phase)
    }
}

/// A run being carried out.
#[derive(Debug, Clone, Copy)]
struct Job {
    id: Uuid,
    kind: Kind,
    generation: i64,
    keyspace: i64,
    from_generation: i64,
    from_keyspace: i64,
}

/// What the swap changed, for the documents written after it.
#[derive(Debug, Default)]
struct Swapped {
    checks: serde_json::Value,
    /// Streams whose rows changed under the lock, per projection name.
    touched: HashMap<&'static str, BTreeSet<Uuid>>,
}

/// Starts, lists and carries out rebuilds without downtime.
#[derive(Clone)]
pub struct Generations {
    pool: PgPool,
    redis: RedisHandle,
    documents: Documents,
    top: TopSellers,
    limits: RebuildLimits,
}

impl Generations {
    /// Rebuilds over `pool`, writing documents and the best-seller set to `redis`.
    pub fn new(
        pool: PgPool,
        redis: RedisHandle,
        documents: Documents,
        top: TopSellers,
        limits: RebuildLimits,
    ) -> Self {
        Self {
            pool,
            redis,
            documents,
            top,
            limits,
        }
    }

    /// Starts a run in the background (recorded in the operator actions as
    /// `projection.rebuild` or `projection.activate`); it goes on after this returns.
    pub async fn start(
        &self,
        kind: Kind,
        actor: Uuid,
        reason: Option<&str>,
    ) -> Result<RebuildRun, GenerationError> {
        self.abandon_stale().await?;
        let mut tx = self.pool.begin().await?;
        // Starts are taken one at a time; a run going on (a swap included) answers first.
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(START_LOCK)
            .execute(&mut *tx)
            .await?;
        if let Some(running) =
            sqlx::query_scalar::<_, Uuid>("SELECT id FROM projection_rebuilds WHERE status = 'running'")
                .fetch_optional(&mut *tx)
                .await?
        {
            return Err(GenerationError::Running(running));
        }
        let (from_generation, from_keyspace): (i64, i64) =
            sqlx::query_as("SELECT generation, keyspace FROM read_model_generations WHERE state = 'live'")
                .fetch_one(&mut *tx)
                .await?;
        let keyspace: i64 = sqlx::query_scalar("SELECT max(keyspace) + 1 FROM read_model_generations")
            .fetch_one(&mut *tx)
            .await?;
        let generation = match kind {
            Kind::Rebuild => {
                let generation: i64 =
                    sqlx::query_scalar("SELECT max(generation) + 1 FROM read_model_generations")
                        .fetch_one(&mut *tx)
                        .await?;
                sqlx::query(
                    "INSERT INTO read_model_generations (generation, keyspace, state) VALUES ($1, $2, 'building')",
                )
                .bind(generation)
                .bind(keyspace)
                .execute(&mut *tx)
                .await?;
                generation
            }
            Kind::Activate(generation) => {
                let state: Option<String> = sqlx::query_scalar(
                    "SELECT state FROM read_model_generations WHERE generation = $1 FOR UPDATE",
                )
                .bind(generation)
                .fetch_optional(&mut *tx)
                .await?;
                match state.as_deref() {
                    None => return Err(GenerationError::NotFound(generation)),
                    Some("retired") => {}
                    Some(state) => {
                        return Err(GenerationError::NotRetired {
                            generation,
                            state: state.to_owned(),
                            what: "activated",
                        });
                    }
                }
                if !same_columns(&mut tx, &schema_of(generation)).await? {
                    return Err(GenerationError::Outdated(generation));
                }
                sqlx::query("UPDATE read_model_generations SET keyspace = $2 WHERE generation = $1")
                    .bind(generation)
                    .bind(keyspace)
                    .execute(&mut *tx)
                    .await?;
                generation
            }
        };
        let id = Uuid::now_v7();
        sqlx::query(
            "INSERT INTO projection_rebuilds (id, kind, generation, from_generation, actor_id, reason)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(id)
        .bind(kind.name())
        .bind(generation)
        .bind(from_generation)
        .bind(actor)
        .bind(reason)
        .execute(&mut *tx)
        .await?;
        runtime::audit::record(
            &mut *tx,
            actor,
            &format!("projection.{}", kind.name()),
            id,
            reason,
            &format!("started: generation {generation} to replace {from_generation}"),
        )
        .await?;
        tx.commit().await?;
        let job = Job {
            id,
            kind,
            generation,
            keyspace,
            from_generation,
            from_keyspace,
        };
        tokio::spawn(self.clone().carry_out(job));
        self.find(id)
            .await?
            .ok_or(GenerationError::Database(sqlx::Error::RowNotFound))
    }

    /// One run.
    pub async fn find(&self, id: Uuid) -> Result<Option<RebuildRun>, sqlx::Error> {
        let row: Option<RunRow> = sqlx::query_as(&format!(
            "SELECT {RUN_COLUMNS} FROM projection_rebuilds WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(RebuildRun::from))
    }

    /// A page of runs, newest first, and how many there are.
    pub async fn list(&self, page: u32, per_page: u32) -> Result<(Vec<RebuildRun>, i64), sqlx::Error> {
        let total: i64 = sqlx::query_scalar("SELECT count(*) FROM projection_rebuilds")
            .fetch_one(&self.pool)
            .await?;
        let offset = i64::from(page.saturating_sub(1)) * i64::from(per_page);
        let rows: Vec<RunRow> = sqlx::query_as(&format!(
            "SELECT {RUN_COLUMNS} FROM projection_rebuilds ORDER BY started_at DESC, id DESC LIMIT $1 OFFSET $2"
        ))
        .bind(i64::from(per_page))
        .bind(offset)
        .fetch_all(&self.pool)
        .await?;
        Ok((rows.into_iter().map(RebuildRun::from).collect(), total))
    }

    /// The run going on, if any (one without heartbeat for [`ABANDONED_AFTER`] is not).
    pub async fn running(&self) -> Result<Option<RebuildRun>, sqlx::Error> {
        let row: Option<RunRow> = sqlx::query_as(&format!(
            "SELECT {RUN_COLUMNS} FROM projection_rebuilds
             WHERE status = 'running' AND updated_at > now() - make_interval(secs => $1)"
        ))
        .bind(ABANDONED_AFTER.as_secs_f64())
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(RebuildRun::from))
    }

    /// Every generation, newest first.
    pub async fn generations(&self) -> Result<Vec<Generation>, sqlx::Error> {
        sqlx::query_as(&format!(
            "SELECT {GENERATION_COLUMNS} FROM read_model_generations ORDER BY generation DESC"
        ))
        .fetch_all(&self.pool)
        .await
    }

    /// Drops a retired generation: its tables and its Redis documents (recorded as
    /// `projection.drop`).
    pub async fn drop_generation(
        &self,
        generation: i64,
        actor: Uuid,
        reason: Option<&str>,
    ) -> Result<Generation, GenerationError> {
        let mut tx = self.pool.begin().await?;
        let found: Option<(String, i64)> = sqlx::query_as(
            "SELECT state, keyspace FROM read_model_generations WHERE generation = $1 FOR UPDATE",
        )
        .bind(generation)
        .fetch_optional(&mut *tx)
        .await?;
        let keyspace = match found {
            None => return Err(GenerationError::NotFound(generation)),
            Some((state, keyspace)) if state == "retired" => keyspace,
            Some((state, _)) => {
                return Err(GenerationError::NotRetired {
                    generation,
                    state,
                    what: "dropped",
                });
            }
        };
        if let Some(running) = sqlx::query_scalar::<_, Uuid>(
            "SELECT id FROM projection_rebuilds WHERE status = 'running' AND generation = $1",
        )
        .bind(generation)
        .fetch_optional(&mut *tx)
        .await?
        {
            return Err(GenerationError::Running(running));
        }
        sqlx::query(&format!(
            "DROP SCHEMA IF EXISTS {} CASCADE",
            schema_of(generation)
        ))
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE read_model_generations SET state = 'dropped' WHERE generation = $1")
            .bind(generation)
            .execute(&mut *tx)
            .await?;
        runtime::audit::record(
            &mut *tx,
            actor,
            "projection.drop",
            Uuid::nil(),
            reason,
            &format!("generation {generation} dropped"),
        )
        .await?;
        tx.commit().await?;
        self.clear_documents(keyspace).await;
        let dropped: Generation = sqlx::query_as(&format!(
            "SELECT {GENERATION_COLUMNS} FROM read_model_generations WHERE generation = $1"
        ))
        .bind(generation)
        .fetch_one(&self.pool)
        .await?;
        Ok(dropped)
    }

    /// Marks runs without heartbeat failed, dropping the generations they were building.
    async fn abandon_stale(&self) -> Result<(), sqlx::Error> {
        let abandoned: Vec<(String, i64)> = sqlx::query_as(
            "UPDATE projection_rebuilds r
             SET status = CASE WHEN g.state = 'live' THEN 'done' ELSE 'failed' END,
                 phase = CASE WHEN g.state = 'live' THEN 'done' ELSE 'failed' END,
                 finished_at = now(), updated_at = now(),
                 error = CASE WHEN g.state = 'live' THEN NULL
                         ELSE 'abandoned: no progress for a minute (its projector stopped)' END
             FROM read_model_generations g
             WHERE g.generation = r.generation
               AND r.status = 'running' AND r.updated_at < now() - make_interval(secs => $1)
             RETURNING r.kind, r.generation",
        )
        .bind(ABANDONED_AFTER.as_secs_f64())
        .fetch_all(&self.pool)
        .await?;
        for (kind, generation) in abandoned {
            tracing::warn!(generation, kind, "a rebuild without heartbeat was ended");
        }
        // Whatever is still building without a run going on: its run failed or was
        // abandoned, and its tables are dropped here if that run could not.
        let orphans: Vec<i64> = sqlx::query_scalar(
            "SELECT generation FROM read_model_generations g WHERE state = 'building'
             AND NOT EXISTS (SELECT 1 FROM projection_rebuilds r WHERE r.generation = g.generation AND r.status = 'running')",
        )
        .fetch_all(&self.pool)
        .await?;
        for generation in orphans {
            self.discard_building(generation).await?;
        }
        Ok(())
    }

    /// Drops the tables of a generation that did not become live.
    async fn discard_building(&self, generation: i64) -> Result<(), sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        let building = sqlx::query(
            "UPDATE read_model_generations SET state = 'failed' WHERE generation = $1 AND state = 'building'",
        )
        .bind(generation)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if building > 0 {
            sqlx::query(&format!(
                "DROP SCHEMA IF EXISTS {} CASCADE",
                schema_of(generation)
            ))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await
    }

    /// Carries a run out and records how it ended.
    async fn carry_out(self, job: Job) {
        let progress = Arc::new(Progress::default());
        progress.enter("preparing");
        // Aborted when dropped, so a panic of the run stops its heartbeat too (the run is
        // then abandoned, not kept alive forever).
        let heartbeat = tokio_util::task::AbortOnDropHandle::new(tokio::spawn(heartbeat(
            self.pool.clone(),
            job.id,
            progress.clone(),
        )));
        let result = boxed(self.build(job, &progress)).await;
        drop(heartbeat);
        let done = progress.done.load(Ordering::Relaxed) as i64;
        let total = progress.total.load(Ordering::Relaxed) as i64;
        match result {
            Ok(swapped) => {
                tracing::info!(generation = job.generation, events = done, "rebuild: swapped in");
                let end = End {
                    status: "done",
                    error: None,
                    done,
                    total,
                    checks: Some(swapped.checks.clone()),
                };
                boxed(self.record_end(job.id, end)).await;
                boxed(self.after_swap(job)).await;
            }
            Err(error) => {
                tracing::warn!(generation = job.generation, error = %error, "rebuild failed; the live generation stays");
                let end = End {
                    status: "failed",
                    error: Some(error.to_string()),
                    done,
                    total,
                    checks: None,
                };
                boxed(self.record_end(job.id, end)).await;
                if job.kind == Kind::Rebuild
                    && let Err(error) = boxed(self.discard_building(job.generation)).await
                {
                    // The next start drops it (its run is no longer running).
                    tracing::warn!(error = %error, "the tables of a failed rebuild were not dropped");
                }
                boxed(self.clear_documents(job.keyspace)).await;
            }
        }
    }

    /// Records how a run ended, trying again for a while when Postgres is away (a run
    /// left `running` is abandoned by the next start after [`ABANDONED_AFTER`]).
    async fn record_end(&self, id: Uuid, end: End) {
        for attempt in 1..=END_ATTEMPTS {
            let recorded = sqlx::query(
                "UPDATE projection_rebuilds
                 SET status = $2, phase = $2, error = $3, events_done = $4,
                     events_total = GREATEST(events_total, $5, $4), checks = COALESCE($6, checks),
                     updated_at = now(), finished_at = now()
                 WHERE id = $1",
            )
            .bind(id)
            .bind(end.status)
            .bind(&end.error)
            .bind(end.done)
            .bind(end.total)
            .bind(&end.checks)
            .execute(&self.pool)
            .await;
            match recorded {
                Ok(_) => return,
                Err(error) => {
                    tracing::warn!(attempt, error = %error, "the end of a rebuild was not recorded; trying again");
                    tokio::time::sleep(HEARTBEAT * 2).await;
                }
            }
        }
    }

    /// Every phase up to and including the swap.
    async fn build(&self, job: Job, progress: &Progress) -> Result<Swapped, RebuildError> {
        let schema = schema_of(job.generation);
        let types: Vec<String> = PROJECTIONS
            .iter()
            .map(|projection| projection.stream_type().to_owned())
            .collect();
        let mut from = match job.kind {
            Kind::Rebuild => {
                progress.enter("copying");
                boxed(copy_tables(&self.pool, &schema)).await?;
                vec![Resume::Empty; PROJECTIONS.len()]
            }
            Kind::Activate(_) => {
                let position: Option<i64> =
                    sqlx::query_scalar("SELECT position FROM read_model_generations WHERE generation = $1")
                        .bind(job.generation)
                        .fetch_one(&self.pool)
                        .await?;
                let start = position.unwrap_or(0).saturating_sub(LATE_COMMIT_MARGIN).max(0);
                vec![Resume::After(start); PROJECTIONS.len()]
            }
        };
        let after = match from.first() {
            Some(Resume::After(position)) => *position,
            _ => 0,
        };
        let total: i64 =
            sqlx::query_scalar("SELECT count(*) FROM events WHERE stream_type = ANY($1) AND position > $2")
                .bind(&types)
                .bind(after)
                .fetch_one(&self.pool)
                .await?;
        progress
            .total
            .store(u64::try_from(total).unwrap_or(0), Ordering::Relaxed);

        let shadow = boxed(shadow_pool(&self.pool, &schema)).await?;
        let mut conn = shadow.acquire().await?;
        progress.enter("replaying");
        boxed(replay_round(&mut conn, self.limits, &mut from, progress, None)).await?;
        // What projections derive in each other's rows is computed once the catch-up
        // below is done (and again under the lock).
        progress.enter("catching up");
        for _ in 0..CATCH_UP_ROUNDS {
            if boxed(replay_round(&mut conn, self.limits, &mut from, progress, None)).await? < CAUGHT_UP {
                break;
            }
        }
        // The full comparison with the store and the live tables once before the lock, so
        // the one under it finds little to do.
        let position: i64 = sqlx::query_scalar("SELECT coalesce(max(position), 0) FROM events")
            .fetch_one(&mut *conn)
            .await?;
        for projection in PROJECTIONS {
            let table = projection.tables().first().copied().unwrap_or_default();
            let behind = boxed(behind(&mut conn, table, projection.stream_type(), position)).await?;
            if !behind.is_empty() {
                projection.catch_up(&mut conn, self.limits, &behind).await?;
            }
        }
        for projection in PROJECTIONS {
            projection.after_replay(&mut conn).await?;
        }
        for table in all_tables() {
            sqlx::query(&format!("ANALYZE {schema}.{table}"))
                .execute(&mut *conn)
                .await?;
        }
        drop(conn);

        progress.enter("filling redis");
        boxed(self.fill_documents(&shadow, job.keyspace)).await;

        progress.enter("swapping");
        // A connection of its own holds the lock (closing it, also by a crash, releases it).
        let mut conn = shadow.acquire().await?.detach();
        sqlx::query("SELECT pg_advisory_lock($1)")
            .bind(store::PROJECTION_LOCK)
            .execute(&mut conn)
            .await?;
        let swapped = boxed(self.swap_locked(&mut conn, &shadow, job, &mut from, progress)).await;
        let unlocked = sqlx::query("SELECT pg_advisory_unlock($1)")
            .bind(store::PROJECTION_LOCK)
            .execute(&mut conn)
            .await;
        if let Err(error) = unlocked {
            tracing::warn!(error = %error, "rebuild lock not released; closing its connection");
        }
        if let Err(error) = conn.close().await {
            tracing::debug!(error = %error, "rebuild lock connection not closed cleanly");
        }
        shadow.close().await;
        swapped
    }

    /// Under the exclusive lock: the last events, the streams live has further along,
    /// the checks, the swap and the best-seller set.
    async fn swap_locked(
        &self,
        conn: &mut PgConnection,
        shadow: &PgPool,
        job: Job,
        from: &mut [Resume],
        progress: &Progress,
    ) -> Result<Swapped, RebuildError> {
        let mut swapped = Swapped::default();
        boxed(replay_round(
            conn,
            self.limits,
            from,
            progress,
            Some(&mut swapped.touched),
        ))
        .await?;
        let position: i64 = sqlx::query_scalar("SELECT coalesce(max(position), 0) FROM events")
            .fetch_one(&mut *conn)
            .await?;
        let mut checks = Vec::new();
        for projection in PROJECTIONS {
            let table = projection.tables().first().copied().unwrap_or_default();
            let stream_type = projection.stream_type();
            let behind = boxed(behind(conn, table, stream_type, position)).await?;
            if !behind.is_empty() {
                projection.catch_up(conn, self.limits, &behind).await?;
                swapped
                    .touched
                    .entry(projection.name())
                    .or_default()
                    .extend(behind);
            }
            let still_behind = boxed(behind_count(conn, table, stream_type, position)).await?;
            let (rows, live_rows, streams): (i64, i64, i64) = sqlx::query_as(&format!(
                "SELECT (SELECT count(*) FROM {table}), (SELECT count(*) FROM public.{table}),
                        (SELECT count(DISTINCT stream_id) FROM events WHERE stream_type = $1)"
            ))
            .bind(stream_type)
            .fetch_one(&mut *conn)
            .await?;
            let passed = still_behind == 0 && rows >= live_rows && rows <= streams;
            checks.push(serde_json::json!({
                "projection": projection.name(),
                "rows": rows,
                "liveRows": live_rows,
                "streams": streams,
                "behind": still_behind,
                "passed": passed,
            }));
        }
        for projection in PROJECTIONS {
            projection.after_replay(conn).await?;
        }
        swapped.checks = serde_json::Value::Array(checks.clone());
        if let Some(failed) = checks.iter().find(|check| check["passed"] != true) {
            return Err(RebuildError::Check(format!(
                "the counts of the new generation do not add up, nothing swapped: {failed}"
            )));
        }
        boxed(self.write_changed(shadow, job, &swapped)).await;
        let mut attempt = 0;
        loop {
            attempt += 1;
            match boxed(swap_tables(conn, job, position)).await {
                Ok(()) => break,
                Err(error) if attempt < SWAP_ATTEMPTS && is_lock_timeout(&error) => {
                    tracing::warn!(attempt, "rebuild: tables busy; swapping again");
                    let jitter = u64::from(Uuid::now_v7().as_bytes()[15]);
                    tokio::time::sleep(Duration::from_millis(50 + jitter)).await;
                }
                Err(error) => return Err(error.into()),
            }
        }
        // Still under the lock, so no live score is written meanwhile.
        let refilled = match self.redis.get() {
            Some(mut redis) => {
                tokio::time::timeout(Duration::from_secs(5), self.top.refill(conn, &mut redis))
                    .await
                    .map_err(|_| "timed out".to_owned())
                    .and_then(|refilled| refilled.map_err(|error| error.to_string()))
            }
            None => Err("redis not connected".to_owned()),
        };
        if let Err(error) = refilled {
            tracing::warn!(
                error,
                "best sellers not refilled after the swap; readers use Postgres until re-seeded"
            );
            if let Some(mut redis) = self.redis.get() {
                let _ = tokio::time::timeout(Duration::from_secs(2), self.top.invalidate(&mut redis)).await;
            }
        }
        Ok(swapped)
    }

    /// The documents of the new generation from its tables (before the swap). Redis away
    /// does not stop a rebuild: readers fill documents on a miss.
    async fn fill_documents(&self, shadow: &PgPool, keyspace: i64) {
        let Some(redis) = self.redis.get() else {
            tracing::warn!("redis not connected; the new generation's documents are filled by readers");
            return;
        };
        let documents = self.documents.at(keyspace);
        match tokio::time::timeout(Duration::from_secs(600), documents.refill(shadow, &redis)).await {
            Ok(Ok(counts)) => tracing::info!(documents = counts.total(), "rebuild: documents written"),
            Ok(Err(error)) => {
                tracing::warn!(error = %error, "rebuild: documents not all written; readers fill them")
            }
            Err(_) => tracing::warn!("rebuild: writing documents timed out; readers fill them"),
        }
    }

    /// After the swap: the documents of what changed under the lock, then, once readers
    /// moved on, the old generation's documents are removed.
    async fn after_swap(&self, job: Job) {
        if let Some(redis) = self.redis.get() {
            let documents = self.documents.at(job.keyspace);
            let refilled = tokio::time::timeout(
                Duration::from_secs(120),
                documents.refill_products(&self.pool, &redis),
            )
            .await;
            match refilled {
                Ok(Ok(_)) => {}
                Ok(Err(error)) => {
                    tracing::warn!(error = %error, "product documents not all written after the swap")
                }
                Err(_) => tracing::warn!("writing the product documents after the swap timed out"),
            }
        }
        tokio::time::sleep(OLD_DOCUMENTS_GRACE).await;
        self.clear_documents(job.from_keyspace).await;
    }

    /// Under the lock, before the swap: the documents of the users and orders that
    /// changed since the new key space was filled, read from the new tables, so readers
    /// of the new key space never see them older. Redis failing does not stop the swap:
    /// readers fill what is missing.
    async fn write_changed(&self, shadow: &PgPool, job: Job, swapped: &Swapped) {
        let Some(redis) = self.redis.get() else {
            tracing::warn!("redis not connected; documents changed during the swap are filled by readers");
            return;
        };
        let ids = |name: &str| -> Vec<Uuid> {
            swapped
                .touched
                .get(name)
                .map(|ids| ids.iter().copied().collect())
                .unwrap_or_default()
        };
        let documents = self.documents.at(job.keyspace);
        let (users, orders) = (ids(crate::users::NAME), ids(crate::orders::NAME));
        let written = tokio::time::timeout(
            Duration::from_secs(5),
            documents.rewrite_changed(shadow, &redis, &users, &orders),
        )
        .await;
        match written {
            Ok(Ok(_)) => {}
            Ok(Err(error)) => {
                tracing::warn!(error = %error, "documents changed during the swap not all written")
            }
            Err(_) => tracing::warn!("writing the documents changed during the swap timed out"),
        }
    }

    /// Removes the documents of a key space that no reader uses any more.
    async fn clear_documents(&self, keyspace: i64) {
        let Some(mut redis) = self.redis.get() else {
            return;
        };
        let documents = self.documents.at(keyspace);
        match tokio::time::timeout(Duration::from_secs(120), documents.clear(&mut redis)).await {
            Ok(Ok(counts)) => tracing::info!(
                keyspace,
                documents = counts.total(),
                "documents of a past generation removed"
            ),
            Ok(Err(error)) => {
                tracing::warn!(keyspace, error = %error, "documents of a past generation not removed; they expire")
            }
            Err(_) => tracing::warn!(
                keyspace,
                "removing documents of a past generation timed out; they expire"
            ),
        }
    }
}

/// Every table of every projection.
fn all_tables() -> Vec<&'static str> {
    PROJECTIONS
        .iter()
        .flat_map(|projection| projection.tables())
        .copied()
        .collect()
}

/// Records a run's phase and progress every [`HEARTBEAT`], until aborted.
async fn heartbeat(pool: PgPool, id: Uuid, progress: Arc<Progress>) {
    let mut ticks = tokio::time::interval(HEARTBEAT);
    loop {
        ticks.tick().await;
        let done = progress.done.load(Ordering::Relaxed) as i64;
        let total = progress.total.load(Ordering::Relaxed) as i64;
        let recorded = sqlx::query(
            "UPDATE projection_rebuilds
             SET phase = $2, events_done = $3, events_total = GREATEST(events_total, $4, $3), updated_at = now()
             WHERE id = $1 AND status = 'running'",
        )
        .bind(id)
        .bind(progress.phase())
        .bind(done)
        .bind(total)
        .execute(&pool)
        .await;
        if let Err(error) = recorded {
            tracing::debug!(error = %error, "rebuild progress not recorded");
        }
    }
}

/// One round of replay of every projection from where each last stopped (less the
/// margin for late commits); how many events changed a row. Rows changed are added to
/// `touched` when given.
async fn replay_round(
    conn: &mut PgConnection,
    limits: RebuildLimits,
    from: &mut [Resume],
    progress: &Progress,
    mut touched: Option<&mut HashMap<&'static str, BTreeSet<Uuid>>>,
) -> Result<u64, RebuildError> {
    let mut applied = 0;
    for (projection, start) in PROJECTIONS.iter().zip(from.iter_mut()) {
        let replayed: Replayed = projection.replay(conn, limits, *start, &progress.done).await?;
        applied += replayed.applied;
        if let Some(touched) = touched.as_deref_mut() {
            touched
                .entry(projection.name())
                .or_default()
                .extend(replayed.touched);
        }
        *start = Resume::After(replayed.position.saturating_sub(LATE_COMMIT_MARGIN).max(0));
    }
    let done = progress.done.load(Ordering::Relaxed);
    progress.total.fetch_max(done, Ordering::Relaxed);
    Ok(applied)
}

/// Streams of `stream_type` whose row in the new tables is behind the store (up to
/// `position`) or behind the live table, or missing while the live table has it.
async fn behind(
    conn: &mut PgConnection,
    table: &str,
    stream_type: &str,
    position: i64,
) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar(&format!(
        "SELECT stream_id FROM (
             SELECT e.stream_id FROM (
                 SELECT stream_id, max(stream_version) AS version FROM events
                 WHERE stream_type = $1 AND position <= $2 GROUP BY stream_id
             ) e JOIN {table} n ON n.id = e.stream_id WHERE n.version < e.version
             UNION
             SELECT o.id FROM public.{table} o LEFT JOIN {table} n ON n.id = o.id
             WHERE n.id IS NULL OR n.version < o.version
         ) behind ORDER BY stream_id"
    ))
    .bind(stream_type)
    .bind(position)
    .fetch_all(conn)
    .await
}

async fn behind_count(
    conn: &mut PgConnection,
    table: &str,
    stream_type: &str,
    position: i64,
) -> Result<i64, sqlx::Error> {
    Ok(boxed(behind(conn, table, stream_type, position)).await?.len() as i64)
}

/// Whether every table of the live generation has the same columns in `schema`: names,
/// types, nullability and defaults, in the same order (readers' cached plans rely on
/// the order).
async fn same_columns(conn: &mut PgConnection, schema: &str) -> Result<bool, sqlx::Error> {
    for table in all_tables() {
        let columns = |schema: &str| {
            sqlx::query_scalar::<_, Option<String>>(
                "SELECT string_agg(column_name || ' ' || data_type || ' ' || is_nullable || ' ' || coalesce(column_default, ''), ', '
                        ORDER BY ordinal_position)
                 FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2",
            )
            .bind(schema.to_owned())
            .bind(table)
        };
        let live = columns("public").fetch_one(&mut *conn).await?;
        let retired = columns(schema).fetch_one(&mut *conn).await?;
        if live != retired {
            return Ok(false);
        }
    }
    Ok(true)
}

/// A small pool whose connections find `schema`'s tables first (and everything else,
/// the event store included, in `public`), without the request statement timeout.
async fn shadow_pool(pool: &PgPool, schema: &str) -> Result<PgPool, sqlx::Error> {
    let search_path = format!("SET search_path TO {schema}, public");
    PgPoolOptions::new()
        .max_connections(2)
        .after_connect(move |conn, _| {
            let search_path = search_path.clone();
            Box::pin(async move {
                conn.execute(search_path.as_str()).await?;
                conn.execute("SET statement_timeout = 0").await?;
                Ok(())
            })
        })
        .connect_with(pool.connect_options().as_ref().clone())
        .await
}

/// Creates `schema` with an empty copy of every projection table of `public`.
async fn copy_tables(pool: &PgPool, schema: &str) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
        .execute(&mut *tx)
        .await?;
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&mut *tx)
        .await?;
    let tables = all_tables();
    for table in &tables {
        sqlx::query(&format!(
            "CREATE TABLE {schema}.{table} (LIKE public.{table} INCLUDING ALL)"
        ))
        .execute(&mut *tx)
        .await?;
    }
    for table in &tables {
        let keys: Vec<(String, String)> = sqlx::query_as(
            "SELECT conname::text, pg_get_constraintdef(oid) FROM pg_constraint
             WHERE contype = 'f' AND conrelid = to_regclass('public.' || $1)",
        )
        .bind(*table)
        .fetch_all(&mut *tx)
        .await?;
        for (name, definition) in keys {
            // The referenced table is one of the copies too.
            let definition = definition
                .replace("REFERENCES public.", "REFERENCES ")
                .replace("REFERENCES ", &format!("REFERENCES {schema}."));
            sqlx::query(&format!(
                "ALTER TABLE {schema}.{table} ADD CONSTRAINT {name} {definition}"
            ))
            .execute(&mut *tx)
            .await?;
        }
    }
    tx.commit().await
}

/// Index definitions of a table without the index's name and schema, by name: how an
/// index of the copy is matched with the one of the live table it copies.
async fn indexes(
    conn: &mut PgConnection,
    schema: &str,
    table: &str,
) -> Result<Vec<(String, String)>, sqlx::Error> {
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT indexname::text, indexdef FROM pg_indexes WHERE schemaname = $1 AND tablename = $2",
    )
    .bind(schema)
    .bind(table)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(name, definition)| {
            let unique = definition.starts_with("CREATE UNIQUE");
            let shape = definition
                .split_once(" ON ")
                .map_or(definition.as_str(), |(_, rest)| rest)
                .replacen(&format!("{schema}."), "", 1);
            (name, format!("{unique} {shape}"))
        })
        .collect())
}

/// The swap itself, one transaction: the live tables to `rm_g<old>`, the new ones to
/// `public` with the live ones' triggers and index names; the generations recorded and
/// every reader told.
async fn swap_tables(conn: &mut PgConnection, job: Job, position: i64) -> Result<(), sqlx::Error> {
    let new_schema = schema_of(job.generation);
    let old_schema = schema_of(job.from_generation);
    let tables = all_tables();
    let mut tx = conn.begin().await?;
    sqlx::query(&format!("SET LOCAL lock_timeout = '{SWAP_LOCK_TIMEOUT}'"))
        .execute(&mut *tx)
        .await?;
    // Every table locked in one statement, so readers wait once, briefly, and never in
    // the middle of the moves.
    let every: Vec<String> = tables
        .iter()
        .flat_map(|table| [format!("public.{table}"), format!("{new_schema}.{table}")])
        .collect();
    sqlx::query(&format!(
        "LOCK TABLE {} IN ACCESS EXCLUSIVE MODE",
        every.join(", ")
    ))
    .execute(&mut *tx)
    .await?;
    sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS {old_schema}"))
        .execute(&mut *tx)
        .await?;
    let mut renames = Vec::new();
    for table in &tables {
        let triggers: Vec<(String, String)> = sqlx::query_as(
            "SELECT tgname::text, pg_get_triggerdef(oid) FROM pg_trigger
             WHERE tgrelid = to_regclass('public.' || $1) AND NOT tgisinternal",
        )
        .bind(*table)
        .fetch_all(&mut *tx)
        .await?;
        for (name, definition) in triggers {
            let present: bool = sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = to_regclass($1) AND tgname = $2)",
            )
            .bind(format!("{new_schema}.{table}"))
            .bind(&name)
            .fetch_one(&mut *tx)
            .await?;
            if !present {
                let definition = definition.replacen(
                    &format!(" ON public.{table} "),
                    &format!(" ON {new_schema}.{table} "),
                    1,
                );
                sqlx::query(&definition).execute(&mut *tx).await?;
            }
        }
        let live = boxed(indexes(&mut tx, "public", table)).await?;
        let copies = boxed(indexes(&mut tx, &new_schema, table)).await?;
        for (copy, shape) in copies {
            if let Some((name, _)) = live.iter().find(|(name, live)| *live == shape && *name != copy) {
                renames.push((copy, name.clone()));
            }
        }
    }
    for table in &tables {
        sqlx::query(&format!("ALTER TABLE public.{table} SET SCHEMA {old_schema}"))
            .execute(&mut *tx)
            .await?;
    }
    for table in &tables {
        sqlx::query(&format!("ALTER TABLE {new_schema}.{table} SET SCHEMA public"))
            .execute(&mut *tx)
            .await?;
    }
    for (copy, name) in renames {
        sqlx::query(&format!("ALTER INDEX public.{copy} RENAME TO {name}"))
            .execute(&mut *tx)
            .await?;
    }
    sqlx::query(
        "UPDATE read_model_generations SET state = 'retired', position = $2, retired_at = now() WHERE generation = $1",
    )
    .bind(job.from_generation)
    .bind(position)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "UPDATE read_model_generations SET state = 'live', live_since = now(), position = NULL WHERE generation = $1",
    )
    .bind(job.generation)
    .execute(&mut *tx)
    .await?;
    for table in &tables {
        sqlx::query("SELECT pg_notify('row_changes', $1)")
            .bind(*table)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await
}

/// The future boxed as `Send`: this pins its lifetimes, which a spawned future made of
/// sqlx and redis calls otherwise fails to prove `Send` for every lifetime.
fn boxed<'a, T>(future: impl Future<Output = T> + Send + 'a) -> futures::future::BoxFuture<'a, T> {
    Box::pin(future)
}

fn is_lock_timeout(error: &sqlx::Error) -> bool {
    error
        .as_database_error()
        .and_then(|error| error.code())
        .is_some_and(|code| code == "55P03" || code == "40P01")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_generation_has_a_schema_of_its_own() {
        assert_eq!(schema_of(2), "rm_g2");
        assert_ne!(schema_of(2), schema_of(12));
    }
}
