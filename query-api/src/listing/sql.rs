//! The SQL behind the user list, built with `QueryBuilder`: only whitelisted column names
//! are written into the text, every value is a bind parameter.
//!
//! Cursor mode is keyset pagination on `(sort column, id)`, which the partial indexes of
//! `users_view` serve directly. A page starts strictly after the last row served, so
//! rows inserted or deleted meanwhile never make a reader see a row twice or skip one
//! that existed throughout.

use super::{ListRequest, ListScope, Position, SortField, SortKey, SortOrder, Window};
use readmodels::users::{USER_COLUMNS, UserView};
use sqlx::{PgPool, Postgres, QueryBuilder};

/// The rows of one list request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listing {
    /// Page mode: the page and the number of users across all pages.
    Page {
        /// Page number, from 1.
        page: u32,
        /// Rows per page.
        per_page: u32,
        /// Users on this page.
        users: Vec<UserView>,
        /// Users matching the filters.
        total: i64,
    },
    /// Cursor mode: the page and, when more follow, the position to continue after.
    Cursor {
        /// Users on this page.
        users: Vec<UserView>,
        /// Position of the last user served, when another page follows.
        next: Option<Position>,
    },
}

/// Runs a list request.
pub async fn list_users(pool: &PgPool, request: &ListRequest) -> Result<Listing, sqlx::Error> {
    let scope = &request.scope;
    match &request.window {
        Window::Page { page, per_page } => {
            let mut query = select(scope, None);
            let offset = i64::from(page.saturating_sub(1)) * i64::from(*per_page);
            query
                .push(" LIMIT ")
                .push_bind(i64::from(*per_page))
                .push(" OFFSET ")
                .push_bind(offset);
            let users = query.build_query_as::<UserView>().fetch_all(pool).await?;
            let total = count_users(pool, scope).await?;
            Ok(Listing::Page {
                page: *page,
                per_page: *per_page,
                users,
                total,
            })
        }
        Window::Cursor { after, limit } => {
            let mut query = select(scope, after.as_ref());
            // One row more than asked tells whether another page follows.
            query.push(" LIMIT ").push_bind(i64::from(*limit) + 1);
            let mut users = query.build_query_as::<UserView>().fetch_all(pool).await?;
            let has_more = users.len() > *limit as usize;
            users.truncate(*limit as usize);
            let next = users
                .last()
                .filter(|_| has_more)
                .map(|last| position_of(last, scope.sort));
            Ok(Listing::Cursor { users, next })
        }
    }
}

/// Users matching the scope's filters.
pub async fn count_users(pool: &PgPool, scope: &ListScope) -> Result<i64, sqlx::Error> {
    let mut query = QueryBuilder::<Postgres>::new("SELECT count(*)");
    push_filters(&mut query, scope);
    query.build_query_scalar::<i64>().fetch_one(pool).await
}

/// `SELECT ... WHERE <filters> [AND after position] ORDER BY <sort>, id`.
fn select<'a>(scope: &ListScope, after: Option<&Position>) -> QueryBuilder<'a, Postgres> {
    let mut query = QueryBuilder::<Postgres>::new(format!("SELECT {USER_COLUMNS}"));
    push_filters(&mut query, scope);
    let column = scope.sort.column();
    let (direction, beyond) = match scope.order {
        SortOrder::Asc => (" ASC", " > "),
        SortOrder::Desc => (" DESC", " < "),
    };
    if let Some(after) = after {
        query
            .push(" AND (")
            .push(column)
            .push(", id)")
            .push(beyond)
            .push("(");
        match &after.key {
            SortKey::Time(time) => query.push_bind(*time),
            SortKey::Text(text) => query.push_bind(text.clone()),
        };
        query.push(", ").push_bind(after.id).push(")");
    }
    query
        .push(" ORDER BY ")
        .push(column)
        .push(direction)
        .push(", id")
        .push(direction);
    query
}

/// `FROM users_view WHERE <live> [AND role] [AND name/email contains q]`.
fn push_filters(query: &mut QueryBuilder<'_, Postgres>, scope: &ListScope) {
    query.push(" FROM users_view WHERE deleted_at IS NULL");
    if let Some(role) = scope.role {
        query.push(" AND role = ").push_bind(role.as_str());
    }
    if let Some(q) = &scope.q {
        let pattern = contains_pattern(q);
        query
            .push(" AND (name ILIKE ")
            .push_bind(pattern.clone())
            .push(" ESCAPE '\\' OR email ILIKE ")
            .push_bind(pattern)
            .push(" ESCAPE '\\')");
    }
}

/// A LIKE pattern matching `q` literally anywhere.
fn contains_pattern(q: &str) -> String {
    let mut pattern = String::with_capacity(q.len() + 2);
    pattern.push('%');
    for c in q.chars() {
        if matches!(c, '\\' | '%' | '_') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// Where a row stands in a listing sorted by `sort`.
fn position_of(user: &UserView, sort: SortField) -> Position {
    let key = match sort {
        SortField::CreatedAt => SortKey::Time(user.created_at),
        SortField::Name => SortKey::Text(user.name.clone()),
        SortField::Email => SortKey::Text(user.email.clone()),
    };
    Position { key, id: user.id }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_wildcards_in_q_match_literally() {
        assert_eq!(contains_pattern("a_b%c\\d"), "%a\\_b\\%c\\\\d%");
        assert_eq!(contains_pattern("Ada"), "%Ada%");
    }

    #[test]
    fn the_keyset_condition_follows_the_sort_direction() {
        let after = Position {
            key: SortKey::Text("m".into()),
            id: uuid::Uuid::nil(),
        };
        let scope = ListScope {
            sort: SortField::Name,
            order: SortOrder::Desc,
            ..Default::default()
        };
        let sql = select(&scope, Some(&after)).into_sql();
        assert!(
            sql.ends_with("AND (name, id) < ($1, $2) ORDER BY name DESC, id DESC"),
            "{sql}"
        );
    }
}
