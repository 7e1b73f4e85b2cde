//! Figures that explain the targets rather than being targets: the command path without
//! HTTP and tokens, and the CPU cost of one access-token check.

use crate::Scratch;
use crate::load::{Throughput, closed_loop};
use anyhow::Context;
use command_api::commands::Users;
use domain::user::{Email, Role, UserCommand, UserEvent, UserName};
use eventstore::{EventMetadata, EventStore};
use sqlx::postgres::PgPoolOptions;
use std::sync::Arc;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// Pool size of the in-process command path (the command API's default).
pub const STORE_CONNECTIONS: u32 = 20;
/// Token checks timed for [`token_check_cost`].
const TOKEN_CHECKS: u32 = 2000;

/// Renames through `command_api::commands::Users` (load the stream, decide, append,
/// outbox row, commit) with `concurrency` in flight, each worker on its own new user.
pub async fn store_commands(
    scratch: &Scratch,
    concurrency: usize,
    window: Duration,
) -> anyhow::Result<Throughput> {
    let pool = PgPoolOptions::new()
        .max_connections(STORE_CONNECTIONS)
        .acquire_timeout(Duration::from_secs(10))
        .connect(&scratch.database_url)
        .await
        .context("connecting the in-process command path")?;
    let store = EventStore::new(pool.clone());
    let mut ids = Vec::with_capacity(concurrency);
    for worker in 0..concurrency {
        let id = Uuid::now_v7();
        let registered = UserEvent::Registered {
            email: Email::parse(&format!("direct-{worker}-{}@example.com", scratch.db_name))?,
            name: UserName::parse(&format!("Direct {worker}"))?,
            role: Role::User,
        };
        let mut uow = store.begin().await?;
        uow.append(id, 0, &[registered], &EventMetadata::default())
            .await?;
        uow.commit().await?;
        ids.push(id);
    }
    let users = Users::new(eventstore::Engine::new(store), auth::PasswordHasher::new(1));
    let ids: Arc<[Uuid]> = ids.into();
    let result = closed_loop(concurrency, window, move |worker, iteration| {
        let users = users.clone();
        let id = ids[worker];
        async move {
            let name = UserName::parse(&format!("Direct {worker}-{iteration}")).map_err(|e| e.to_string())?;
            users
                .execute(
                    id,
                    UserCommand::Rename { name },
                    None,
                    None,
                    &EventMetadata::default(),
                )
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        }
    })
    .await;
    pool.close().await;
    Ok(result)
}

/// Average CPU time of one access-token check (EdDSA signature, claims), on one task.
pub async fn token_check_cost(scratch: &Scratch) -> anyhow::Result<Duration> {
    let key = auth::SigningKey::generate();
    let issuer = auth::TokenIssuer::new(key.clone(), "cqrs-backend", chrono::Duration::minutes(15));
    let token = issuer.issue(Uuid::now_v7(), Role::User)?.token;
    let verifier = auth::TokenVerifier::new(scratch.pool.clone(), "cqrs-backend");
    verifier.trust(&key);
    verifier.verify(&token).await.context("a fresh token verifies")?;
    let started = Instant::now();
    for _ in 0..TOKEN_CHECKS {
        verifier.verify(&token).await.context("a fresh token verifies")?;
    }
    Ok(started.elapsed() / TOKEN_CHECKS)
}

/// `GET /health/live` on a service: the hardened middleware stack without token check,
/// Redis or Postgres.
pub async fn hardened_health(
    api: &crate::services::Running,
    concurrency: usize,
    window: Duration,
) -> anyhow::Result<Throughput> {
    let client = crate::http_client(concurrency)?;
    let url = api.url("/health/live");
    Ok(closed_loop(concurrency, window, move |_, _| {
        let request = client.get(&url);
        async move { crate::expect_status(request, 200).await }
    })
    .await)
}
