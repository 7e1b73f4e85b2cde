//! The reviews projection: `reviews_view` (one row per review stream, kept as a tombstone
//! once deleted) and each product's `product_review_stats` (live reviews, their rating sum,
//! and how many review events changed them), in the same transaction; then the reviewed
//! products' Redis documents.

use crate::consumer::{Delivered, LiveProjection, keyspace_of};
use crate::model::ReadModel;
use crate::registry::Services;
use crate::store;
use domain::DomainEvent;
use domain::review::ReviewEvent;
use eventstore::EventEnvelope;
use readmodels::reviews::ROW_COLUMNS as COLUMNS;
pub use readmodels::reviews::ReviewRow;
use sqlx::PgConnection;
use std::collections::BTreeMap;
use uuid::Uuid;

/// Applies the next event of a review's stream. An event this code cannot read advances
/// the version only, and is logged.
pub fn evolve(state: Option<ReviewRow>, envelope: &EventEnvelope) -> Option<ReviewRow> {
    let event = ReviewEvent::from_stored(&envelope.event_type, envelope.schema_version, &envelope.data);
    if let Err(error) = &event {
        store::log_unreadable(envelope, error);
    }
    let Some(mut row) = state else {
        return match event {
            Ok(ReviewEvent::Written {
                product_id,
                author_id,
                rating,
                comment,
            }) => Some(ReviewRow {
                id: envelope.stream_id,
                product_id,
                author_id,
                rating: i16::from(rating.get()),
                comment: comment.map(|c| c.as_str().to_owned()),
                deleted: false,
                version: envelope.stream_version,
                created_at: envelope.occurred_at,
                updated_at: envelope.occurred_at,
            }),
            Ok(ReviewEvent::Edited { .. } | ReviewEvent::Deleted { .. }) | Err(_) => {
                store::log_before_creation(envelope);
                None
            }
        };
    };
    row.version = envelope.stream_version;
    row.updated_at = envelope.occurred_at;
    match event {
        Ok(ReviewEvent::Edited { rating, comment, .. }) if !row.deleted => {
            row.rating = i16::from(rating.get());
            row.comment = comment.map(|c| c.as_str().to_owned());
        }
        Ok(ReviewEvent::Deleted { .. }) => row.deleted = true,
        Ok(ReviewEvent::Written { .. } | ReviewEvent::Edited { .. }) | Err(_) => {}
    }
    Some(row)
}

/// The `reviews_view` and `product_review_stats` read model.
pub struct Reviews;

impl ReadModel for Reviews {
    type Row = ReviewRow;
    const STREAM_TYPE: &'static str = ReviewEvent::STREAM_TYPE;
    const TABLES: &'static [&'static str] = &["reviews_view", "product_review_stats"];

    fn id(row: &ReviewRow) -> Uuid {
        row.id
    }

    fn version(row: &ReviewRow) -> i64 {
        row.version
    }

    fn evolve(state: Option<ReviewRow>, envelope: &EventEnvelope) -> Option<ReviewRow> {
        evolve(state, envelope)
    }

    async fn lock_rows(conn: &mut PgConnection, ids: &[Uuid]) -> Result<Vec<ReviewRow>, sqlx::Error> {
        let sql = format!("SELECT {COLUMNS} FROM reviews_view WHERE id = ANY($1) ORDER BY id FOR UPDATE");
        sqlx::query_as(&sql).bind(ids).fetch_all(conn).await
    }

    async fn insert_row(conn: &mut PgConnection, row: &mut ReviewRow) -> Result<bool, sqlx::Error> {
        let inserted = write_rows(conn, &[&*row], "DO NOTHING").await? == 1;
        if inserted {
            adjust_stats(conn, &[(None, &*row)]).await?;
        }
        Ok(inserted)
    }

    async fn update_rows(
        conn: &mut PgConnection,
        changes: &[(&ReviewRow, &ReviewRow)],
    ) -> Result<(), sqlx::Error> {
        let rows: Vec<&ReviewRow> = changes.iter().map(|(_, after)| *after).collect();
        write_rows(conn, &rows, UPSERT).await?;
        let changes: Vec<(Option<&ReviewRow>, &ReviewRow)> = changes
            .iter()
            .map(|(before, after)| (Some(*before), *after))
            .collect();
        adjust_stats(conn, &changes).await
    }

    async fn load_rows(conn: &mut PgConnection, ids: &[Uuid]) -> Result<Vec<ReviewRow>, sqlx::Error> {
        let sql = format!("SELECT {COLUMNS} FROM reviews_view WHERE id = ANY($1)");
        sqlx::query_as(&sql).bind(ids).fetch_all(conn).await
    }

    async fn upsert_rows(conn: &mut PgConnection, rows: &[&ReviewRow]) -> Result<(), sqlx::Error> {
        write_rows(conn, rows, UPSERT).await.map(|_| ())
    }

    /// The statistics are recomputed from every review row.
    async fn after_replay(conn: &mut PgConnection) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO product_review_stats (product_id, review_count, rating_sum, version)
             SELECT product_id, count(*) FILTER (WHERE NOT deleted),
                    coalesce(sum(rating) FILTER (WHERE NOT deleted), 0), sum(version)
             FROM reviews_view GROUP BY product_id ORDER BY product_id
             ON CONFLICT (product_id) DO UPDATE SET review_count = EXCLUDED.review_count,
                    rating_sum = EXCLUDED.rating_sum, version = EXCLUDED.version",
        )
        .execute(conn)
        .await
        .map(|_| ())
    }
}

/// Overwrites a row unless it is already newer.
const UPSERT: &str = "DO UPDATE SET rating = EXCLUDED.rating, comment = EXCLUDED.comment,
     deleted = EXCLUDED.deleted, version = EXCLUDED.version, updated_at = EXCLUDED.updated_at
     WHERE reviews_view.version < EXCLUDED.version";

/// Writes rows in one statement; how many were written.
async fn write_rows(
    conn: &mut PgConnection,
    rows: &[&ReviewRow],
    on_conflict: &str,
) -> Result<u64, sqlx::Error> {
    let sql = format!(
        "INSERT INTO reviews_view ({COLUMNS})
         SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::uuid[], $4::int2[], $5::text[], $6::bool[],
                              $7::int8[], $8::timestamptz[], $9::timestamptz[])
         ON CONFLICT (id) {on_conflict}"
    );
    Ok(sqlx::query(&sql)
        .bind(rows.iter().map(|r| r.id).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.product_id).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.author_id).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.rating).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.comment.clone()).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.deleted).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.version).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.created_at).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.updated_at).collect::<Vec<_>>())
        .execute(conn)
        .await?
        .rows_affected())
}

/// Adds each change's difference to its product's statistics, in product id order (one
/// statement, so concurrent batches lock the products in the same order).
async fn adjust_stats(
    conn: &mut PgConnection,
    changes: &[(Option<&ReviewRow>, &ReviewRow)],
) -> Result<(), sqlx::Error> {
    let mut delta: BTreeMap<Uuid, (i64, i64, i64)> = BTreeMap::new();
    for (before, after) in changes {
        let (count, sum, events) = after.counted();
        let (was_count, was_sum, was_events) = before.map_or((0, 0, 0), ReviewRow::counted);
        let entry = delta.entry(after.product_id).or_default();
        entry.0 += count - was_count;
        entry.1 += sum - was_sum;
        entry.2 += events - was_events;
    }
    if delta.is_empty() {
        return Ok(());
    }
    let ids: Vec<Uuid> = delta.keys().copied().collect();
    let counts: Vec<i64> = delta.values().map(|d| d.0).collect();
    let sums: Vec<i64> = delta.values().map(|d| d.1).collect();
    let events: Vec<i64> = delta.values().map(|d| d.2).collect();
    sqlx::query(
        "INSERT INTO product_review_stats AS stats (product_id, review_count, rating_sum, version)
         SELECT * FROM UNNEST($1::uuid[], $2::int8[], $3::int8[], $4::int8[]) AS d ORDER BY 1
         ON CONFLICT (product_id) DO UPDATE SET review_count = stats.review_count + EXCLUDED.review_count,
                rating_sum = stats.rating_sum + EXCLUDED.rating_sum, version = stats.version + EXCLUDED.version",
    )
    .bind(ids)
    .bind(counts)
    .bind(sums)
    .bind(events)
    .execute(conn)
    .await
    .map(|_| ())
}

/// The live reviews projection: a review changes its product's statistics, so after each
/// commit the reviewed products' Redis documents are written again from Postgres.
pub struct ReviewsProjection {
    services: Services,
}

impl LiveProjection for ReviewsProjection {
    type Model = Reviews;
    const NAME: &'static str = "reviews";
    const CONSUMER: &'static str = "projector-reviews";

    fn build(services: &Services) -> Self {
        Self {
            services: services.clone(),
        }
    }

    async fn after_commit(&self, batch: &[Delivered<'_, ReviewRow>]) {
        let products = batch
            .iter()
            .filter_map(|delivered| delivered.projected.row.as_ref())
            .map(|row| row.product_id);
        let documents = &self.services.documents.products.at(keyspace_of(batch));
        self.services.refresh_documents(documents, products).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::envelope;
    use serde_json::json;

    #[test]
    fn a_review_is_written_edited_and_kept_as_a_tombstone_that_counts_for_nothing() {
        let (product, author) = (Uuid::now_v7(), Uuid::now_v7());
        let written = envelope(
            1,
            "review.written",
            json!({"productId": product, "authorId": author, "rating": 4, "comment": "Good"}),
        );
        let row = evolve(None, &written).expect("created");
        assert_eq!(
            (row.rating, row.comment.as_deref(), row.counted()),
            (4, Some("Good"), (1, 4, 1))
        );
        let edited = envelope(
            2,
            "review.edited",
            json!({"productId": product, "rating": 2, "comment": null}),
        );
        let row = evolve(Some(row), &edited).expect("row");
        assert_eq!(
            (row.rating, row.comment.clone(), row.counted()),
            (2, None, (1, 2, 2))
        );
        let deleted = envelope(3, "review.deleted", json!({"productId": product}));
        let row = evolve(Some(row), &deleted).expect("tombstone");
        assert!(row.deleted);
        assert_eq!(row.counted(), (0, 0, 3));
        let edited_late = envelope(
            4,
            "review.edited",
            json!({"productId": product, "rating": 5, "comment": null}),
        );
        assert_eq!(evolve(Some(row), &edited_late).expect("row").counted(), (0, 0, 4));
        assert_eq!(evolve(None, &deleted), None, "nothing before its creation");
    }
}
