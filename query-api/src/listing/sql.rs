//! The SQL behind the user list, built with `QueryBuilder`: only whitelisted column names
//! are written into the text, every value is a bind parameter. Cursor mode is keyset
//! pagination on `(sort column, id)`, which the partial indexes of `users_view` serve.

use super::{ListRequest, ListScope, Position, SortField, SortKey};
use crate::pagination::Listing;
use crate::pagination::sql::{contains_pattern, fetch_window, push_after, push_order_by};
use readmodels::users::{USER_COLUMNS, UserView};
use sqlx::{PgPool, Postgres, QueryBuilder};

/// Runs a list request: one query in cursor mode, two (page and count) in page mode.
pub async fn list_users(pool: &PgPool, request: &ListRequest) -> Result<Listing<UserView>, sqlx::Error> {
    let scope = &request.scope;
    let mut conn = pool.acquire().await?;
    fetch_window(
        &mut conn,
        select(scope, request.window.after()),
        count_query(scope),
        &request.window,
        |user| position_of(user, scope.sort),
    )
    .await
}

/// Users matching the scope's filters.
pub async fn count_users(pool: &PgPool, scope: &ListScope) -> Result<i64, sqlx::Error> {
    count_query(scope)
        .build_query_scalar::<i64>()
        .fetch_one(pool)
        .await
}

fn count_query<'a>(scope: &ListScope) -> QueryBuilder<'a, Postgres> {
    let mut query = QueryBuilder::<Postgres>::new("SELECT count(*)");
    push_filters(&mut query, scope);
    query
}

/// `SELECT ... WHERE <filters> [AND after position] ORDER BY <sort>, id`.
fn select<'a>(scope: &ListScope, after: Option<&Position>) -> QueryBuilder<'a, Postgres> {
    let mut query = QueryBuilder::<Postgres>::new(format!("SELECT {USER_COLUMNS}"));
    push_filters(&mut query, scope);
    let column = scope.sort.column();
    if let Some(after) = after {
        push_after(&mut query, column, scope.order, after);
    }
    push_order_by(&mut query, column, scope.order);
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
    use crate::pagination::SortOrder;

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
