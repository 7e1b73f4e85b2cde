//! Listing users: what a list request asks for (validated from the query string in
//! [`params`]) and the keyset/offset queries that answer it (in [`sql`]). Pagination
//! itself is shared with the other lists ([`crate::pagination`]).

pub mod params;
pub mod sql;

use crate::cursor::CursorScope;
use domain::user::Role;
use serde::{Deserialize, Serialize};

pub use crate::pagination::{Position, SortKey, SortOrder, Window};
pub use params::ListUsersParams;
pub use sql::{count_users, list_users};

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

impl CursorScope for ListScope {
    const LIST: &'static str = "users";

    fn fits(&self, key: &SortKey) -> bool {
        matches!(
            (key, self.sort),
            (SortKey::Time(_), SortField::CreatedAt) | (SortKey::Text(_), SortField::Name | SortField::Email)
        )
    }
}

/// A validated list request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListRequest {
    /// Filters and order.
    pub scope: ListScope,
    /// Which slice.
    pub window: Window,
}
