//! Users made through the command API (argon2 included) and the two throughput targets
//! on them: renames (one `user.renamed` each) and single-user reads from the query API.

use crate::load::{Throughput, closed_loop};
use crate::services::Running;
use crate::{expect_status, http_client};
use anyhow::{Context, bail};
use futures::{StreamExt, TryStreamExt};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// The password every benchmark user has.
pub const PASSWORD: &str = "bench-password-1";

/// A registered, signed-in user.
#[derive(Debug, Clone)]
pub struct BenchUser {
    /// User id.
    pub id: Uuid,
    /// Email.
    pub email: String,
    /// Access token.
    pub token: String,
}

/// Registers and signs in `count` users, a few at a time (the server bounds argon2 anyway).
pub async fn register(api: &Running, count: usize, run_suffix: &str) -> anyhow::Result<Vec<BenchUser>> {
    let client = http_client(8)?;
    futures::stream::iter(0..count)
        .map(|i| {
            let client = client.clone();
            let email = format!("bench-{i}-{run_suffix}@example.com");
            async move {
                let created = post(
                    &client,
                    &api.url("/api/v1/auth/register"),
                    json!({"email": email, "name": format!("Bench User {i}"), "password": PASSWORD}),
                    201,
                )
                .await?;
                let id = created["data"]["id"]
                    .as_str()
                    .and_then(|id| id.parse().ok())
                    .context("registration answered without an id")?;
                let token = login(&client, api, &email).await?;
                Ok::<_, anyhow::Error>(BenchUser { id, email, token })
            }
        })
        .buffered(8)
        .try_collect()
        .await
}

async fn post(client: &reqwest::Client, url: &str, body: Value, expected: u16) -> anyhow::Result<Value> {
    let response = client.post(url).json(&body).send().await?;
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    if status != expected {
        bail!("{url} answered {status}: {body}");
    }
    Ok(body)
}

/// The user worker `worker` works on at `iteration`: with at least as many users as
/// workers each worker keeps to its own users, so renames do not conflict.
fn user_for(users: &[BenchUser], concurrency: usize, worker: usize, iteration: u64) -> &BenchUser {
    let index = (worker as u64 + iteration * concurrency as u64) % users.len() as u64;
    &users[usize::try_from(index).unwrap_or(0)]
}

/// Concurrent `PATCH /api/v1/users/{id}` renames by the users themselves, each to a new
/// name so that each appends exactly one event.
pub async fn renames(
    api: &Running,
    users: &[BenchUser],
    concurrency: usize,
    window: Duration,
) -> anyhow::Result<Throughput> {
    let client = http_client(concurrency)?;
    let users: Arc<[BenchUser]> = users.into();
    let base = api.base.clone();
    Ok(closed_loop(concurrency, window, move |worker, iteration| {
        let user = user_for(&users, concurrency, worker, iteration);
        let request = client
            .patch(format!("{base}/api/v1/users/{}", user.id))
            .bearer_auth(&user.token)
            .json(&json!({"name": format!("Renamed {worker}-{iteration}")}));
        async move { expect_status(request, 200).await }
    })
    .await)
}

/// Concurrent `GET /api/v1/users/{id}` of each user by themselves (Redis hits once warm).
pub async fn reads(
    api: &Running,
    users: &[BenchUser],
    concurrency: usize,
    window: Duration,
) -> anyhow::Result<Throughput> {
    let client = http_client(concurrency)?;
    let users: Arc<[BenchUser]> = users.into();
    let base = api.base.clone();
    Ok(closed_loop(concurrency, window, move |worker, iteration| {
        let user = user_for(&users, concurrency, worker, iteration);
        let request = client
            .get(format!("{base}/api/v1/users/{}", user.id))
            .bearer_auth(&user.token);
        async move { expect_status(request, 200).await }
    })
    .await)
}

/// An access token of the account `email` (with [`PASSWORD`]).
pub async fn sign_in(api: &Running, email: &str) -> anyhow::Result<String> {
    login(&http_client(1)?, api, email).await
}

async fn login(client: &reqwest::Client, api: &Running, email: &str) -> anyhow::Result<String> {
    let tokens = post(
        client,
        &api.url("/api/v1/auth/login"),
        json!({"email": email, "password": PASSWORD}),
        200,
    )
    .await?;
    Ok(tokens["data"]["accessToken"]
        .as_str()
        .context("login answered without an access token")?
        .to_owned())
}

/// Concurrent `GET /api/v1/users?...` 20-row pages by an administrator: page mode
/// (`page`, `perPage`, with the total) over the first `pages` pages, or cursor mode
/// (`limit`, the first page).
pub async fn pages(
    api: &Running,
    admin_token: &str,
    pages: u64,
    cursor_mode: bool,
    concurrency: usize,
    window: Duration,
) -> anyhow::Result<Throughput> {
    let client = http_client(concurrency)?;
    let base = api.base.clone();
    let token: Arc<str> = admin_token.into();
    Ok(closed_loop(concurrency, window, move |worker, iteration| {
        let page = (worker as u64 + iteration) % pages.max(1) + 1;
        let url = if cursor_mode {
            format!("{base}/api/v1/users?limit=20")
        } else {
            format!("{base}/api/v1/users?page={page}&perPage=20")
        };
        let request = client.get(url).bearer_auth(&*token);
        async move { expect_status(request, 200).await }
    })
    .await)
}

/// The user as the query API answers it (`None` while it is not there yet).
pub async fn read_user(client: &reqwest::Client, base: &str, user: &BenchUser) -> Option<Value> {
    let response = client
        .get(format!("{base}/api/v1/users/{}", user.id))
        .bearer_auth(&user.token)
        .send()
        .await
        .ok()?;
    if response.status() != 200 {
        return None;
    }
    let mut body: Value = response.json().await.ok()?;
    Some(body["data"].take())
}
