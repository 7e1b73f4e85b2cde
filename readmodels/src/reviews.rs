//! The reviews read model: table `reviews_view` as the projector writes it
//! ([`ReviewRow`], tombstones included) and a review as readers see it ([`ReviewView`]).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A review as stored in `reviews_view`.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ReviewRow {
    /// Review id (the stream id).
    pub id: Uuid,
    /// The product.
    pub product_id: Uuid,
    /// The author.
    pub author_id: Uuid,
    /// 1 to 5.
    pub rating: i16,
    /// Free text.
    pub comment: Option<String>,
    /// Deleted: kept so that a replayed event cannot bring it back.
    pub deleted: bool,
    /// Stream version of the last event applied: the checkpoint of this review.
    pub version: i64,
    /// When it was written.
    pub created_at: DateTime<Utc>,
    /// When the last applied event occurred.
    pub updated_at: DateTime<Utc>,
}

/// The tables a list of reviews is read from (for the query API's page cache).
pub const TABLES: &[&str] = &["reviews_view"];

/// Columns of `reviews_view` in [`ReviewRow`] order.
pub const ROW_COLUMNS: &str =
    "id, product_id, author_id, rating, comment, deleted, version, created_at, updated_at";

impl ReviewRow {
    /// What the row adds to its product's statistics: (live reviews, rating sum, events).
    pub fn counted(&self) -> (i64, i64, i64) {
        let live = i64::from(!self.deleted);
        (live, live * i64::from(self.rating), self.version)
    }
}

/// One review as readers see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReviewView {
    /// Review id.
    pub id: Uuid,
    /// The product.
    pub product_id: Uuid,
    /// The author.
    #[sqlx(rename = "author_id")]
    pub user_id: Uuid,
    /// 1 to 5.
    pub rating: i16,
    /// Free text, or `null`.
    pub comment: Option<String>,
    /// Stream version this view reflects.
    pub version: i64,
    /// When it was written.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

/// Columns of `reviews_view` in [`ReviewView`] order.
pub const REVIEW_COLUMNS: &str =
    "id, product_id, author_id, rating, comment, version, created_at, updated_at";
