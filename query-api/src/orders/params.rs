//! The query string of `GET /api/v1/users/{id}/orders` and its validation. Every
//! refusal names the parameters at fault (400 `VALIDATION_ERROR`).

use super::{OrderListRequest, OrderScope, OrderSort};
use crate::pagination::{Paging, SortOrder};
use domain::order::OrderStatus;
use serde::Deserialize;
use uuid::Uuid;
use web::FieldError;

/// Query parameters of a user's orders. Cursor mode when `cursor` or `limit` is
/// present, page mode otherwise; the two cannot be mixed.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct ListOrdersParams {
    /// Page mode: page number, from 1 (default 1).
    #[param(minimum = 1)]
    pub page: Option<u32>,
    /// Page mode: orders per page, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub per_page: Option<u32>,
    /// Cursor mode: `nextCursor` of the previous page; omit for the first page. Only
    /// valid for the same user and with the same `status`, `sort` and `order`.
    pub cursor: Option<String>,
    /// Cursor mode: orders per page, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// Only orders with this status: `placed` or `cancelled`.
    #[param(value_type = Option<String>, pattern = "^(placed|cancelled)$")]
    pub status: Option<OrderStatus>,
    /// Sort field: only `placedAt` (the default); ties are ordered by id.
    #[param(inline)]
    pub sort: Option<OrderSort>,
    /// Sort direction (default `desc`: newest first).
    #[param(inline)]
    pub order: Option<SortOrder>,
}

impl ListOrdersParams {
    /// The request for `user_id`'s orders, checking ranges and combinations and
    /// decoding the cursor; on refusal, every parameter at fault.
    pub fn validate(self, user_id: Uuid) -> Result<OrderListRequest, Vec<FieldError>> {
        let mut errors = Vec::new();
        let scope = OrderScope {
            user_id,
            status: self.status,
            sort: self.sort.unwrap_or_default(),
            order: self.order.unwrap_or(SortOrder::Desc),
        };
        let paging = Paging {
            page: self.page,
            per_page: self.per_page,
            cursor: self.cursor.as_deref(),
            limit: self.limit,
        };
        match paging.window(&scope, &mut errors) {
            Some(window) if errors.is_empty() => Ok(OrderListRequest { scope, window }),
            _ => Err(errors),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cursor;
    use crate::pagination::{Position, SortKey, Window};
    use chrono::Utc;

    #[test]
    fn orders_are_newest_first_by_default() {
        let user = Uuid::now_v7();
        let request = ListOrdersParams::default().validate(user).expect("valid");
        assert_eq!(
            request.scope,
            OrderScope {
                user_id: user,
                status: None,
                sort: OrderSort::PlacedAt,
                order: SortOrder::Desc,
            }
        );
        assert_eq!(
            request.window,
            Window::Page {
                page: 1,
                per_page: 20
            }
        );
    }

    #[test]
    fn a_cursor_only_continues_the_same_users_orders() {
        let owner = Uuid::now_v7();
        let scope = ListOrdersParams::default().validate(owner).expect("valid").scope;
        let after = Position {
            key: SortKey::Time(Utc::now()),
            id: Uuid::now_v7(),
        };
        let params = || ListOrdersParams {
            cursor: Some(cursor::encode(&scope, &after)),
            ..Default::default()
        };
        assert!(params().validate(owner).is_ok());
        let refused = params().validate(Uuid::now_v7()).expect_err("refused");
        assert_eq!(refused[0].field, "cursor");
    }
}
