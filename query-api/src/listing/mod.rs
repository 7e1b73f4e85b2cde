//! Listing users: what a list request asks for (validated from the query string in
//! [`params`]) and the keyset/offset queries that answer it (in [`sql`]).
//!
//! Mode rule: a request is in cursor mode when it carries `cursor` or `limit`, else in
//! page mode (`page`, `perPage`, both optional). Mixing the two is refused.

pub mod params;
pub mod sql;

use chrono::{DateTime, Utc};
use domain::user::Role;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use params::ListUsersParams;
pub use sql::{Listing, count_users, list_users};

/// `perPage` / `limit` when not given.
pub const DEFAULT_PAGE_SIZE: u32 = 20;
/// The largest `perPage` / `limit`.
pub const MAX_PAGE_SIZE: u32 = 100;
/// The longest accepted `q`, in characters.
pub const MAX_QUERY_CHARS: usize = 100;

/// Whitelisted sort fields.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum SortField {
    /// Registration time (default).
    #[default]
    CreatedAt,
    /// Display name.
    Name,
    /// Email address.
    Email,
}

impl SortField {
    /// The `users_view` column (a closed set, safe to write into SQL).
    pub fn column(self) -> &'static str {
        match self {
            SortField::CreatedAt => "created_at",
            SortField::Name => "name",
            SortField::Email => "email",
        }
    }
}

/// Sort direction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SortOrder {
    /// Ascending (default).
    #[default]
    Asc,
    /// Descending.
    Desc,
}

/// What is listed and in which order: everything a cursor is bound to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListScope {
    /// Sort field; ties are broken by id in the same direction.
    pub sort: SortField,
    /// Sort direction.
    pub order: SortOrder,
    /// Only users with this role.
    pub role: Option<Role>,
    /// Case-insensitive substring of name or email (taken literally).
    pub q: Option<String>,
}

/// The sort value of one row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SortKey {
    /// A `created_at` value.
    #[serde(rename = "t")]
    Time(DateTime<Utc>),
    /// A `name` or `email` value.
    #[serde(rename = "s")]
    Text(String),
}

/// A keyset position: the sort value and id of the last row seen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    /// Sort value.
    pub key: SortKey,
    /// Row id (the tie-breaker).
    pub id: Uuid,
}

impl Position {
    /// Whether the key has the type of the scope's sort column.
    pub fn fits(&self, sort: SortField) -> bool {
        matches!(
            (&self.key, sort),
            (SortKey::Time(_), SortField::CreatedAt) | (SortKey::Text(_), SortField::Name | SortField::Email)
        )
    }
}

/// Which slice of the list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Window {
    /// Offset pagination.
    Page {
        /// Page number, from 1.
        page: u32,
        /// Rows per page.
        per_page: u32,
    },
    /// Keyset pagination.
    Cursor {
        /// Rows strictly after this position; `None` for the first page.
        after: Option<Position>,
        /// Rows per page.
        limit: u32,
    },
}

/// A validated list request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListRequest {
    /// Filters and order.
    pub scope: ListScope,
    /// Which slice.
    pub window: Window,
}
