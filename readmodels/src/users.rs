//! The users read model: table `users_view` in Postgres (the durable copy) and one
//! Redis document per user (the hot copy, `<prefix>:user:<id>`, see [`crate::cache`]),
//! a tombstone once the user is deleted.

pub use crate::cache::CacheLookup;
use crate::cache::{Cached, DocumentCache, Entry, Version};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use uuid::Uuid;

/// A user as readers see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserView {
    /// User id.
    pub id: Uuid,
    /// Email address (normalised to lower case).
    pub email: String,
    /// Display name.
    pub name: String,
    /// `user` or `admin`.
    pub role: String,
    /// Stream version this view reflects (also the `ETag`).
    pub version: i64,
    /// When the user registered.
    pub created_at: DateTime<Utc>,
    /// When the user last changed.
    pub updated_at: DateTime<Utc>,
}

/// A user as stored in `users_view`, tombstones included.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct UserRow {
    /// User id (the stream id).
    pub id: Uuid,
    /// Email address; `None` once deleted.
    pub email: Option<String>,
    /// Display name; `None` once deleted.
    pub name: Option<String>,
    /// `user` or `admin`.
    pub role: String,
    /// Stream version of the last event applied: the projection's checkpoint for this user.
    pub version: i64,
    /// When the user registered.
    pub created_at: DateTime<Utc>,
    /// When the last applied event occurred.
    pub updated_at: DateTime<Utc>,
    /// When the user was deleted; a deleted row never changes its fields again.
    pub deleted_at: Option<DateTime<Utc>>,
}

/// The tables a list of users is read from (for the query API's page cache).
pub const TABLES: &[&str] = &["users_view"];

/// Columns of `users_view` in [`UserRow`] order.
pub const ROW_COLUMNS: &str = "id, email, name, role, version, created_at, updated_at, deleted_at";

impl UserRow {
    /// The document readers see, `None` for a deleted user.
    pub fn view(&self) -> Option<UserView> {
        if self.deleted_at.is_some() {
            return None;
        }
        Some(UserView {
            id: self.id,
            email: self.email.clone()?,
            name: self.name.clone()?,
            role: self.role.clone(),
            version: self.version,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }

    /// The row as its Redis document holds it: the user, or a tombstone.
    pub fn entry(&self) -> Entry<UserView> {
        match self.view() {
            Some(view) => Entry::Live(view),
            None => Entry::Deleted {
                id: self.id,
                version: self.version,
            },
        }
    }
}

/// Columns of `users_view` in [`UserView`] order.
pub const USER_COLUMNS: &str = "id, email, name, role, version, created_at, updated_at";

/// A live user from Postgres, `None` when unknown or deleted.
pub async fn find_user(pool: &PgPool, id: Uuid) -> Result<Option<UserView>, sqlx::Error> {
    let sql = format!("SELECT {USER_COLUMNS} FROM users_view WHERE id = $1 AND deleted_at IS NULL");
    sqlx::query_as::<_, UserView>(&sql)
        .bind(id)
        .fetch_optional(pool)
        .await
}

/// The Redis documents of users.
pub type UserCache = DocumentCache<UserView>;

impl Cached for UserView {
    const KIND: &'static str = "user";
    const TABLE: &'static str = "users_view";

    fn id(&self) -> Uuid {
        self.id
    }

    fn version(&self) -> Version {
        Version::of_stream(self.version)
    }

    /// Live users and tombstones of deleted ones.
    async fn load(pool: &PgPool, ids: &[Uuid]) -> Result<Vec<Entry<Self>>, sqlx::Error> {
        let sql = format!("SELECT {ROW_COLUMNS} FROM users_view WHERE id = ANY($1)");
        let rows = sqlx::query_as::<_, UserRow>(&sql)
            .bind(ids)
            .fetch_all(pool)
            .await?;
        Ok(rows.iter().map(UserRow::entry).collect())
    }
}
