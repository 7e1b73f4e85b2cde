//! What every list of the API shares: the two pagination modes and their validation,
//! keyset positions, the answer's `meta.pagination`, and the SQL pieces ([`sql`]).
//!
//! Mode rule: a request is in cursor mode when it carries `cursor` or `limit`, else in
//! page mode (`page`, `perPage`, both optional). Mixing the two is refused.

pub mod sql;

use crate::cursor::{self, CursorScope};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use web::{ApiResponse, CursorPage, FieldError, PagePage};

/// `perPage` / `limit` when not given.
pub const DEFAULT_PAGE_SIZE: u32 = 20;
/// The largest `perPage` / `limit`.
pub const MAX_PAGE_SIZE: u32 = 100;
/// The longest accepted `q`, in characters.
pub const MAX_QUERY_CHARS: usize = 100;

/// How the two pagination modes are asked for.
const MODES: &str = "use either page mode (page, perPage) or cursor mode (cursor, limit)";

/// Sort direction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SortOrder {
    /// Ascending.
    #[default]
    Asc,
    /// Descending.
    Desc,
}

/// The sort value of one row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SortKey {
    /// A timestamp column.
    #[serde(rename = "t")]
    Time(DateTime<Utc>),
    /// A text column.
    #[serde(rename = "s")]
    Text(String),
    /// An integer column.
    #[serde(rename = "i")]
    Int(i64),
}

/// A keyset position: the sort value and id of the last row seen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    /// Sort value.
    pub key: SortKey,
    /// Row id (the tie-breaker).
    pub id: Uuid,
}

/// Which slice of a list.
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

impl Window {
    /// The position a cursor page starts after.
    pub fn after(&self) -> Option<&Position> {
        match self {
            Window::Cursor { after, .. } => after.as_ref(),
            Window::Page { .. } => None,
        }
    }
}

/// The pagination parameters of a list request, as received.
#[derive(Debug, Clone, Copy, Default)]
pub struct Paging<'a> {
    /// `page`.
    pub page: Option<u32>,
    /// `perPage`.
    pub per_page: Option<u32>,
    /// `cursor`.
    pub cursor: Option<&'a str>,
    /// `limit`.
    pub limit: Option<u32>,
}

impl Paging<'_> {
    /// The window asked for, with a cursor only accepted when made for `scope`; refusals
    /// are pushed to `errors` (and `None` returned when the mode itself is unclear).
    pub fn window<S: CursorScope>(&self, scope: &S, errors: &mut Vec<FieldError>) -> Option<Window> {
        let page_param = self.page.map(|_| "page").or(self.per_page.map(|_| "perPage"));
        let cursor_param = self.cursor.map(|_| "cursor").or(self.limit.map(|_| "limit"));
        match (page_param, cursor_param) {
            (Some(page_param), Some(cursor_param)) => {
                errors.push(FieldError::new(
                    cursor_param,
                    format!("cannot be combined with `{page_param}`: {MODES}"),
                ));
                None
            }
            (_, None) => {
                let page = self.page.unwrap_or(1);
                if page == 0 {
                    errors.push(FieldError::new("page", "must be at least 1"));
                }
                let per_page = page_size("perPage", self.per_page, errors);
                Some(Window::Page { page, per_page })
            }
            (None, Some(_)) => {
                let limit = page_size("limit", self.limit, errors);
                let after = match self.cursor.map(|raw| cursor::decode(raw, scope)) {
                    None => None,
                    Some(Ok(after)) => Some(after),
                    Some(Err(error)) => {
                        errors.push(FieldError::new("cursor", error.to_string()));
                        None
                    }
                };
                Some(Window::Cursor { after, limit })
            }
        }
    }
}

/// A page size within 1..=100, default 20.
pub fn page_size(field: &str, value: Option<u32>, errors: &mut Vec<FieldError>) -> u32 {
    let value = value.unwrap_or(DEFAULT_PAGE_SIZE);
    if !(1..=MAX_PAGE_SIZE).contains(&value) {
        errors.push(FieldError::new(
            field,
            format!("must be between 1 and {MAX_PAGE_SIZE}"),
        ));
    }
    value
}

/// `q` as a filter: `None` when absent or empty, refused when over 100 characters.
pub fn search_text(q: Option<String>, errors: &mut Vec<FieldError>) -> Option<String> {
    let q = q.filter(|q| !q.is_empty());
    if q.as_ref().is_some_and(|q| q.chars().count() > MAX_QUERY_CHARS) {
        errors.push(FieldError::new(
            "q",
            format!("must be at most {MAX_QUERY_CHARS} characters"),
        ));
    }
    q
}

/// The rows of one list request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listing<T> {
    /// Page mode: the page and the number of rows across all pages.
    Page {
        /// Page number, from 1.
        page: u32,
        /// Rows per page.
        per_page: u32,
        /// Rows on this page.
        items: Vec<T>,
        /// Rows matching the filters.
        total: i64,
    },
    /// Cursor mode: the page and, when more follow, the position to continue after.
    Cursor {
        /// Rows on this page.
        items: Vec<T>,
        /// Position of the last row served, when another page follows.
        next: Option<Position>,
    },
}

impl<T> Listing<T> {
    /// The rows on this page.
    pub fn items(&self) -> &[T] {
        match self {
            Listing::Page { items, .. } | Listing::Cursor { items, .. } => items,
        }
    }

    /// The same page with every row transformed.
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Listing<U> {
        match self {
            Listing::Page {
                page,
                per_page,
                items,
                total,
            } => Listing::Page {
                page,
                per_page,
                items: items.into_iter().map(f).collect(),
                total,
            },
            Listing::Cursor { items, next } => Listing::Cursor {
                items: items.into_iter().map(f).collect(),
                next,
            },
        }
    }
}

impl<T: Serialize> Listing<T> {
    /// The success envelope: the rows as `data`, and `meta.pagination` for the mode, with
    /// the next cursor bound to `scope`.
    pub fn into_response<S: CursorScope>(self, scope: &S) -> ApiResponse {
        match self {
            Listing::Page {
                page,
                per_page,
                items,
                total,
            } => ApiResponse::ok(items).pagination(PagePage::new(page, per_page, total)),
            Listing::Cursor { items, next } => ApiResponse::ok(items).pagination(CursorPage {
                has_more: next.is_some(),
                next_cursor: next.map(|after| cursor::encode(scope, &after)),
            }),
        }
    }
}
