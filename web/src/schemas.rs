//! The envelopes as OpenAPI schemas, for `#[utoipa::path]` responses: `body =
//! web::Envelope<T>` for one item, `web::PagedEnvelope<T>` for a page in page mode,
//! `web::ListEnvelope<T>` for a list answering in page or cursor mode, `web::ErrorEnvelope`
//! for every error. Generic over the item, so no service writes an envelope per type. They mirror what [`crate::ApiResponse`] and [`crate::ApiError`] write, so a
//! document built from them matches the wire (the fuzz step of `./dev test` checks it).

use crate::{CursorPage, FieldError, PagePage};
use serde::Serialize;
use utoipa::ToSchema;

/// `meta` of every answer.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Meta {
    /// The request id, also in the `x-request-id` header.
    pub request_id: String,
    /// When the answer was made: RFC 3339, UTC, milliseconds.
    #[schema(format = DateTime)]
    pub timestamp: String,
}

/// A success answer carrying `data`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Envelope<T: ToSchema> {
    /// The answer.
    pub data: T,
    /// Request metadata.
    pub meta: Meta,
}

/// `meta` of a page in page mode.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PageMeta {
    /// The request id.
    pub request_id: String,
    /// When the answer was made: RFC 3339, UTC, milliseconds.
    #[schema(format = DateTime)]
    pub timestamp: String,
    /// Where this page stands.
    pub pagination: PagePage,
}

/// A page of items in page mode (`?page=&perPage=`).
#[derive(Debug, Serialize, ToSchema)]
pub struct PagedEnvelope<T: ToSchema> {
    /// The items on this page.
    pub data: Vec<T>,
    /// Request and pagination metadata.
    pub meta: PageMeta,
}

/// `meta.pagination` of a list: page mode or cursor mode, by the request's parameters.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum Pagination {
    /// `?page=&perPage=`.
    Page(PagePage),
    /// `?cursor=&limit=`.
    Cursor(CursorPage),
}

/// `meta` of a list.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ListMeta {
    /// The request id.
    pub request_id: String,
    /// When the answer was made: RFC 3339, UTC, milliseconds.
    #[schema(format = DateTime)]
    pub timestamp: String,
    /// Where this page stands.
    pub pagination: Pagination,
}

/// A list in page or cursor mode.
#[derive(Debug, Serialize, ToSchema)]
pub struct ListEnvelope<T: ToSchema> {
    /// The items of this page, in the list's order.
    pub data: Vec<T>,
    /// Request and pagination metadata.
    pub meta: ListMeta,
}

/// The error object.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// Stable machine code (`VALIDATION_ERROR`, `UNAUTHORIZED`, `FORBIDDEN`, `NOT_FOUND`, ...).
    pub code: String,
    /// Human-readable explanation, safe to show.
    pub message: String,
    /// The fields (or query or path parameters) at fault; empty when none.
    pub details: Vec<FieldError>,
}

/// Every error answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorEnvelope {
    /// What went wrong.
    pub error: ErrorBody,
    /// Request metadata.
    pub meta: Meta,
}
