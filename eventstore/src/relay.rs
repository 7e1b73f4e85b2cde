//! The outbox relay (DESIGN.md guarantee 2): every committed event reaches JetStream,
//! also when NATS was down at commit time.
//!
//! Why no event is skipped: the relay does not remember "the last position it saw".
//! It reads the outbox rows that exist now, and a row only exists once its append
//! transaction committed. A transaction that took a lower position but commits late
//! simply shows up on a later pass. Rows are locked with `SKIP LOCKED`, so several
//! relays (one per command-api replica) share the work without publishing a row twice
//! at once; a row is deleted only once JetStream acknowledged it, and a publish repeated
//! after a crash carries the same `Nats-Msg-Id`, which JetStream drops inside its
//! duplicate window.
//!
//! One pass locks up to a batch of rows and publishes them in position order through a
//! bounded window ([`pipeline`]): sends do not wait for each acknowledgement, at most
//! `max_in_flight` are awaited at once, and the acknowledged rows are deleted with one
//! statement in the transaction that locked them.

mod pipeline;

use crate::{EventEnvelope, StreamSettings, ensure_stream};
use async_nats::jetstream::{self, context::Publish};
use runtime::backoff::Policy;
use sqlx::PgPool;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Outbox rows locked and published by one pass, by default.
pub const DEFAULT_BATCH_SIZE: usize = 1024;

/// Publishes awaiting their acknowledgement at once, by default.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 256;

/// How long the relay waits after a failed pass (or while the stream is unreachable).
pub const RETRY: Policy = Policy::new(Duration::from_millis(100), Duration::from_secs(5));

/// How long a woken relay waits for more commits before its pass, when its last pass
/// carried more than one event (commits are arriving together); after a pass of one, a
/// wake-up publishes at once, so a lone command is not kept waiting.
pub const LINGER: std::time::Duration = std::time::Duration::from_millis(2);

/// Publishes outbox rows to JetStream in batches.
pub struct OutboxRelay {
    pool: PgPool,
    jetstream: jetstream::Context,
    stream: StreamSettings,
    appended: Arc<Notify>,
    batch_size: usize,
    max_in_flight: usize,
    poll_interval: Duration,
}

/// What one pass did.
#[derive(Debug, Default)]
struct Pass {
    locked: usize,
    published: usize,
    error: Option<RelayError>,
}

impl OutboxRelay {
    /// A relay woken by `appended` (see `EventStore::appended_signal`) and by a poll.
    pub fn new(
        pool: PgPool,
        jetstream: jetstream::Context,
        stream: StreamSettings,
        appended: Arc<Notify>,
    ) -> Self {
        Self {
            pool,
            jetstream,
            stream,
            appended,
            batch_size: DEFAULT_BATCH_SIZE,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            poll_interval: Duration::from_millis(500),
        }
    }

    /// Locks and publishes at most `rows` outbox rows per pass (at least 1).
    pub fn with_batch_size(mut self, rows: usize) -> Self {
        self.batch_size = rows.max(1);
        self
    }

    /// Awaits at most `publishes` acknowledgements at once (at least 1).
    pub fn with_max_in_flight(mut self, publishes: usize) -> Self {
        self.max_in_flight = publishes.max(1);
        self
    }

    /// Runs until `shutdown` is cancelled.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut backoff = RETRY.start();
        while let Err(error) = ensure_stream(&self.jetstream, &self.stream).await {
            tracing::warn!(error = %error, stream = %self.stream.name, "events stream not reachable yet");
            if backoff.wait(&shutdown).await {
                return;
            }
        }
        backoff.reset();
        while !shutdown.is_cancelled() {
            match self.pass().await {
                Err(error) => {
                    tracing::warn!(error = %error, "outbox relay pass failed; will retry");
                    if backoff.wait(&shutdown).await {
                        return;
                    }
                }
                Ok(Pass {
                    error: Some(error),
                    published,
                    ..
                }) => {
                    tracing::warn!(error = %error, published, "some events were not acknowledged; will retry");
                    if backoff.wait(&shutdown).await {
                        return;
                    }
                }
                // A full batch leaves rows behind, most likely: go on at once.
                Ok(pass) if pass.locked == self.batch_size => backoff.reset(),
                // The outbox was drained when this pass locked it. A commit since then
                // left a permit in `appended`, so the wait ends at once for it.
                Ok(pass) => {
                    backoff.reset();
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = self.appended.notified() => {
                            // Under load, let the commits arriving with this one gather,
                            // so that one pass (one lock, one delete) carries them all.
                            if pass.locked > 1 {
                                tokio::time::sleep(LINGER).await;
                            }
                        }
                        _ = tokio::time::sleep(self.poll_interval) => {}
                    }
                }
            }
        }
    }

    /// One pass: lock a batch of outbox rows, publish them through the bounded window,
    /// delete the rows JetStream acknowledged. Returns how many were published; fails
    /// only when none was.
    pub async fn publish_batch(&self) -> Result<usize, RelayError> {
        let pass = self.pass().await?;
        match pass.error {
            Some(error) if pass.published == 0 => Err(error),
            Some(error) => {
                tracing::warn!(error = %error, published = pass.published, "some events were not acknowledged");
                Ok(pass.published)
            }
            None => Ok(pass.published),
        }
    }

    async fn pass(&self) -> Result<Pass, RelayError> {
        let started = std::time::Instant::now();
        let mut tx = self.pool.begin().await?;
        let begun = started.elapsed();
        // `e.position >= min(outbox)`: after a burst the outbox's statistics still count
        // the rows since deleted, and the planner merge-joined the `events` index from its
        // first row to reach the few rows left (16-27 ms a pass under load). Bounded
        // below, the merge join starts at the oldest waiting event: fast for a few rows
        // and for a catch-up of thousands alike (two statements, positions and then
        // events by `= ANY`, were fast for a few but stalled on the large batches).
        let rows = sqlx::query_as!(
            EventEnvelope,
            "SELECT e.id, e.event_type, e.schema_version, e.stream_type, e.stream_id, e.stream_version,
                    e.position, e.occurred_at, e.correlation_id, e.causation_id, e.actor_id, e.data
             FROM outbox o JOIN events e ON e.position = o.position
             WHERE e.position >= (SELECT min(position) FROM outbox)
             ORDER BY o.position LIMIT $1 FOR UPDATE OF o SKIP LOCKED",
            i64::try_from(self.batch_size).unwrap_or(i64::MAX)
        )
        .fetch_all(&mut *tx)
        .await?;
        if rows.is_empty() {
            return Ok(Pass::default());
        }
        let locked = rows.len();
        let oldest = rows[0].occurred_at;
        let selected = started.elapsed();
        let published = pipeline::publish_all(
            rows,
            self.max_in_flight,
            |event| event.position,
            |event| self.send(event),
        )
        .await;
        let sent = started.elapsed();
        if !published.acked.is_empty() {
            sqlx::query!("DELETE FROM outbox WHERE position = ANY($1)", &published.acked)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        if !published.acked.is_empty() {
            let lag = crate::envelope::lag_ms(oldest) / 1000.0;
            metrics::histogram!("outbox_publish_lag_seconds").record(lag);
        }
        tracing::debug!(
            published = published.acked.len(),
            lag_ms = crate::envelope::lag_ms(oldest),
            begin_ms = begun.as_secs_f64() * 1000.0,
            select_ms = (selected - begun).as_secs_f64() * 1000.0,
            publish_ms = (sent - selected).as_secs_f64() * 1000.0,
            commit_ms = (started.elapsed() - sent).as_secs_f64() * 1000.0,
            "outbox pass committed"
        );
        Ok(Pass {
            locked,
            published: published.acked.len(),
            error: published.error,
        })
    }

    /// Sends one event; the returned future is its acknowledgement.
    async fn send(
        &self,
        event: EventEnvelope,
    ) -> Result<impl Future<Output = Result<(), RelayError>> + use<>, RelayError> {
        let payload = serde_json::to_vec(&event).map_err(|e| RelayError::Publish(e.to_string()))?;
        let publish = Publish::build()
            .payload(payload.into())
            .message_id(event.id.to_string());
        let ack = self
            .jetstream
            .send_publish(event.subject(&self.stream.subject_prefix), publish)
            .await
            .map_err(|e| RelayError::Publish(e.to_string()))?;
        Ok(async move {
            ack.await
                .map(|_| ())
                .map_err(|e| RelayError::Publish(e.to_string()))
        })
    }
}

/// Why a relay pass failed.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// Postgres failed.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    /// JetStream did not acknowledge a publish.
    #[error("publish failed: {0}")]
    Publish(String),
}
