//! The record of operator actions (`operator_actions`): what administrators did to the
//! running system (a dead letter retried or discarded on the workers; a webhook endpoint
//! registered, changed, deleted or given a new secret, a delivery retried, a replay on the
//! command API), by whom, when, why and with what outcome, listed by the workers at
//! `GET /api/v1/operator-actions`.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;

/// One operator action.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OperatorAction {
    /// Its id.
    pub id: Uuid,
    /// The administrator who did it.
    pub actor_id: Uuid,
    /// What was done: `dead_letter.retry`, `dead_letter.discard`, `webhook.create`,
    /// `webhook.update`, `webhook.delete`, `webhook.rotate_secret`, `webhook.retry_delivery`
    /// or `webhook.replay`.
    pub action: String,
    /// What it was done to (a dead letter, webhook or delivery id).
    pub target: String,
    /// Why, as the operator said.
    pub reason: Option<String>,
    /// How it ended: `resolved`, `discarded`, or why it did not.
    pub outcome: String,
    /// When.
    pub at: DateTime<Utc>,
}

/// Records an action.
pub async fn record<'c>(
    conn: impl sqlx::PgExecutor<'c>,
    actor_id: Uuid,
    action: &str,
    target: Uuid,
    reason: Option<&str>,
    outcome: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO operator_actions (id, actor_id, action, target, reason, outcome)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(Uuid::now_v7())
    .bind(actor_id)
    .bind(action)
    .bind(target.to_string())
    .bind(reason)
    .bind(outcome)
    .execute(conn)
    .await
    .map(|_| ())
}

/// A page of actions, newest first, and how many there are.
pub async fn list(
    pool: &PgPool,
    page: u32,
    per_page: u32,
) -> Result<(Vec<OperatorAction>, i64), sqlx::Error> {
    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM operator_actions")
        .fetch_one(pool)
        .await?;
    let offset = i64::from(page.saturating_sub(1)) * i64::from(per_page);
    let items = sqlx::query_as::<_, OperatorAction>(
        "SELECT id, actor_id, action, target, reason, outcome, at FROM operator_actions
         ORDER BY at DESC, id DESC LIMIT $1 OFFSET $2",
    )
    .bind(i64::from(per_page))
    .bind(offset)
    .fetch_all(pool)
    .await?;
    Ok((items, total))
}
