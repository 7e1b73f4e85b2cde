//! The success envelope: `{"data": ..., "meta": {"requestId": ..., "timestamp": ..., ...}}`.

use crate::context::{answer_timestamp, current_request_id};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};

/// A successful answer. `data` is serialised once, when the answer is made, and written
/// into the envelope as it is (no intermediate JSON tree).
#[derive(Debug, Clone)]
pub struct ApiResponse {
    status: StatusCode,
    data: Box<RawValue>,
    meta: Map<String, Value>,
    headers: HeaderMap,
}

/// Pagination metadata in page mode.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PagePage {
    /// Page number, from 1.
    pub page: u32,
    /// Items per page.
    pub per_page: u32,
    /// Items across all pages.
    pub total: i64,
    /// Number of pages.
    pub total_pages: i64,
    /// Whether a page follows this one.
    pub has_next: bool,
    /// Whether a page precedes this one.
    pub has_prev: bool,
}

impl PagePage {
    /// Where page `page` of `per_page` items stands among `total` items.
    pub fn new(page: u32, per_page: u32, total: i64) -> Self {
        let per_page_items = i64::from(per_page.max(1));
        let total_pages = (total + per_page_items - 1) / per_page_items;
        Self {
            page,
            per_page,
            total,
            total_pages,
            has_next: i64::from(page) < total_pages,
            has_prev: page > 1,
        }
    }
}

/// The largest `perPage` of the operator lists ([`PagePage::requested`]).
pub const MAX_PER_PAGE: u32 = 100;
/// `perPage` when none is asked for.
pub const DEFAULT_PER_PAGE: u32 = 20;

impl PagePage {
    /// The page a list was asked for: `page` (from 1, default 1) and `perPage` (1 to
    /// 100, default 20), or 400 naming the one out of range.
    pub fn requested(page: Option<u32>, per_page: Option<u32>) -> Result<(u32, u32), crate::ApiError> {
        let page = page.unwrap_or(1);
        if page == 0 {
            return Err(crate::ApiError::invalid_field("page", "must be at least 1"));
        }
        let per_page = per_page.unwrap_or(DEFAULT_PER_PAGE);
        if !(1..=MAX_PER_PAGE).contains(&per_page) {
            return Err(crate::ApiError::invalid_field(
                "perPage",
                "must be between 1 and 100",
            ));
        }
        Ok((page, per_page))
    }
}

/// Pagination metadata in cursor mode.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CursorPage {
    /// Opaque cursor of the next page, `null` on the last page.
    pub next_cursor: Option<String>,
    /// Whether another page follows.
    pub has_more: bool,
}

impl ApiResponse {
    /// 200 with `data`.
    pub fn ok(data: impl Serialize) -> Self {
        Self::with_status(StatusCode::OK, data)
    }

    /// 201 with `data`.
    pub fn created(data: impl Serialize) -> Self {
        Self::with_status(StatusCode::CREATED, data)
    }

    /// Any status with `data`.
    pub fn with_status(status: StatusCode, data: impl Serialize) -> Self {
        let data = serde_json::value::to_raw_value(&data).unwrap_or_else(|_| null());
        Self {
            status,
            data,
            meta: Map::new(),
            headers: HeaderMap::new(),
        }
    }

    /// Adds `ETag: "<version>"`.
    pub fn etag(mut self, version: impl std::fmt::Display) -> Self {
        if let Ok(value) = HeaderValue::from_str(&format!("\"{version}\"")) {
            self.headers.insert(header::ETAG, value);
        }
        self
    }

    /// Adds any header.
    pub fn header(mut self, name: HeaderName, value: &str) -> Self {
        if let Ok(value) = HeaderValue::from_str(value) {
            self.headers.insert(name, value);
        }
        self
    }

    /// Adds `meta.pagination`.
    pub fn pagination(mut self, pagination: impl Serialize) -> Self {
        self.meta.insert("pagination".into(), json!(pagination));
        self
    }

    /// The status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The headers set so far.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }
}

impl IntoResponse for ApiResponse {
    fn into_response(self) -> Response {
        let mut meta = self.meta;
        meta.insert("requestId".into(), Value::String(current_request_id()));
        meta.insert("timestamp".into(), Value::String(answer_timestamp()));
        let body = Body {
            data: &self.data,
            meta: &meta,
        };
        let mut response = (self.status, axum::Json(body)).into_response();
        response.headers_mut().extend(self.headers);
        response
    }
}

/// The wire shape of a success answer.
#[derive(Serialize)]
struct Body<'a> {
    data: &'a RawValue,
    meta: &'a Map<String, Value>,
}

/// `null`, for data that cannot be serialised (a bug, not an input).
fn null() -> Box<RawValue> {
    RawValue::from_string("null".to_owned()).unwrap_or_else(|_| unreachable!("null is valid JSON"))
}
