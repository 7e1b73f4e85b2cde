//! SQL pieces every list uses, written with `QueryBuilder`: column names come only from
//! closed sets in the code, every value is a bind parameter.
//!
//! Cursor mode is keyset pagination on `(sort column, id)`: a page starts strictly after
//! the last row served, so rows inserted or removed meanwhile never make a reader see a
//! row twice or skip one that existed throughout.

use super::{Listing, Position, SortKey, SortOrder, Window};
use sqlx::postgres::PgRow;
use sqlx::{FromRow, PgConnection, Postgres, QueryBuilder};

/// `ORDER BY` direction and keyset comparison of a sort order.
fn direction(order: SortOrder) -> (&'static str, &'static str) {
    match order {
        SortOrder::Asc => (" ASC", " > "),
        SortOrder::Desc => (" DESC", " < "),
    }
}

/// Appends ` AND (<column>, id) > (<key>, <id>)` (`<` when descending).
pub fn push_after(
    query: &mut QueryBuilder<'_, Postgres>,
    column: &'static str,
    order: SortOrder,
    after: &Position,
) {
    let (_, beyond) = direction(order);
    query
        .push(" AND (")
        .push(column)
        .push(", id)")
        .push(beyond)
        .push("(");
    match &after.key {
        SortKey::Time(time) => query.push_bind(*time),
        SortKey::Text(text) => query.push_bind(text.clone()),
        SortKey::Int(value) => query.push_bind(*value),
    };
    query.push(", ").push_bind(after.id).push(")");
}

/// Appends ` ORDER BY <column> <dir>, id <dir>`.
pub fn push_order_by(query: &mut QueryBuilder<'_, Postgres>, column: &'static str, order: SortOrder) {
    let (direction, _) = direction(order);
    query
        .push(" ORDER BY ")
        .push(column)
        .push(direction)
        .push(", id")
        .push(direction);
}

/// A LIKE pattern (for `ESCAPE '\'`) matching `q` literally anywhere.
pub fn contains_pattern(q: &str) -> String {
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

/// Runs `select` (filtered, positioned after the cursor and ordered, but without a
/// limit) for `window`; `count` (`SELECT count(*)` with the same filters) answers the
/// total in page mode and is not run in cursor mode. One query in cursor mode, two in
/// page mode.
pub async fn fetch_window<T>(
    conn: &mut PgConnection,
    mut select: QueryBuilder<'_, Postgres>,
    mut count: QueryBuilder<'_, Postgres>,
    window: &Window,
    position_of: impl Fn(&T) -> Position,
) -> Result<Listing<T>, sqlx::Error>
where
    T: for<'r> FromRow<'r, PgRow> + Send + Unpin,
{
    match window {
        Window::Page { page, per_page } => {
            let offset = i64::from(page.saturating_sub(1)) * i64::from(*per_page);
            select
                .push(" LIMIT ")
                .push_bind(i64::from(*per_page))
                .push(" OFFSET ")
                .push_bind(offset);
            let items = select.build_query_as::<T>().fetch_all(&mut *conn).await?;
            let total = count.build_query_scalar::<i64>().fetch_one(&mut *conn).await?;
            Ok(Listing::Page {
                page: *page,
                per_page: *per_page,
                items,
                total,
            })
        }
        Window::Cursor { limit, .. } => {
            // One row more than asked tells whether another page follows.
            select.push(" LIMIT ").push_bind(i64::from(*limit) + 1);
            let mut items = select.build_query_as::<T>().fetch_all(&mut *conn).await?;
            let has_more = items.len() > *limit as usize;
            items.truncate(*limit as usize);
            let next = items.last().filter(|_| has_more).map(position_of);
            Ok(Listing::Cursor { items, next })
        }
    }
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
            key: SortKey::Int(5),
            id: uuid::Uuid::nil(),
        };
        for (order, expected) in [
            (
                SortOrder::Asc,
                "AND (price_cents, id) > ($1, $2) ORDER BY price_cents ASC, id ASC",
            ),
            (
                SortOrder::Desc,
                "AND (price_cents, id) < ($1, $2) ORDER BY price_cents DESC, id DESC",
            ),
        ] {
            let mut query = QueryBuilder::<Postgres>::new("SELECT 1 WHERE true");
            push_after(&mut query, "price_cents", order, &after);
            push_order_by(&mut query, "price_cents", order);
            let sql = query.into_sql();
            assert!(sql.ends_with(expected), "{sql}");
        }
    }
}
