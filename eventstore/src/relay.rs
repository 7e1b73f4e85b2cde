//! The outbox relay (DESIGN.md guarantee 2): every committed event reaches JetStream,
//! also when NATS was down at commit time.
//!
//! Why no event is skipped: the relay does not remember "the last position it saw".
//! It reads the outbox rows that exist now, and a row only exists once its append
//! transaction committed. A transaction that took a lower position but commits late
//! simply shows up on a later pass. Rows are locked with `SKIP LOCKED`, so several
//! relays (one per command-api replica) share the work without publishing a row twice
//! at once; a publish repeated after a crash carries the same `Nats-Msg-Id`, which
//! JetStream drops inside its duplicate window.

use crate::{EventEnvelope, StreamSettings, ensure_stream};
use async_nats::jetstream;
use futures::future::join_all;
use sqlx::PgPool;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Publishes outbox rows to JetStream in batches.
pub struct OutboxRelay {
    pool: PgPool,
    jetstream: jetstream::Context,
    stream: StreamSettings,
    appended: Arc<Notify>,
    batch_size: i64,
    poll_interval: Duration,
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
            batch_size: 256,
            poll_interval: Duration::from_millis(500),
        }
    }

    /// Runs until `shutdown` is cancelled.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut backoff = Duration::from_millis(100);
        while let Err(error) = ensure_stream(&self.jetstream, &self.stream).await {
            tracing::warn!(error = %error, stream = %self.stream.name, "events stream not reachable yet");
            if sleep_or_shutdown(backoff, &shutdown).await {
                return;
            }
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
        backoff = Duration::from_millis(100);
        loop {
            match self.publish_batch().await {
                Ok(published) if published as i64 == self.batch_size => {
                    backoff = Duration::from_millis(100);
                    continue;
                }
                Ok(_) => {
                    backoff = Duration::from_millis(100);
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = self.appended.notified() => {}
                        _ = tokio::time::sleep(self.poll_interval) => {}
                    }
                }
                Err(error) => {
                    tracing::warn!(error = %error, "outbox relay pass failed; will retry");
                    if sleep_or_shutdown(backoff, &shutdown).await {
                        return;
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    /// One pass: lock a batch of outbox rows, publish them all concurrently, delete the
    /// rows JetStream acknowledged. Returns how many were published.
    pub async fn publish_batch(&self) -> Result<usize, RelayError> {
        let mut tx = self.pool.begin().await?;
        let rows = sqlx::query_as::<_, EventEnvelope>(
            "SELECT e.id, e.event_type, e.schema_version, e.stream_type, e.stream_id, e.stream_version,
                    e.position, e.occurred_at, e.correlation_id, e.causation_id, e.actor_id, e.data
             FROM outbox o JOIN events e ON e.position = o.position
             ORDER BY o.position LIMIT $1 FOR UPDATE OF o SKIP LOCKED",
        )
        .bind(self.batch_size)
        .fetch_all(&mut *tx)
        .await?;
        if rows.is_empty() {
            return Ok(0);
        }
        let publishes = rows.iter().map(|event| self.publish(event));
        let results = join_all(publishes).await;
        let mut acked = Vec::with_capacity(rows.len());
        let mut last_error = None;
        for (event, result) in rows.iter().zip(results) {
            match result {
                Ok(()) => acked.push(event.position),
                Err(error) => last_error = Some(error),
            }
        }
        if !acked.is_empty() {
            sqlx::query("DELETE FROM outbox WHERE position = ANY($1)")
                .bind(&acked)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        match last_error {
            Some(error) if acked.is_empty() => Err(error),
            Some(error) => {
                tracing::warn!(error = %error, published = acked.len(), "some events were not acknowledged");
                Ok(acked.len())
            }
            None => Ok(acked.len()),
        }
    }

    async fn publish(&self, event: &EventEnvelope) -> Result<(), RelayError> {
        let payload = serde_json::to_vec(event).map_err(|e| RelayError::Publish(e.to_string()))?;
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", event.id.to_string().as_str());
        let ack = self
            .jetstream
            .publish_with_headers(
                event.subject(&self.stream.subject_prefix),
                headers,
                payload.into(),
            )
            .await
            .map_err(|e| RelayError::Publish(e.to_string()))?;
        ack.await.map_err(|e| RelayError::Publish(e.to_string()))?;
        Ok(())
    }
}

async fn sleep_or_shutdown(duration: Duration, shutdown: &CancellationToken) -> bool {
    tokio::select! {
        _ = shutdown.cancelled() => true,
        _ = tokio::time::sleep(duration) => false,
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
