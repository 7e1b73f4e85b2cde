//! Webhooks in Postgres: the endpoints admins register (`webhooks`), one delivery per
//! endpoint and event (`webhook_deliveries`) and every attempt of each
//! (`webhook_attempts`). The command API manages endpoints and reads deliveries; the
//! workers fan events out into deliveries ([`Webhooks::fan_out`]), claim the due ones
//! ([`Webhooks::claim`]) and record each attempt ([`Webhooks::record`]).

use crate::input::{NewWebhook, WebhookPatch};
use crate::signing;
use chrono::{DateTime, Utc};
use eventstore::EventEnvelope;
use runtime::audit;
use serde::{Deserialize, Serialize};
use sqlx::{PgPool, Postgres};
use std::time::Duration;
use uuid::Uuid;

/// A registered endpoint, as admins see it (never with its secret).
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Webhook {
    /// Its id.
    pub id: Uuid,
    /// Where deliveries are POSTed (`http` or `https`).
    pub url: String,
    /// The event types delivered (e.g. `order.placed`), or `*` for every type.
    pub event_types: Vec<String>,
    /// What it is for, as its admin said.
    pub description: Option<String>,
    /// Whether deliveries are made. An endpoint that keeps failing is disabled by the
    /// workers, with the reason in `disabledReason`.
    pub enabled: bool,
    /// Why it was disabled, when it is.
    pub disabled_reason: Option<String>,
    /// When it was disabled.
    pub disabled_at: Option<DateTime<Utc>>,
    /// Failed attempts since the last successful one.
    pub consecutive_failures: i32,
    /// Events after this position are delivered; earlier ones only by a replay.
    pub start_position: i64,
    /// Its version, also its `ETag`; every change adds one.
    pub version: i64,
    /// The admin who registered it.
    pub created_by: Option<Uuid>,
    /// When it was registered.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

const WEBHOOK_COLUMNS: &str = "id, url, event_types, description, enabled, disabled_reason, disabled_at, \
     consecutive_failures, start_position, version, created_by, created_at, updated_at";

/// An `Idempotency-Key` under which a registration's answer is stored with it, in its
/// transaction.
#[derive(Debug, Clone)]
pub struct Remember {
    /// Whose key it is (the caller).
    pub scope: String,
    /// The key.
    pub key: String,
    /// The request's fingerprint.
    pub request_hash: String,
}

/// An endpoint with its signing secret: the one answer that shows the secret.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookWithSecret {
    /// The endpoint.
    #[serde(flatten)]
    pub webhook: Webhook,
    /// The signing secret (`whsec_…`): shown in this answer only; keep it where the
    /// receiver can read it, it cannot be read back.
    pub secret: String,
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, sqlx::Type, utoipa::ToSchema)]
#[sqlx(type_name = "text", rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum DeliveryStatus {
    /// Waiting for its next attempt (or in one).
    Pending,
    /// The endpoint answered 2xx.
    Delivered,
    /// Every attempt failed: a dead letter of the endpoint, until retried or replayed.
    Dead,
}

/// One event for one endpoint.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Delivery {
    /// Its id (`Webhook-Delivery`).
    pub id: Uuid,
    /// The endpoint.
    pub webhook_id: Uuid,
    /// The event (`Webhook-Id`).
    pub event_id: Uuid,
    /// The event's type.
    pub event_type: String,
    /// The event's position in the store.
    pub position: i64,
    /// Where it stands.
    pub status: DeliveryStatus,
    /// Attempts made (a replay or a retry starts again from 0).
    pub attempts: i32,
    /// When the next attempt is due (while `pending`).
    pub next_attempt_at: DateTime<Utc>,
    /// The HTTP status of the last attempt, when the endpoint answered.
    pub last_status_code: Option<i32>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// How long the last attempt took, in milliseconds.
    pub last_duration_ms: Option<i32>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// When the endpoint accepted it.
    pub delivered_at: Option<DateTime<Utc>>,
}

const DELIVERY_COLUMNS: &str = "id, webhook_id, event_id, event_type, position, status, attempts, next_attempt_at, \
     last_status_code, last_error, last_duration_ms, created_at, updated_at, delivered_at";

/// One attempt of a delivery.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Attempt {
    /// Its number within the delivery's current round of attempts (from 1).
    pub attempt: i32,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// How long it took, in milliseconds.
    pub duration_ms: i32,
    /// The HTTP status, when the endpoint answered.
    pub status_code: Option<i32>,
    /// Why it failed, when it did.
    pub error: Option<String>,
}

/// A delivery with every attempt, oldest first.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryDetail {
    /// The delivery.
    #[serde(flatten)]
    pub delivery: Delivery,
    /// Its attempts.
    pub attempt_log: Vec<Attempt>,
}

/// The outcome of a change guarded by a version.
#[derive(Debug, Clone, PartialEq)]
pub enum Guarded<T> {
    /// Done.
    Done(T),
    /// No such endpoint.
    NotFound,
    /// The endpoint is at this version, not the one asked for.
    Stale(i64),
}

/// A delivery claimed for one attempt: what to send, where, signed with what.
#[derive(Debug, Clone)]
pub struct Claimed {
    /// The delivery.
    pub delivery_id: Uuid,
    /// The endpoint.
    pub webhook_id: Uuid,
    /// Where to POST.
    pub url: String,
    /// The key of the signature.
    pub secret: String,
    /// This attempt's number (from 1).
    pub attempt: i32,
    /// The event, as published on NATS; `None` when it is not in the store.
    pub event: Option<EventEnvelope>,
}

/// How one attempt went.
#[derive(Debug, Clone)]
pub struct AttemptResult {
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// How long it took.
    pub duration: Duration,
    /// The HTTP status, when the endpoint answered.
    pub status_code: Option<u16>,
    /// Why it failed (`None` for a 2xx answer).
    pub error: Option<String>,
    /// How long the endpoint asked to be left alone (`Retry-After` on a 429 or 503).
    pub retry_after: Option<Duration>,
}

impl AttemptResult {
    /// Whether the endpoint accepted the delivery (a 2xx answer).
    pub fn succeeded(&self) -> bool {
        self.error.is_none() && self.status_code.is_some_and(|code| (200..300).contains(&code))
    }
}

/// When deliveries are tried again and when an endpoint is given up.
#[derive(Debug, Clone, Copy)]
pub struct DeliveryPolicy {
    /// The backoff between attempts (jittered).
    pub backoff: runtime::backoff::Policy,
    /// Attempts before a delivery is dead.
    pub max_attempts: u32,
    /// Failed attempts in a row, across its deliveries, after which an endpoint is
    /// disabled (0: never).
    pub disable_after: u32,
}

impl Default for DeliveryPolicy {
    fn default() -> Self {
        Self {
            backoff: runtime::backoff::Policy::new(Duration::from_secs(5), Duration::from_secs(600)),
            max_attempts: 8,
            disable_after: 50,
        }
    }
}

/// What recording an attempt did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    /// Delivered.
    Delivered,
    /// Failed; tried again after this delay.
    Retrying(Duration),
    /// Failed for the last time: the delivery is dead.
    Dead,
    /// The delivery changed meanwhile (replayed, retried by an admin, or its endpoint
    /// deleted): the attempt is not counted.
    Superseded,
}

/// What recording an attempt did, and whether it disabled the endpoint (with why).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordOutcome {
    /// The delivery's new state.
    pub recorded: Recorded,
    /// Set when this attempt disabled the endpoint.
    pub disabled: Option<String>,
}

/// The webhooks tables.
#[derive(Clone)]
pub struct Webhooks {
    pool: PgPool,
}

/// How many events a replay reads per statement.
const REPLAY_CHUNK: i64 = 10_000;

impl Webhooks {
    /// The tables of a migrated database.
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// Registers an endpoint with a new secret; it receives events appended from now on.
    /// Recorded in `operator_actions` as done by `created_by`, like every change here.
    pub async fn create(
        &self,
        new: &NewWebhook,
        created_by: Uuid,
        remember: Option<&Remember>,
    ) -> Result<WebhookWithSecret, sqlx::Error> {
        let secret = signing::new_secret();
        let mut tx = self.pool.begin().await?;
        let webhook = sqlx::query_as::<_, Webhook>(&format!(
            "INSERT INTO webhooks (id, url, event_types, description, secret, start_position, created_by)
             VALUES ($1, $2, $3, $4, $5, (SELECT COALESCE(max(position), 0) FROM events), $6)
             RETURNING {WEBHOOK_COLUMNS}"
        ))
        .bind(Uuid::now_v7())
        .bind(&new.url)
        .bind(&new.event_types)
        .bind(&new.description)
        .bind(&secret)
        .bind(created_by)
        .fetch_one(&mut *tx)
        .await?;
        audit::record(
            &mut *tx,
            created_by,
            "webhook.create",
            webhook.id,
            None,
            "registered",
        )
        .await?;
        let created = WebhookWithSecret { webhook, secret };
        if let Some(remember) = remember {
            // The answer, secret included, for a retry with the same key: the client that
            // lost it gets the same endpoint and secret instead of a second endpoint.
            sqlx::query(
                "INSERT INTO idempotency_keys (scope, key, request_hash, status_code, body, location)
                 VALUES ($1, $2, $3, 201, $4, $5)",
            )
            .bind(&remember.scope)
            .bind(&remember.key)
            .bind(&remember.request_hash)
            .bind(serde_json::to_value(&created).map_err(|error| sqlx::Error::Encode(Box::new(error)))?)
            .bind(format!("/api/v1/webhooks/{}", created.webhook.id))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(created)
    }

    /// A page of endpoints, oldest first, and how many there are.
    pub async fn list(&self, page: u32, per_page: u32) -> Result<(Vec<Webhook>, i64), sqlx::Error> {
        let total: i64 = sqlx::query_scalar("SELECT count(*) FROM webhooks")
            .fetch_one(&self.pool)
            .await?;
        let items = sqlx::query_as::<_, Webhook>(&format!(
            "SELECT {WEBHOOK_COLUMNS} FROM webhooks ORDER BY created_at, id LIMIT $1 OFFSET $2"
        ))
        .bind(i64::from(per_page))
        .bind(offset(page, per_page))
        .fetch_all(&self.pool)
        .await?;
        Ok((items, total))
    }

    /// One endpoint.
    pub async fn find(&self, id: Uuid) -> Result<Option<Webhook>, sqlx::Error> {
        sqlx::query_as::<_, Webhook>(&format!("SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
    }

    /// Changes what `patch` names, if the endpoint is at `expected` (when given).
    /// Enabling a disabled endpoint clears its reason and its failure count; its pending
    /// deliveries go out again.
    pub async fn update(
        &self,
        id: Uuid,
        patch: &WebhookPatch,
        expected: Option<i64>,
        actor: Uuid,
    ) -> Result<Guarded<Webhook>, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        let Some(current) = lock(&mut tx, id).await? else {
            return Ok(Guarded::NotFound);
        };
        if expected.is_some_and(|version| version != current) {
            return Ok(Guarded::Stale(current));
        }
        // Columns on the right of SET are the old values: "was enabled" below.
        let webhook = sqlx::query_as::<_, Webhook>(&format!(
            "UPDATE webhooks SET
                 url = COALESCE($2, url),
                 event_types = COALESCE($3, event_types),
                 description = CASE WHEN $4 THEN $5::text ELSE description END,
                 enabled = COALESCE($6::boolean, enabled),
                 disabled_reason = CASE WHEN $6::boolean IS TRUE THEN NULL
                     WHEN $6::boolean IS FALSE AND enabled THEN 'disabled by an administrator'
                     ELSE disabled_reason END,
                 disabled_at = CASE WHEN $6::boolean IS TRUE THEN NULL
                     WHEN $6::boolean IS FALSE AND enabled THEN now() ELSE disabled_at END,
                 consecutive_failures = CASE WHEN $6::boolean IS TRUE THEN 0 ELSE consecutive_failures END,
                 version = version + 1, updated_at = now()
             WHERE id = $1 RETURNING {WEBHOOK_COLUMNS}"
        ))
        .bind(id)
        .bind(&patch.url)
        .bind(&patch.event_types)
        .bind(patch.description.is_some())
        .bind(patch.description.clone().flatten())
        .bind(patch.enabled)
        .fetch_one(&mut *tx)
        .await?;
        let outcome = match patch.enabled {
            Some(true) => "changed; enabled",
            Some(false) => "changed; disabled",
            None => "changed",
        };
        audit::record(&mut *tx, actor, "webhook.update", id, None, outcome).await?;
        tx.commit().await?;
        Ok(Guarded::Done(webhook))
    }

    /// Deletes an endpoint with its deliveries, if it is at `expected` (when given).
    pub async fn delete(
        &self,
        id: Uuid,
        expected: Option<i64>,
        actor: Uuid,
    ) -> Result<Guarded<()>, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        let Some(current) = lock(&mut tx, id).await? else {
            return Ok(Guarded::NotFound);
        };
        if expected.is_some_and(|version| version != current) {
            return Ok(Guarded::Stale(current));
        }
        sqlx::query("DELETE FROM webhooks WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        audit::record(&mut *tx, actor, "webhook.delete", id, None, "deleted").await?;
        tx.commit().await?;
        Ok(Guarded::Done(()))
    }

    /// Gives an endpoint a new secret, shown in the answer only; attempts claimed from
    /// now on are signed with it, and the old secret signs nothing more (no overlap).
    pub async fn rotate_secret(
        &self,
        id: Uuid,
        actor: Uuid,
    ) -> Result<Option<WebhookWithSecret>, sqlx::Error> {
        let secret = signing::new_secret();
        let mut tx = self.pool.begin().await?;
        let webhook = sqlx::query_as::<_, Webhook>(&format!(
            "UPDATE webhooks SET secret = $2, version = version + 1, updated_at = now()
             WHERE id = $1 RETURNING {WEBHOOK_COLUMNS}"
        ))
        .bind(id)
        .bind(&secret)
        .fetch_optional(&mut *tx)
        .await?;
        if webhook.is_some() {
            audit::record(&mut *tx, actor, "webhook.rotate_secret", id, None, "rotated").await?;
        }
        tx.commit().await?;
        Ok(webhook.map(|webhook| WebhookWithSecret { webhook, secret }))
    }

    /// A page of an endpoint's deliveries, newest first, and how many match.
    pub async fn deliveries(
        &self,
        webhook_id: Uuid,
        status: Option<DeliveryStatus>,
        event_type: Option<&str>,
        page: u32,
        per_page: u32,
    ) -> Result<(Vec<Delivery>, i64), sqlx::Error> {
        let filter =
            "webhook_id = $1 AND ($2::text IS NULL OR status = $2) AND ($3::text IS NULL OR event_type = $3)";
        let total: i64 =
            sqlx::query_scalar(&format!("SELECT count(*) FROM webhook_deliveries WHERE {filter}"))
                .bind(webhook_id)
                .bind(status)
                .bind(event_type)
                .fetch_one(&self.pool)
                .await?;
        let items = sqlx::query_as::<_, Delivery>(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE {filter}
             ORDER BY created_at DESC, position DESC, id DESC LIMIT $4 OFFSET $5"
        ))
        .bind(webhook_id)
        .bind(status)
        .bind(event_type)
        .bind(i64::from(per_page))
        .bind(offset(page, per_page))
        .fetch_all(&self.pool)
        .await?;
        Ok((items, total))
    }

    /// One delivery of an endpoint with its attempts.
    pub async fn delivery(&self, webhook_id: Uuid, id: Uuid) -> Result<Option<DeliveryDetail>, sqlx::Error> {
        let Some(delivery) = sqlx::query_as::<_, Delivery>(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE id = $1 AND webhook_id = $2"
        ))
        .bind(id)
        .bind(webhook_id)
        .fetch_optional(&self.pool)
        .await?
        else {
            return Ok(None);
        };
        let attempt_log = sqlx::query_as::<_, Attempt>(
            "SELECT attempt, started_at, duration_ms, status_code, error FROM webhook_attempts
             WHERE delivery_id = $1 ORDER BY started_at, attempt",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        Ok(Some(DeliveryDetail {
            delivery,
            attempt_log,
        }))
    }

    /// Makes one delivery due now with a fresh round of attempts (a dead one, or a
    /// delivered one to send again).
    pub async fn retry_delivery(
        &self,
        webhook_id: Uuid,
        id: Uuid,
        actor: Uuid,
    ) -> Result<Option<Delivery>, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        let delivery = sqlx::query_as::<_, Delivery>(&format!(
            "UPDATE webhook_deliveries SET status = 'pending', attempts = 0, next_attempt_at = now(),
                 delivered_at = NULL, updated_at = now()
             WHERE id = $1 AND webhook_id = $2 RETURNING {DELIVERY_COLUMNS}"
        ))
        .bind(id)
        .bind(webhook_id)
        .fetch_optional(&mut *tx)
        .await?;
        if delivery.is_some() {
            audit::record(&mut *tx, actor, "webhook.retry_delivery", id, None, "due now").await?;
        }
        tx.commit().await?;
        Ok(delivery)
    }

    /// The position of the last event stored (0 when there is none).
    pub async fn last_position(&self) -> Result<i64, sqlx::Error> {
        sqlx::query_scalar("SELECT COALESCE(max(position), 0) FROM events")
            .fetch_one(&self.pool)
            .await
    }

    /// Queues every stored event of the endpoint's types from position `from` up to
    /// `to` (inclusive; default: the last one now) for delivery again, delivered ones
    /// included, a chunk of positions per statement so a replay of millions neither
    /// holds one long transaction nor bloats one statement. Returns how many were
    /// queued, or `None` when there is no such endpoint.
    pub async fn replay(
        &self,
        webhook_id: Uuid,
        from: i64,
        to: Option<i64>,
    ) -> Result<Option<u64>, sqlx::Error> {
        let Some(webhook) = self.find(webhook_id).await? else {
            return Ok(None);
        };
        let last = self.last_position().await?;
        let end = to.map_or(last, |to| to.min(last));
        let mut queued = 0;
        let mut start = from.max(1);
        while start <= end {
            let stop = start.saturating_add(REPLAY_CHUNK).min(end.saturating_add(1));
            queued += sqlx::query(
                "INSERT INTO webhook_deliveries (id, webhook_id, event_id, event_type, position)
                 SELECT gen_random_uuid(), $1, e.id, e.event_type, e.position FROM events e
                 WHERE e.position >= $2 AND e.position < $3 AND (e.event_type = ANY($4) OR '*' = ANY($4))
                 ON CONFLICT (webhook_id, event_id) DO UPDATE SET
                     status = 'pending', attempts = 0, next_attempt_at = now(),
                     delivered_at = NULL, updated_at = now()",
            )
            .bind(webhook_id)
            .bind(start)
            .bind(stop)
            .bind(&webhook.event_types)
            .execute(&self.pool)
            .await?
            .rows_affected();
            start = stop;
        }
        Ok(Some(queued))
    }

    /// Creates the deliveries of one event: one for every endpoint that takes its type
    /// and was registered before it, disabled ones included: their deliveries wait
    /// ([`Webhooks::claim`] takes only enabled endpoints') and go out when the endpoint
    /// is enabled again, so nothing is lost while it is off. Idempotent (a redelivered
    /// event adds none).
    pub async fn fan_out(&self, event: &EventEnvelope) -> Result<u64, sqlx::Error> {
        sqlx::query(
            "INSERT INTO webhook_deliveries (id, webhook_id, event_id, event_type, position)
             SELECT gen_random_uuid(), w.id, $1, $2, $3 FROM webhooks w
             WHERE w.start_position < $3 AND ($2 = ANY(w.event_types) OR '*' = ANY(w.event_types))
             ON CONFLICT (webhook_id, event_id) DO NOTHING",
        )
        .bind(event.id)
        .bind(&event.event_type)
        .bind(event.position)
        .execute(&self.pool)
        .await
        .map(|done| done.rows_affected())
    }

    /// Claims up to `limit` due deliveries of enabled endpoints for one attempt each, so
    /// that no endpoint has more than `per_endpoint` in flight in this process counting
    /// the attempts `in_flight` names (endpoint, attempts running now): one slow endpoint
    /// cannot take every slot. A claim lasts `lease`: a worker that dies mid-attempt
    /// leaves the delivery to be claimed again then.
    pub async fn claim(
        &self,
        limit: u32,
        per_endpoint: u32,
        in_flight: &[(Uuid, u32)],
        lease: Duration,
    ) -> Result<Vec<Claimed>, sqlx::Error> {
        let (ids, counts): (Vec<Uuid>, Vec<i64>) = in_flight
            .iter()
            .map(|(id, count)| (*id, i64::from(*count)))
            .unzip();
        let rows: Vec<ClaimedRow> = sqlx::query_as(
            "WITH open AS (
                 SELECT w.id, COALESCE(f.running, 0) AS running, $2 - COALESCE(f.running, 0) AS room
                 FROM webhooks w LEFT JOIN unnest($3::uuid[], $5::bigint[]) AS f(id, running) ON f.id = w.id
                 WHERE w.enabled
             ), picked AS (
                 -- Endpoints with the fewest deliveries in flight first, then the one that
                 -- waited longest: freed slots go round the endpoints with a backlog
                 -- instead of back to the first ones in table order.
                 SELECT d.id FROM open w CROSS JOIN LATERAL (
                     SELECT id, next_attempt_at FROM webhook_deliveries
                     WHERE webhook_id = w.id AND status = 'pending' AND next_attempt_at <= now()
                     ORDER BY next_attempt_at LIMIT w.room FOR UPDATE SKIP LOCKED
                 ) d
                 WHERE w.room > 0
                 ORDER BY w.running, min(d.next_attempt_at) OVER (PARTITION BY w.id), w.id, d.next_attempt_at
                 LIMIT $1
             ), claimed AS (
                 UPDATE webhook_deliveries d SET attempts = d.attempts + 1,
                     next_attempt_at = now() + make_interval(secs => $4), updated_at = now()
                 FROM picked WHERE d.id = picked.id
                 RETURNING d.id, d.webhook_id, d.event_id, d.attempts
             )
             SELECT c.id AS delivery_id, c.webhook_id, c.attempts AS attempt, w.url, w.secret,
                    e.id, e.event_type, e.schema_version, e.stream_type, e.stream_id, e.stream_version,
                    e.position, e.occurred_at, e.correlation_id, e.causation_id, e.actor_id, e.data
             FROM claimed c JOIN webhooks w ON w.id = c.webhook_id LEFT JOIN events e ON e.id = c.event_id",
        )
        .bind(i64::from(limit))
        .bind(i64::from(per_endpoint))
        .bind(&ids)
        .bind(lease.as_secs_f64())
        .bind(&counts)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(ClaimedRow::into_claimed).collect())
    }

    /// Records one attempt of a claimed delivery and what follows from it, in one
    /// transaction: delivered; tried again after the backoff (or the endpoint's
    /// `Retry-After`, whichever is longer); or dead after the last attempt. The endpoint's
    /// failure count follows, and it is disabled after `policy.disable_after` failures in
    /// a row, or at once when it answers 410 Gone.
    pub async fn record(
        &self,
        claimed: &Claimed,
        result: &AttemptResult,
        policy: &DeliveryPolicy,
    ) -> Result<RecordOutcome, sqlx::Error> {
        let succeeded = result.succeeded();
        let attempts = u32::try_from(claimed.attempt).unwrap_or(1).max(1);
        let (status, delay) = if succeeded {
            (DeliveryStatus::Delivered, Duration::ZERO)
        } else if attempts >= policy.max_attempts {
            (DeliveryStatus::Dead, Duration::ZERO)
        } else {
            let backoff = policy.backoff.delay(attempts);
            let asked = result.retry_after.unwrap_or_default().min(policy.backoff.max);
            (DeliveryStatus::Pending, backoff.max(asked))
        };
        let duration_ms = i32::try_from(result.duration.as_millis()).unwrap_or(i32::MAX);
        let status_code = result.status_code.map(i32::from);
        let mut tx = self.pool.begin().await?;
        let updated = sqlx::query(
            "UPDATE webhook_deliveries SET status = $3, next_attempt_at = now() + make_interval(secs => $4),
                 last_status_code = $5, last_error = $6, last_duration_ms = $7, updated_at = now(),
                 delivered_at = CASE WHEN $3 = 'delivered' THEN now() ELSE delivered_at END
             WHERE id = $1 AND attempts = $2 AND status = 'pending'",
        )
        .bind(claimed.delivery_id)
        .bind(claimed.attempt)
        .bind(status)
        .bind(delay.as_secs_f64())
        .bind(status_code)
        .bind(&result.error)
        .bind(duration_ms)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if updated == 0 {
            return Ok(RecordOutcome {
                recorded: Recorded::Superseded,
                disabled: None,
            });
        }
        sqlx::query(
            "INSERT INTO webhook_attempts (id, delivery_id, attempt, started_at, duration_ms, status_code, error)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(Uuid::now_v7())
        .bind(claimed.delivery_id)
        .bind(claimed.attempt)
        .bind(result.started_at)
        .bind(duration_ms)
        .bind(status_code)
        .bind(&result.error)
        .execute(&mut *tx)
        .await?;
        let disabled = if succeeded {
            sqlx::query(
                "UPDATE webhooks SET consecutive_failures = 0 WHERE id = $1 AND consecutive_failures <> 0",
            )
            .bind(claimed.webhook_id)
            .execute(&mut *tx)
            .await?;
            None
        } else {
            let failures: i32 = sqlx::query_scalar(
                "UPDATE webhooks SET consecutive_failures = consecutive_failures + 1 WHERE id = $1
                 RETURNING consecutive_failures",
            )
            .bind(claimed.webhook_id)
            .fetch_one(&mut *tx)
            .await?;
            let reason = disable_reason(result, failures, policy);
            if let Some(reason) = &reason {
                sqlx::query(
                    "UPDATE webhooks SET enabled = false, disabled_reason = $2, disabled_at = now(),
                         version = version + 1, updated_at = now()
                     WHERE id = $1 AND enabled",
                )
                .bind(claimed.webhook_id)
                .bind(reason)
                .execute(&mut *tx)
                .await?;
            }
            reason
        };
        tx.commit().await?;
        let recorded = match status {
            DeliveryStatus::Delivered => Recorded::Delivered,
            DeliveryStatus::Dead => Recorded::Dead,
            DeliveryStatus::Pending => Recorded::Retrying(delay),
        };
        Ok(RecordOutcome { recorded, disabled })
    }

    /// Pending deliveries of enabled endpoints and dead ones, for `/metrics`.
    pub async fn counts(&self) -> Result<(i64, i64), sqlx::Error> {
        sqlx::query_as(
            "SELECT count(*) FILTER (WHERE d.status = 'pending' AND w.enabled),
                    count(*) FILTER (WHERE d.status = 'dead')
             FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id
             WHERE d.status <> 'delivered'",
        )
        .fetch_one(&self.pool)
        .await
    }
}

/// Why an attempt disables its endpoint, if it does.
fn disable_reason(result: &AttemptResult, failures: i32, policy: &DeliveryPolicy) -> Option<String> {
    let last = describe(result);
    if result.status_code == Some(410) {
        return Some("the endpoint answered 410 Gone".to_owned());
    }
    let limit = i32::try_from(policy.disable_after).unwrap_or(i32::MAX);
    (limit > 0 && failures >= limit).then(|| format!("{failures} failed attempts in a row; the last: {last}"))
}

fn describe(result: &AttemptResult) -> String {
    match (&result.error, result.status_code) {
        (Some(error), _) => error.clone(),
        (None, Some(code)) => format!("HTTP {code}"),
        (None, None) => "no answer".to_owned(),
    }
}

/// Locks an endpoint's row for this transaction and reads its version.
async fn lock(tx: &mut sqlx::Transaction<'_, Postgres>, id: Uuid) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar("SELECT version FROM webhooks WHERE id = $1 FOR UPDATE")
        .bind(id)
        .fetch_optional(&mut **tx)
        .await
}

fn offset(page: u32, per_page: u32) -> i64 {
    i64::from(page.saturating_sub(1)) * i64::from(per_page)
}

#[derive(sqlx::FromRow)]
struct ClaimedRow {
    delivery_id: Uuid,
    webhook_id: Uuid,
    attempt: i32,
    url: String,
    secret: String,
    id: Option<Uuid>,
    event_type: Option<String>,
    schema_version: Option<i32>,
    stream_type: Option<String>,
    stream_id: Option<Uuid>,
    stream_version: Option<i64>,
    position: Option<i64>,
    occurred_at: Option<DateTime<Utc>>,
    correlation_id: Option<String>,
    causation_id: Option<String>,
    actor_id: Option<Uuid>,
    data: Option<serde_json::Value>,
}

impl ClaimedRow {
    fn into_claimed(self) -> Claimed {
        let event = match (
            self.id,
            self.event_type,
            self.schema_version,
            self.stream_type,
            self.stream_id,
            self.stream_version,
            self.position,
            self.occurred_at,
            self.data,
        ) {
            (
                Some(id),
                Some(event_type),
                Some(schema_version),
                Some(stream_type),
                Some(stream_id),
                Some(stream_version),
                Some(position),
                Some(occurred_at),
                Some(data),
            ) => Some(EventEnvelope {
                id,
                event_type,
                schema_version,
                stream_type,
                stream_id,
                stream_version,
                position,
                occurred_at,
                correlation_id: self.correlation_id,
                causation_id: self.causation_id,
                actor_id: self.actor_id,
                data,
            }),
            _ => None,
        };
        Claimed {
            delivery_id: self.delivery_id,
            webhook_id: self.webhook_id,
            url: self.url,
            secret: self.secret,
            attempt: self.attempt,
            event,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(status_code: Option<u16>, error: Option<&str>) -> AttemptResult {
        AttemptResult {
            started_at: Utc::now(),
            duration: Duration::from_millis(5),
            status_code,
            error: error.map(str::to_owned),
            retry_after: None,
        }
    }

    #[test]
    fn only_a_2xx_answer_counts_as_delivered() {
        assert!(result(Some(200), None).succeeded());
        assert!(result(Some(204), None).succeeded());
        assert!(!result(Some(302), Some("HTTP 302")).succeeded());
        assert!(!result(Some(500), Some("HTTP 500")).succeeded());
        assert!(!result(None, Some("timed out")).succeeded());
    }

    #[test]
    fn an_endpoint_is_disabled_after_the_failures_in_a_row_or_at_once_on_410() {
        let policy = DeliveryPolicy {
            disable_after: 3,
            ..DeliveryPolicy::default()
        };
        let failed = result(Some(500), Some("HTTP 500 Internal Server Error"));
        assert_eq!(disable_reason(&failed, 2, &policy), None);
        assert_eq!(
            disable_reason(&failed, 3, &policy).as_deref(),
            Some("3 failed attempts in a row; the last: HTTP 500 Internal Server Error")
        );
        let gone = result(Some(410), Some("HTTP 410 Gone"));
        assert_eq!(
            disable_reason(&gone, 1, &policy).as_deref(),
            Some("the endpoint answered 410 Gone")
        );
        let never = DeliveryPolicy {
            disable_after: 0,
            ..DeliveryPolicy::default()
        };
        assert_eq!(disable_reason(&failed, 10_000, &never), None);
    }
}
