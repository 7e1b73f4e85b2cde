//! Projection rebuild: bulk-inserts realistic user streams into the event store, then
//! times `projector::rebuild` over everything the store holds.

use crate::Scratch;
use anyhow::Context;
use domain::DomainEvent;
use domain::user::{Email, Role, UserEvent, UserName};
use futures::{StreamExt, TryStreamExt};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// Events per user stream on average (a registration and its later changes).
pub const EVENTS_PER_USER: usize = 5;
/// Rows per INSERT statement.
const CHUNK: usize = 20_000;

/// What seeding and rebuilding took.
pub struct Rebuild {
    /// Events inserted by the seeding.
    pub seeded: usize,
    /// Time the seeding took.
    pub seed_duration: Duration,
    /// What the rebuild reported.
    pub report: projector::RebuildReport,
}

/// One stored event, as arrays for `UNNEST`.
#[derive(Default)]
struct Rows {
    ids: Vec<Uuid>,
    streams: Vec<Uuid>,
    versions: Vec<i64>,
    types: Vec<&'static str>,
    data: Vec<String>,
}

impl Rows {
    fn push(&mut self, stream: Uuid, version: i64, event: &UserEvent) {
        self.ids.push(Uuid::now_v7());
        self.streams.push(stream);
        self.versions.push(version);
        self.types.push(event.event_type());
        self.data.push(event.to_data().to_string());
    }
}

/// The event at `version` (1-based) of user `i`: registered, then renames, with a role
/// change for one user in ten and a deletion (last) for one in fifty.
fn event_for(i: usize, version: usize) -> anyhow::Result<UserEvent> {
    Ok(match version {
        1 => UserEvent::Registered {
            email: Email::parse(&format!("seeded-{i}@example.com"))?,
            name: UserName::parse(&format!("Seeded User {i}"))?,
            role: Role::User,
        },
        3 if i.is_multiple_of(10) => UserEvent::RoleChanged {
            role: Role::Admin,
            previous_role: Role::User,
        },
        EVENTS_PER_USER if i.is_multiple_of(50) => UserEvent::Deleted {},
        v => UserEvent::Renamed {
            name: UserName::parse(&format!("Seeded User {i} v{v}"))?,
        },
    })
}

/// `total` events over `total / EVENTS_PER_USER` users, written version by version so
/// that each stream's events are spread across the whole store, as they would be.
fn generate(total: usize) -> anyhow::Result<Vec<Rows>> {
    let users = total.div_ceil(EVENTS_PER_USER).max(1);
    let streams: Vec<Uuid> = (0..users).map(|_| Uuid::now_v7()).collect();
    let mut chunks = vec![Rows::default()];
    let mut produced = 0;
    'rounds: for version in 1..=EVENTS_PER_USER {
        for (i, stream) in streams.iter().enumerate() {
            if produced == total {
                break 'rounds;
            }
            if chunks.last().is_some_and(|rows| rows.ids.len() == CHUNK) {
                chunks.push(Rows::default());
            }
            let rows = chunks.last_mut().context("a chunk exists")?;
            rows.push(*stream, version as i64, &event_for(i, version)?);
            produced += 1;
        }
    }
    Ok(chunks)
}

async fn insert(pool: &sqlx::PgPool, rows: Rows) -> Result<u64, sqlx::Error> {
    let result = sqlx::query(
        "INSERT INTO events (id, stream_type, stream_id, stream_version, event_type, schema_version,
                             data, occurred_at)
         SELECT id, 'user', stream_id, version, event_type, 1, data::jsonb, now()
         FROM UNNEST($1::uuid[], $2::uuid[], $3::int8[], $4::text[], $5::text[])
              WITH ORDINALITY AS t(id, stream_id, version, event_type, data, n)
         ORDER BY n",
    )
    .bind(&rows.ids)
    .bind(&rows.streams)
    .bind(&rows.versions)
    .bind(&rows.types)
    .bind(&rows.data)
    .execute(pool)
    .await?;
    Ok(result.rows_affected())
}

/// Seeds `events` events and rebuilds the users projection (Postgres and Redis).
/// Stop the projector first: the rebuild replaces what it writes.
pub async fn measure(scratch: &Scratch, events: usize) -> anyhow::Result<Rebuild> {
    let started = Instant::now();
    let chunks = generate(events)?;
    let pool = scratch.pool.clone();
    // Two statements at once; `buffered` starts a chunk only after the one two places
    // before it finished, so every stream's events keep their order of positions.
    let seeded: Vec<u64> = futures::stream::iter(chunks)
        .map(|rows| insert(&pool, rows))
        .buffered(2)
        .try_collect()
        .await
        .context("seeding the event store")?;
    let seed_duration = started.elapsed();
    sqlx::query("ANALYZE events")
        .execute(&scratch.pool)
        .await
        .context("analysing the seeded events")?;
    let settings = projector::Settings::new(scratch.infra.clone());
    let cache = projector::Projector::documents(&settings);
    let report = projector::rebuild(&scratch.pool, &cache, &scratch.redis, settings.rebuild)
        .await
        .context("rebuilding the users projection")?;
    Ok(Rebuild {
        seeded: usize::try_from(seeded.iter().sum::<u64>()).unwrap_or(usize::MAX),
        seed_duration,
        report,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_streams_are_complete_and_in_version_order() {
        let chunks = generate(1000).expect("events");
        let rows: Vec<(Uuid, i64, &str)> = chunks
            .iter()
            .flat_map(|c| (0..c.ids.len()).map(|i| (c.streams[i], c.versions[i], c.types[i])))
            .collect();
        assert_eq!(rows.len(), 1000);
        let first = rows[0].0;
        let versions: Vec<i64> = rows.iter().filter(|r| r.0 == first).map(|r| r.1).collect();
        assert_eq!(versions, vec![1, 2, 3, 4, 5]);
        assert_eq!(rows[0].2, "user.registered");
        assert!(rows.iter().any(|r| r.2 == "user.deleted"));
        assert!(rows.iter().any(|r| r.2 == "user.role_changed"));
    }
}
