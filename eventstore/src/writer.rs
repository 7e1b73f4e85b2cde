//! Group commit: concurrent units of work share one Postgres transaction and one fsync.
//!
//! Every command's [`Commit`] goes to a channel. A few writer tasks (two by default, so
//! one gathers and writes while the other waits for its commit) each take what is waiting,
//! up to a batch limit, and write it in one transaction:
//!
//! * units that only append events (most commands) are written by one statement for the
//!   whole batch: `INSERT … ON CONFLICT (stream_id, stream_version) DO NOTHING`, with the
//!   outbox rows in the same statement. A unit that lost a race for a stream version gets
//!   back fewer rows than it sent: its rows are deleted again and it alone is answered
//!   with [`StoreError::VersionConflict`];
//! * units that also claim unique values, store an idempotent answer or change write-side
//!   tables run one after another, each inside a savepoint, so a claim taken, a key raced
//!   or a conflict rolls back that unit alone.
//!
//! Then one commit, and each unit is answered with its own result. No waiting window is
//! added: under load the batch is whatever arrived while the previous one committed, and
//! a lone command is written at once.

use crate::{EventEnvelope, EventMetadata, IdempotencyRecord, StoreError};
use chrono::{DateTime, Utc};
use domain::DomainEvent;
use futures::FutureExt;
use futures::future::BoxFuture;
use serde_json::Value;
use sqlx::{PgConnection, PgPool};
use std::any::Any;
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::{Mutex, Notify, mpsc, oneshot};
use uuid::Uuid;

/// Most units written in one transaction.
pub const MAX_BATCH: usize = 512;
/// Units with savepoints (claims, idempotent answers, write-side SQL) in one transaction.
pub const MAX_SAVEPOINTS: usize = 48;
/// Writer tasks, each with its own transaction in flight.
pub const WRITERS: usize = 2;
/// Units waiting for a writer before callers wait to submit.
const QUEUE: usize = 4096;

/// An event to append, already encoded.
#[derive(Debug, Clone)]
pub struct NewEvent {
    /// `<streamType>.<eventName>`.
    pub event_type: &'static str,
    /// Schema version of `data`.
    pub schema_version: i32,
    /// The payload.
    pub data: Value,
}

/// The state of a stream after a commit, kept by the engine's aggregate cache.
pub(crate) type SharedState = Arc<dyn Any + Send + Sync>;

/// Events for one stream that must be at `expected_version` (0: a new stream).
pub struct StreamChange {
    /// Aggregate type.
    pub stream_type: &'static str,
    /// Aggregate id.
    pub stream_id: Uuid,
    /// The version the events were decided on.
    pub expected_version: i64,
    /// The events, in order.
    pub events: Vec<NewEvent>,
    /// The decider's state after these events, remembered once they commit.
    pub(crate) after: Option<SharedState>,
}

impl StreamChange {
    /// Encodes domain events for one stream.
    pub fn of<E: DomainEvent>(stream_id: Uuid, expected_version: i64, events: &[E]) -> Self {
        Self {
            stream_type: E::STREAM_TYPE,
            stream_id,
            expected_version,
            events: events
                .iter()
                .map(|event| NewEvent {
                    event_type: event.event_type(),
                    schema_version: event.schema_version(),
                    data: event.to_data(),
                })
                .collect(),
            after: None,
        }
    }

    /// Remembers the state after the change in the aggregate cache once it commits.
    pub fn remembering<S: Send + Sync + 'static>(mut self, state: S) -> Self {
        self.after = Some(Arc::new(state));
        self
    }
}

/// A unique value claimed for an owner (an email, a SKU).
#[derive(Debug, Clone)]
pub struct Claim {
    /// Kind of value, e.g. `user.email`.
    pub kind: &'static str,
    /// The value.
    pub value: String,
    /// Who holds it.
    pub owner_id: Uuid,
}

/// Makes the idempotent answer of a unit from its appended events.
pub type Answer = Box<dyn FnOnce(&[EventEnvelope]) -> IdempotencyRecord + Send + Sync>;

/// SQL a unit runs in its transaction after its appends (credentials, sessions, authority).
pub type Hook =
    Box<dyn for<'c> FnOnce(&'c mut PgConnection) -> BoxFuture<'c, Result<(), sqlx::Error>> + Send + Sync>;

/// One unit of work: all of it commits, or none of it.
#[derive(Default)]
pub struct Commit {
    /// Appends, one per stream.
    pub changes: Vec<StreamChange>,
    /// Unique values to claim first.
    pub claims: Vec<Claim>,
    /// Claims to give up: (kind, owner).
    pub releases: Vec<(&'static str, Uuid)>,
    /// The idempotent answer to store with the events, made from what was appended.
    pub idempotency: Option<Answer>,
    /// Write-side SQL to run with the events.
    pub hooks: Vec<Hook>,
    /// Who and what caused the events.
    pub metadata: EventMetadata,
}

impl Commit {
    /// A unit appending `changes` with `metadata`.
    pub fn new(metadata: EventMetadata) -> Self {
        Self {
            metadata,
            ..Self::default()
        }
    }

    /// Adds an append.
    pub fn change(mut self, change: StreamChange) -> Self {
        if !change.events.is_empty() {
            self.changes.push(change);
        }
        self
    }

    /// Adds a unique claim.
    pub fn claim(mut self, kind: &'static str, value: impl Into<String>, owner_id: Uuid) -> Self {
        self.claims.push(Claim {
            kind,
            value: value.into(),
            owner_id,
        });
        self
    }

    /// Gives up an owner's claims of one kind (before this unit's own claims are made).
    pub fn release(mut self, kind: &'static str, owner_id: Uuid) -> Self {
        self.releases.push((kind, owner_id));
        self
    }

    /// Stores an idempotent answer, made from the appended events (their positions are
    /// known only then).
    pub fn idempotent(
        mut self,
        answer: Option<impl FnOnce(&[EventEnvelope]) -> IdempotencyRecord + Send + Sync + 'static>,
    ) -> Self {
        self.idempotency = answer.map(|answer| Box::new(answer) as Answer);
        self
    }

    /// Runs write-side SQL in the unit's transaction.
    pub fn hook(
        mut self,
        hook: impl for<'c> FnOnce(&'c mut PgConnection) -> BoxFuture<'c, Result<(), sqlx::Error>>
        + Send
        + Sync
        + 'static,
    ) -> Self {
        self.hooks.push(Box::new(hook));
        self
    }

    /// Nothing to write at all: no event, claim, answer or hook.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty() && self.appends_only()
    }

    fn appends_only(&self) -> bool {
        self.claims.is_empty()
            && self.releases.is_empty()
            && self.idempotency.is_none()
            && self.hooks.is_empty()
    }

    fn event_count(&self) -> usize {
        self.changes.iter().map(|c| c.events.len()).sum()
    }
}

/// What a committed unit appended, in the order of its changes.
pub(crate) struct Written {
    pub envelopes: Vec<EventEnvelope>,
    pub states: Vec<(Uuid, &'static str, i64, SharedState)>,
}

struct Request {
    commit: Commit,
    reply: oneshot::Sender<Result<Written, StoreError>>,
}

/// Handle to the writer tasks. Cheap to clone.
#[derive(Clone)]
pub(crate) struct GroupWriter {
    sender: mpsc::Sender<Request>,
}

impl GroupWriter {
    /// Starts [`WRITERS`] writer tasks on the current runtime; they stop when every
    /// handle is dropped.
    pub fn start(pool: PgPool, appended: Arc<Notify>) -> Self {
        let (sender, receiver) = mpsc::channel(QUEUE);
        let receiver = Arc::new(Mutex::new(receiver));
        for _ in 0..WRITERS {
            tokio::spawn(write_batches(pool.clone(), receiver.clone(), appended.clone()));
        }
        Self { sender }
    }

    /// Commits one unit with whatever else is waiting; answers with its own result.
    pub async fn commit(&self, commit: Commit) -> Result<Written, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.sender
            .send(Request { commit, reply })
            .await
            .map_err(|_| StoreError::WriterStopped)?;
        answer.await.map_err(|_| StoreError::WriterStopped)?
    }
}

async fn write_batches(pool: PgPool, receiver: Arc<Mutex<mpsc::Receiver<Request>>>, appended: Arc<Notify>) {
    loop {
        let batch = {
            let mut receiver = receiver.lock().await;
            let Some(first) = receiver.recv().await else {
                return;
            };
            let mut savepoints = usize::from(!first.commit.appends_only());
            let mut batch = vec![first];
            // Units with savepoints are capped: past 64 subtransactions Postgres overflows
            // its per-backend cache and every snapshot of every backend gets slower.
            while batch.len() < MAX_BATCH && savepoints < MAX_SAVEPOINTS {
                match receiver.try_recv() {
                    Ok(request) => {
                        savepoints += usize::from(!request.commit.appends_only());
                        batch.push(request);
                    }
                    Err(_) => break,
                }
            }
            batch
        };
        // A panic in a unit's hook or answer must not end the writer: its callers see their
        // answer channel closed (`WriterStopped`), and the next batch is written as usual.
        if std::panic::AssertUnwindSafe(write_batch(&pool, batch, &appended))
            .catch_unwind()
            .await
            .is_err()
        {
            tracing::error!("a group-commit batch panicked; its units were not answered");
        }
    }
}

/// One pending unit: its request and, once written, its rows.
struct Pending {
    request: Request,
    outcome: Option<Result<Vec<EventEnvelope>, StoreError>>,
}

async fn write_batch(pool: &PgPool, batch: Vec<Request>, appended: &Notify) {
    let mut units: Vec<Pending> = batch
        .into_iter()
        .map(|request| Pending {
            request,
            outcome: None,
        })
        .collect();
    match write_all(pool, &mut units).await {
        Ok(wrote_events) => {
            if wrote_events {
                appended.notify_one();
            }
            for unit in units {
                let Pending { request, outcome } = unit;
                let outcome = outcome.unwrap_or(Err(StoreError::WriterStopped));
                let written = outcome.map(|envelopes| Written {
                    states: remembered(&request.commit, &envelopes),
                    envelopes,
                });
                let _ = request.reply.send(written);
            }
        }
        Err(error) => {
            // The transaction failed as a whole: nothing of any unit committed.
            let shared = Arc::new(error);
            for unit in units {
                let _ = unit.request.reply.send(Err(StoreError::Shared(shared.clone())));
            }
        }
    }
}

/// The cache entries of a committed unit: each change's stream, type, version and state.
fn remembered(commit: &Commit, envelopes: &[EventEnvelope]) -> Vec<(Uuid, &'static str, i64, SharedState)> {
    commit
        .changes
        .iter()
        .filter_map(|change| {
            let state = change.after.clone()?;
            let version = change.expected_version + change.events.len() as i64;
            debug_assert!(envelopes.iter().any(|e| e.stream_id == change.stream_id));
            Some((change.stream_id, change.stream_type, version, state))
        })
        .collect()
}

/// Writes every unit in one transaction; `Err` when the transaction itself failed.
async fn write_all(pool: &PgPool, units: &mut [Pending]) -> Result<bool, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let now = Utc::now();
    let simple: Vec<usize> = (0..units.len())
        .filter(|&i| units[i].request.commit.appends_only())
        .collect();
    if !simple.is_empty() {
        let commits: Vec<&Commit> = simple.iter().map(|&i| &units[i].request.commit).collect();
        let results = append(&mut tx, &commits, now).await?;
        for (&index, result) in simple.iter().zip(results) {
            units[index].outcome = Some(result);
        }
    }
    for unit in units.iter_mut().filter(|u| u.outcome.is_none()) {
        sqlx::query("SAVEPOINT unit").execute(&mut *tx).await?;
        match write_unit(&mut tx, &mut unit.request.commit, now).await {
            Ok(envelopes) => {
                sqlx::query("RELEASE SAVEPOINT unit").execute(&mut *tx).await?;
                unit.outcome = Some(Ok(envelopes));
            }
            Err(StoreError::Database(error)) if breaks_transaction(&error) => return Err(error),
            Err(error) => {
                sqlx::query("ROLLBACK TO SAVEPOINT unit")
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("RELEASE SAVEPOINT unit").execute(&mut *tx).await?;
                unit.outcome = Some(Err(error));
            }
        }
    }
    tx.commit().await?;
    for envelopes in units.iter().filter_map(|u| match &u.outcome {
        Some(Ok(envelopes)) => Some(envelopes),
        _ => None,
    }) {
        for envelope in envelopes {
            metrics::counter!("events_appended_total", "stream_type" => envelope.stream_type.clone())
                .increment(1);
        }
    }
    Ok(units
        .iter()
        .any(|u| matches!(&u.outcome, Some(Ok(envelopes)) if !envelopes.is_empty())))
}

/// An error of the connection, not of one unit's statement: the transaction cannot go on
/// (any other error is rolled back to the unit's savepoint and answers that unit alone).
fn breaks_transaction(error: &sqlx::Error) -> bool {
    matches!(
        error,
        sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::Protocol(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed
    )
}

async fn write_unit(
    tx: &mut PgConnection,
    commit: &mut Commit,
    now: DateTime<Utc>,
) -> Result<Vec<EventEnvelope>, StoreError> {
    // Releases first, so that a unit can give up a value and claim another of the same
    // kind (an email change).
    for (kind, owner_id) in &commit.releases {
        sqlx::query!(
            "DELETE FROM unique_claims WHERE kind = $1 AND owner_id = $2",
            kind,
            owner_id
        )
        .execute(&mut *tx)
        .await?;
    }
    for claim in &commit.claims {
        let result = sqlx::query!(
            "INSERT INTO unique_claims (kind, value, owner_id) VALUES ($1, $2, $3)
             ON CONFLICT (kind, value) DO UPDATE SET kind = EXCLUDED.kind
             WHERE unique_claims.owner_id = EXCLUDED.owner_id",
            claim.kind,
            &claim.value,
            claim.owner_id
        )
        .execute(&mut *tx)
        .await?;
        if result.rows_affected() == 0 {
            return Err(StoreError::AlreadyClaimed {
                kind: claim.kind.to_owned(),
            });
        }
    }
    let envelopes = append(tx, &[&*commit], now)
        .await?
        .pop()
        .unwrap_or(Ok(Vec::new()))?;
    for hook in std::mem::take(&mut commit.hooks) {
        hook(&mut *tx).await?;
    }
    if let Some(answer) = commit.idempotency.take() {
        let record = answer(&envelopes);
        let result = sqlx::query!(
            "INSERT INTO idempotency_keys (scope, key, request_hash, status_code, body, etag, location)
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
            &record.scope,
            &record.key,
            &record.request_hash,
            record.status_code,
            &record.body,
            record.etag.as_deref(),
            record.location.as_deref()
        )
        .execute(&mut *tx)
        .await?;
        if result.rows_affected() == 0 {
            return Err(StoreError::IdempotencyKeyTaken);
        }
    }
    Ok(envelopes)
}

/// Columns of one append statement, one entry per event.
#[derive(Default)]
struct Columns {
    id: Vec<Uuid>,
    stream_type: Vec<&'static str>,
    stream_id: Vec<Uuid>,
    stream_version: Vec<i64>,
    event_type: Vec<&'static str>,
    schema_version: Vec<i32>,
    data: Vec<Value>,
    correlation_id: Vec<Option<String>>,
    causation_id: Vec<Option<String>>,
    actor_id: Vec<Option<Uuid>>,
}

/// Appends the events of several units with one statement. Each unit is answered with
/// its envelopes, or with a conflict when any of its streams was not at the expected
/// version (its other rows are deleted again, so a unit is all or nothing).
async fn append(
    tx: &mut PgConnection,
    commits: &[&Commit],
    now: DateTime<Utc>,
) -> Result<Vec<Result<Vec<EventEnvelope>, StoreError>>, sqlx::Error> {
    let mut columns = Columns::default();
    // For each event row: the unit it belongs to.
    let mut owners = Vec::new();
    for (unit, commit) in commits.iter().enumerate() {
        for change in &commit.changes {
            for (offset, event) in change.events.iter().enumerate() {
                columns.id.push(Uuid::now_v7());
                columns.stream_type.push(change.stream_type);
                columns.stream_id.push(change.stream_id);
                columns
                    .stream_version
                    .push(change.expected_version + offset as i64 + 1);
                columns.event_type.push(event.event_type);
                columns.schema_version.push(event.schema_version);
                columns.data.push(event.data.clone());
                columns
                    .correlation_id
                    .push(commit.metadata.correlation_id.clone());
                columns.causation_id.push(commit.metadata.causation_id.clone());
                columns.actor_id.push(commit.metadata.actor_id);
                owners.push(unit);
            }
        }
    }
    if owners.is_empty() {
        return Ok(commits.iter().map(|_| Ok(Vec::new())).collect());
    }
    let rows = sqlx::query!(
        "WITH input AS (
             SELECT * FROM unnest($1::uuid[], $2::text[], $3::uuid[], $4::int8[], $5::text[], $6::int4[],
                                  $7::jsonb[], $8::text[], $9::text[], $10::uuid[])
                 AS t(id, stream_type, stream_id, stream_version, event_type, schema_version,
                      data, correlation_id, causation_id, actor_id)
         ), inserted AS (
             INSERT INTO events (id, stream_type, stream_id, stream_version, event_type, schema_version,
                                 data, occurred_at, correlation_id, causation_id, actor_id)
             SELECT id, stream_type, stream_id, stream_version, event_type, schema_version,
                    data, $11, correlation_id, causation_id, actor_id
             -- One global order of row locks, so that concurrent batches touching the
             -- same streams wait for each other instead of deadlocking.
             FROM input ORDER BY stream_id, stream_version
             ON CONFLICT ON CONSTRAINT events_stream_version_key DO NOTHING
             RETURNING id, position
         ), queued AS (
             INSERT INTO outbox (position) SELECT position FROM inserted
         )
         SELECT id AS \"id!\", position AS \"position!\" FROM inserted",
        &columns.id,
        &columns.stream_type as &[&str],
        &columns.stream_id,
        &columns.stream_version,
        &columns.event_type as &[&str],
        &columns.schema_version,
        &columns.data,
        &columns.correlation_id as &[Option<String>],
        &columns.causation_id as &[Option<String>],
        &columns.actor_id as &[Option<Uuid>],
        now
    )
    .fetch_all(&mut *tx)
    .await?;
    let positions: HashMap<Uuid, i64> = rows.into_iter().map(|r| (r.id, r.position)).collect();
    let mut results: Vec<Result<Vec<EventEnvelope>, StoreError>> = commits
        .iter()
        .map(|c| Ok(Vec::with_capacity(c.event_count())))
        .collect();
    let mut orphans = Vec::new();
    let mut data = columns.data.into_iter();
    for (row, &unit) in owners.iter().enumerate() {
        let payload = data.next().unwrap_or(Value::Null);
        let position = positions.get(&columns.id[row]).copied();
        match (&mut results[unit], position) {
            (Ok(envelopes), Some(position)) => envelopes.push(EventEnvelope {
                id: columns.id[row],
                event_type: columns.event_type[row].to_owned(),
                schema_version: columns.schema_version[row],
                stream_type: columns.stream_type[row].to_owned(),
                stream_id: columns.stream_id[row],
                stream_version: columns.stream_version[row],
                position,
                occurred_at: now,
                correlation_id: columns.correlation_id[row].clone(),
                causation_id: columns.causation_id[row].clone(),
                actor_id: columns.actor_id[row],
                data: payload,
            }),
            (result @ Ok(_), None) => {
                if let Ok(envelopes) = result {
                    orphans.extend(envelopes.iter().map(|e| e.position));
                }
                let change = commits[unit]
                    .changes
                    .iter()
                    .find(|c| c.stream_id == columns.stream_id[row]);
                *result = Err(StoreError::VersionConflict {
                    stream_id: columns.stream_id[row],
                    expected: change.map_or(0, |c| c.expected_version),
                });
            }
            (Err(_), Some(position)) => orphans.push(position),
            (Err(_), None) => {}
        }
    }
    if !orphans.is_empty() {
        sqlx::query!("DELETE FROM outbox WHERE position = ANY($1)", &orphans)
            .execute(&mut *tx)
            .await?;
        sqlx::query!("DELETE FROM events WHERE position = ANY($1)", &orphans)
            .execute(&mut *tx)
            .await?;
    }
    Ok(results)
}
