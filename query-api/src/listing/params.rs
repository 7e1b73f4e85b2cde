//! The query string of `GET /api/v1/users` and its validation into a [`ListRequest`].
//! Every refusal names the parameters at fault (answered 400 `VALIDATION_ERROR`).

use super::{ListRequest, ListScope, SortField, SortOrder};
use crate::pagination::{Paging, search_text};
use domain::user::Role;
use serde::Deserialize;
use web::FieldError;

/// Query parameters of the user list. Cursor mode when `cursor` or `limit` is present,
/// page mode otherwise; the two cannot be mixed.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct ListUsersParams {
    /// Page mode: page number, from 1 (default 1).
    #[param(minimum = 1)]
    pub page: Option<u32>,
    /// Page mode: users per page, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub per_page: Option<u32>,
    /// Cursor mode: `nextCursor` of the previous page; omit for the first page. Only
    /// valid with the same `sort`, `order`, `role` and `q` as the page it came from.
    pub cursor: Option<String>,
    /// Cursor mode: users per page, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// Only users with this role: `user` or `admin`.
    #[param(value_type = Option<String>, pattern = "^(user|admin)$")]
    pub role: Option<Role>,
    /// Case-insensitive substring of the name or email (at most 100 characters; `%` and
    /// `_` match themselves).
    #[param(max_length = 100)]
    pub q: Option<String>,
    /// Sort field (default `createdAt`); ties are ordered by id.
    #[param(inline)]
    pub sort: Option<SortField>,
    /// Sort direction (default `asc`).
    #[param(inline)]
    pub order: Option<SortOrder>,
}

impl ListUsersParams {
    /// Checks ranges and combinations and decodes the cursor; on refusal, every
    /// parameter at fault.
    pub fn validate(self) -> Result<ListRequest, Vec<FieldError>> {
        let mut errors = Vec::new();
        let scope = ListScope {
            sort: self.sort.unwrap_or_default(),
            order: self.order.unwrap_or_default(),
            role: self.role,
            q: search_text(self.q, &mut errors),
        };
        let paging = Paging {
            page: self.page,
            per_page: self.per_page,
            cursor: self.cursor.as_deref(),
            limit: self.limit,
        };
        match paging.window(&scope, &mut errors) {
            Some(window) if errors.is_empty() => Ok(ListRequest { scope, window }),
            _ => Err(errors),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cursor;
    use crate::listing::{Position, SortKey, Window};
    use uuid::Uuid;

    /// The fields the parameters are refused for.
    fn refused_fields(params: ListUsersParams) -> Vec<String> {
        let errors = params.validate().expect_err("should be refused");
        errors.into_iter().map(|error| error.field).collect()
    }

    #[test]
    fn no_parameters_mean_the_first_page_of_twenty_by_creation_time() {
        let request = ListUsersParams::default().validate().expect("valid");
        assert_eq!(request.scope, ListScope::default());
        assert_eq!(
            request.window,
            Window::Page {
                page: 1,
                per_page: 20
            }
        );
    }

    #[test]
    fn limit_alone_starts_cursor_mode() {
        let params = ListUsersParams {
            limit: Some(5),
            ..Default::default()
        };
        assert_eq!(
            params.validate().expect("valid").window,
            Window::Cursor {
                after: None,
                limit: 5
            }
        );
    }

    #[test]
    fn a_cursor_continues_its_scope() {
        let scope = ListScope {
            sort: SortField::Email,
            ..Default::default()
        };
        let after = Position {
            key: SortKey::Text("a@example.com".into()),
            id: Uuid::now_v7(),
        };
        let params = ListUsersParams {
            cursor: Some(cursor::encode(&scope, &after)),
            sort: Some(SortField::Email),
            ..Default::default()
        };
        let request = params.validate().expect("valid");
        assert_eq!(
            request.window,
            Window::Cursor {
                after: Some(after),
                limit: 20
            }
        );
    }

    #[test]
    fn an_empty_q_is_no_filter() {
        let params = ListUsersParams {
            q: Some(String::new()),
            ..Default::default()
        };
        assert_eq!(params.validate().expect("valid").scope.q, None);
    }

    #[test]
    fn out_of_range_and_mixed_parameters_name_the_field() {
        let cases = [
            (
                ListUsersParams {
                    page: Some(0),
                    ..Default::default()
                },
                "page",
            ),
            (
                ListUsersParams {
                    per_page: Some(101),
                    ..Default::default()
                },
                "perPage",
            ),
            (
                ListUsersParams {
                    per_page: Some(0),
                    ..Default::default()
                },
                "perPage",
            ),
            (
                ListUsersParams {
                    limit: Some(0),
                    ..Default::default()
                },
                "limit",
            ),
            (
                ListUsersParams {
                    limit: Some(101),
                    ..Default::default()
                },
                "limit",
            ),
            (
                ListUsersParams {
                    cursor: Some("nope".into()),
                    ..Default::default()
                },
                "cursor",
            ),
            (
                ListUsersParams {
                    page: Some(1),
                    cursor: Some("x".into()),
                    ..Default::default()
                },
                "cursor",
            ),
            (
                ListUsersParams {
                    per_page: Some(5),
                    limit: Some(5),
                    ..Default::default()
                },
                "limit",
            ),
            (
                ListUsersParams {
                    q: Some("x".repeat(101)),
                    ..Default::default()
                },
                "q",
            ),
        ];
        for (params, field) in cases {
            assert_eq!(refused_fields(params), vec![field.to_owned()]);
        }
    }

    #[test]
    fn a_hundred_characters_of_q_are_accepted() {
        let params = ListUsersParams {
            q: Some("é".repeat(100)),
            ..Default::default()
        };
        assert!(params.validate().is_ok());
    }
}
