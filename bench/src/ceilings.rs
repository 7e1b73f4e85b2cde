//! The ceilings the targets are ratios of, measured on this machine in this run:
//! single-row durable Postgres commits, Redis GETs, and JSON responses of a bare axum handler.

use crate::load::{Throughput, closed_loop};
use crate::{Scratch, http_client};
use anyhow::Context;
use axum::Json;
use axum::routing::get;
use serde_json::{Value, json};
use sqlx::postgres::PgPoolOptions;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Clients committing at once for the Postgres ceiling (DESIGN.md: 32).
pub const POSTGRES_CLIENTS: usize = 32;
/// Multiplexed connections for the Redis ceiling.
pub const REDIS_CONNECTIONS: usize = 4;
/// GETs in flight for the Redis ceiling.
pub const REDIS_IN_FLIGHT: usize = 256;

/// Autocommit single-row INSERTs from [`POSTGRES_CLIENTS`] clients into a scratch table.
pub async fn postgres_commits(scratch: &Scratch, window: Duration) -> anyhow::Result<Throughput> {
    sqlx::query(
        "CREATE TABLE bench_commits (
            id BIGSERIAL PRIMARY KEY,
            payload TEXT NOT NULL,
            created_at TIMESTAMPTZ NOT NULL DEFAULT now())",
    )
    .execute(&scratch.pool)
    .await
    .context("creating the scratch table")?;
    let clients = u32::try_from(POSTGRES_CLIENTS).unwrap_or(32);
    let pool = PgPoolOptions::new()
        .min_connections(clients)
        .max_connections(clients)
        .acquire_timeout(Duration::from_secs(10))
        .connect(&scratch.database_url)
        .await
        .context("connecting the ceiling's clients")?;
    let worker_pool = pool.clone();
    let result = closed_loop(POSTGRES_CLIENTS, window, move |worker, iteration| {
        let pool = worker_pool.clone();
        async move {
            sqlx::query("INSERT INTO bench_commits (payload) VALUES ($1)")
                .bind(format!("worker {worker} row {iteration}"))
                .execute(&pool)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        }
    })
    .await;
    pool.close().await;
    Ok(result)
}

/// GETs of one small document, [`REDIS_IN_FLIGHT`] at once over [`REDIS_CONNECTIONS`]
/// multiplexed connections (which pipeline what is in flight).
pub async fn redis_gets(scratch: &Scratch, window: Duration) -> anyhow::Result<Throughput> {
    let key = format!("{}:bench:ceiling", scratch.infra.redis_prefix);
    let document = sample_document().to_string();
    let mut setter = scratch.redis.clone();
    redis::cmd("SET")
        .arg(&key)
        .arg(&document)
        .query_async::<()>(&mut setter)
        .await
        .context("writing the Redis ceiling's key")?;
    let client = redis::Client::open(scratch.infra.redis_url.as_str())?;
    let mut connections = Vec::with_capacity(REDIS_CONNECTIONS);
    for _ in 0..REDIS_CONNECTIONS {
        connections.push(client.get_multiplexed_async_connection().await?);
    }
    Ok(closed_loop(REDIS_IN_FLIGHT, window, move |worker, _| {
        let mut conn = connections[worker % connections.len()].clone();
        let key = key.clone();
        async move {
            match redis::cmd("GET")
                .arg(&key)
                .query_async::<Option<String>>(&mut conn)
                .await
            {
                Ok(Some(_)) => Ok(()),
                Ok(None) => Err("key missing".to_owned()),
                Err(error) => Err(error.to_string()),
            }
        }
    })
    .await)
}

/// JSON responses of a handler that does nothing else, over loopback.
pub async fn bare_axum(concurrency: usize, window: Duration) -> anyhow::Result<Throughput> {
    let document = sample_document();
    let router = axum::Router::new().route(
        "/bench",
        get(move || {
            let document = document.clone();
            async move { Json(document) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/bench", listener.local_addr()?);
    let stop = CancellationToken::new();
    let server = tokio::spawn(web::serve(
        listener,
        router,
        web::ConnectionLimits::default(),
        stop.clone(),
    ));
    let client = http_client(concurrency)?;
    let result = closed_loop(concurrency, window, move |_, _| {
        let request = client.get(&url);
        async move { crate::expect_status(request, 200).await }
    })
    .await;
    stop.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(5), server).await;
    Ok(result)
}

/// A body the size of a single-user answer.
fn sample_document() -> Value {
    json!({
        "data": {
            "id": "0195f0a0-0000-7000-8000-000000000000",
            "email": "someone@example.com",
            "name": "Some One",
            "role": "user",
            "version": 3,
            "createdAt": "2026-01-01T00:00:00Z",
            "updatedAt": "2026-01-01T00:00:00Z"
        },
        "meta": {"requestId": "00000000-0000-0000-0000-000000000000"}
    })
}
