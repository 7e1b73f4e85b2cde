//! Waiting for the live projection: every user stream's row at its last version, and the
//! benchmark users served at that version by the query API (so reads are Redis hits).

use crate::http_client;
use crate::services::Running;
use crate::users::{BenchUser, read_user};
use runtime::InfraSettings;
use sqlx::PgPool;
use std::time::Duration;
use tokio::time::Instant;

/// User streams whose `users_view` row is missing or behind the store.
async fn streams_behind(pool: &PgPool) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT count(*)
         FROM (SELECT stream_id, max(stream_version) AS version
               FROM events WHERE stream_type = 'user' GROUP BY stream_id) e
         LEFT JOIN users_view v ON v.id = e.stream_id
         WHERE v.version IS DISTINCT FROM e.version",
    )
    .fetch_one(pool)
    .await
}

/// Waits until the projection has applied every stored user event and the query API
/// shows each benchmark user at its last version; answers how long the projection took
/// (the check of the query API afterwards is not counted). `Err` says what was still
/// missing when `timeout` ran out.
pub async fn wait(
    pool: &PgPool,
    infra: &InfraSettings,
    query: &Running,
    users: &[BenchUser],
    timeout: Duration,
) -> Result<Duration, String> {
    let started = Instant::now();
    let deadline = started + timeout;
    loop {
        match streams_behind(pool).await {
            Ok(0) => break,
            Ok(behind) if Instant::now() >= deadline => {
                return Err(format!(
                    "{behind} user streams not projected after {} s ({})",
                    timeout.as_secs(),
                    consumer_state(infra).await
                ));
            }
            Ok(_) => {}
            Err(error) => return Err(format!("checking the projection: {error}")),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Caught up: every row at its stream's version. The check of the query API below is
    // not timed (it reads the users one by one, seconds for thousands of them).
    let caught_up = started.elapsed();
    let client = http_client(1).map_err(|e| e.to_string())?;
    for user in users {
        let version: i64 = sqlx::query_scalar("SELECT version FROM users_view WHERE id = $1")
            .bind(user.id)
            .fetch_one(pool)
            .await
            .map_err(|e| format!("reading the row of a benchmark user: {e}"))?;
        loop {
            let data = read_user(&client, &query.base, user).await;
            if data.is_some_and(|data| data["version"].as_i64() >= Some(version)) {
                break;
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "the query API still serves an old version of user {} after {} s",
                    user.id,
                    timeout.as_secs()
                ));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    Ok(caught_up)
}

/// The projector's JetStream consumer in a few words, for notes.
pub async fn consumer_state(infra: &InfraSettings) -> String {
    let info = async {
        let client = async_nats::connect(&infra.nats_url).await?;
        let jetstream = async_nats::jetstream::new(client);
        let stream = jetstream.get_stream(&infra.stream.name).await?;
        let info = stream.consumer_info(projector::users::CONSUMER).await?;
        Ok::<_, async_nats::Error>(info.clone())
    };
    match info.await {
        Ok(info) => format!(
            "consumer: {} pending, {} awaiting ack, {} redelivered, delivered up to stream seq {}, \
             acknowledged up to {}",
            info.num_pending,
            info.num_ack_pending,
            info.num_redelivered,
            info.delivered.stream_sequence,
            info.ack_floor.stream_sequence
        ),
        Err(error) => format!("consumer state unavailable: {error}"),
    }
}
