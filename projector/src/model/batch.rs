//! One batch of deliveries in one transaction (see [`super`]): lock, fold in memory,
//! write, commit.

use super::{Delivery, INSERT_RACE_ATTEMPTS, Outcome, Projected, ReadModel, by_stream, keyed, load_gap};
use crate::{ProjectionError, store};
use eventstore::EventEnvelope;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

/// What a batch does to one stream: its row before and after, and the outcome of each of
/// its deliveries (by index in the batch).
struct Step<R> {
    before: Option<R>,
    after: Option<R>,
    outcomes: Vec<(usize, Result<Outcome, ProjectionError>)>,
}

/// Projects `events` (deliveries of streams of `M`, in delivery order) in one transaction;
/// one result per delivery, in the same order. `Err` when the transaction failed: then
/// nothing of the batch was written.
pub async fn project_batch<M: ReadModel>(
    pool: &PgPool,
    events: &[EventEnvelope],
) -> Result<Vec<Delivery<M::Row>>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let keyspace = store::share_projection_lock(&mut tx).await?;
    let streams = by_stream(events);
    let ids: Vec<Uuid> = streams.keys().copied().collect();
    let mut rows = keyed::<M>(M::lock_rows(&mut tx, &ids).await?);
    let mut steps = Vec::with_capacity(streams.len());
    for (id, deliveries) in &streams {
        steps.push(fold::<M>(&mut tx, rows.remove(id), deliveries, events).await?);
    }
    let written: Vec<&M::Row> = steps
        .iter()
        .filter(|step| changes::<M>(step))
        .filter_map(|step| step.after.as_ref())
        .collect();
    M::before_writes(&mut tx, &written).await?;
    for ((id, deliveries), step) in streams.iter().zip(&mut steps) {
        insert::<M>(&mut tx, *id, deliveries, events, step).await?;
    }
    let updates: Vec<(&M::Row, &M::Row)> = steps
        .iter()
        .filter(|step| changes::<M>(step))
        .filter_map(|step| step.before.as_ref().zip(step.after.as_ref()))
        .collect();
    if !updates.is_empty() {
        M::update_rows(&mut tx, &updates).await?;
    }
    tx.commit().await?;
    let mut results: Vec<(usize, Delivery<M::Row>)> = Vec::with_capacity(events.len());
    for step in steps {
        let created = step.before.is_none() && step.after.is_some();
        for (index, outcome) in step.outcomes {
            let projected = outcome.map(|outcome| Projected {
                outcome,
                keyspace,
                row: step.after.clone(),
                created,
            });
            results.push((index, projected));
        }
    }
    results.sort_by_key(|(index, _)| *index);
    Ok(results.into_iter().map(|(_, result)| result).collect())
}

/// Whether a step changes its row (a creation or a newer version).
fn changes<M: ReadModel>(step: &Step<M::Row>) -> bool {
    match (&step.before, &step.after) {
        (None, Some(_)) => true,
        (Some(before), Some(after)) => M::version(after) != M::version(before),
        (_, None) => false,
    }
}

/// Folds a stream's deliveries over its locked row, in delivery order: a delivery at or
/// below the version reached is a duplicate, the next one is applied, one further ahead
/// first applies the missing events from the store.
async fn fold<M: ReadModel>(
    conn: &mut PgConnection,
    before: Option<M::Row>,
    deliveries: &[usize],
    events: &[EventEnvelope],
) -> Result<Step<M::Row>, sqlx::Error> {
    let mut state = before.clone();
    // Tracked apart from the row: events before a creation create nothing, yet they were
    // applied in order.
    let mut version = before.as_ref().map_or(0, M::version);
    let mut outcomes = Vec::with_capacity(deliveries.len());
    for &index in deliveries {
        let event = &events[index];
        if event.stream_version <= version {
            outcomes.push((index, Ok(Outcome::Duplicate)));
            continue;
        }
        if event.stream_version == version + 1 {
            state = M::evolve(state, event);
            outcomes.push((index, Ok(Outcome::Applied { gap_filled: 0 })));
        } else {
            match load_gap(conn, event, version).await {
                Ok(missing) => {
                    state = missing.iter().fold(state, M::evolve);
                    let gap_filled = missing.len().saturating_sub(1);
                    outcomes.push((index, Ok(Outcome::Applied { gap_filled })));
                }
                Err(ProjectionError::Database(error)) => return Err(error),
                Err(error) => {
                    outcomes.push((index, Err(error)));
                    continue;
                }
            }
        }
        version = event.stream_version;
    }
    Ok(Step {
        before,
        after: state,
        outcomes,
    })
}

/// Inserts the row a step creates. When a concurrent replica inserted it first, the
/// step is folded again over that row (nothing of it was written yet); after a few
/// lost races its deliveries fail, to be redelivered.
async fn insert<M: ReadModel>(
    conn: &mut PgConnection,
    id: Uuid,
    deliveries: &[usize],
    events: &[EventEnvelope],
    step: &mut Step<M::Row>,
) -> Result<(), sqlx::Error> {
    let mut attempts = 0;
    while let Some(row) = step.after.as_mut().filter(|_| step.before.is_none()) {
        if attempts == INSERT_RACE_ATTEMPTS {
            step.after = None;
            step.outcomes = deliveries
                .iter()
                .map(|index| (*index, Err(ProjectionError::Contended(id))))
                .collect();
            return Ok(());
        }
        attempts += 1;
        if M::insert_row(conn, row).await? {
            return Ok(());
        }
        // Read committed: this statement sees the row the other replica committed.
        let current = M::lock_rows(conn, &[id]).await?.pop();
        *step = fold::<M>(conn, current, deliveries, events).await?;
    }
    Ok(())
}
