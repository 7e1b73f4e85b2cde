//! The Redis copy of the users read model: written after each commit, cleared and refilled
//! from Postgres by a rebuild. Every write keeps the higher version (see `UserCache`).

use super::row::{ROW_COLUMNS, UserRow};
use futures::{StreamExt, TryStreamExt};
use readmodels::users::UserCache;
use redis::aio::ConnectionLike;
use sqlx::PgPool;

/// Documents written to Redis at once while refilling.
const REFILL_CONCURRENCY: usize = 128;
/// Keys asked for per `SCAN` step.
const SCAN_COUNT: usize = 1000;

/// Writes the document of one row: the user, or a tombstone once deleted.
pub async fn write_row<C: ConnectionLike>(
    cache: &UserCache,
    conn: &mut C,
    row: &UserRow,
) -> redis::RedisResult<bool> {
    match row.view() {
        Some(view) => cache.put(conn, &view).await,
        None => cache.put_deleted(conn, row.id, row.version).await,
    }
}

/// Deletes every user document of the cache's prefix; returns how many.
pub async fn clear<C: ConnectionLike>(cache: &UserCache, conn: &mut C) -> redis::RedisResult<u64> {
    let pattern = escape_glob(&cache.pattern());
    let mut cursor: u64 = 0;
    let mut deleted = 0;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(&pattern)
            .arg("COUNT")
            .arg(SCAN_COUNT)
            .query_async(conn)
            .await?;
        if !keys.is_empty() {
            deleted += redis::cmd("DEL").arg(&keys).query_async::<u64>(conn).await?;
        }
        if next == 0 {
            return Ok(deleted);
        }
        cursor = next;
    }
}

/// Writes the document of every row of `users_view`; returns how many.
pub async fn refill<C>(pool: &PgPool, cache: &UserCache, conn: &C) -> Result<u64, crate::RebuildError>
where
    C: ConnectionLike + Clone + Send,
{
    let sql = format!("SELECT {ROW_COLUMNS} FROM users_view");
    let mut writes = sqlx::query_as::<_, UserRow>(&sql)
        .fetch(pool)
        .map_err(crate::RebuildError::from)
        .map_ok(|row| {
            let mut conn = conn.clone();
            async move {
                write_row(cache, &mut conn, &row).await?;
                Ok::<_, crate::RebuildError>(())
            }
        })
        .try_buffer_unordered(REFILL_CONCURRENCY);
    let mut written = 0;
    while writes.next().await.transpose()?.is_some() {
        written += 1;
    }
    Ok(written)
}

/// The cache's key pattern with the prefix's own glob characters escaped, so `SCAN MATCH`
/// never reaches into another prefix.
fn escape_glob(pattern: &str) -> String {
    let (prefix, star) = pattern.split_at(pattern.len().saturating_sub(1));
    let mut escaped = String::with_capacity(pattern.len() + 4);
    for c in prefix.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped.push_str(star);
    escaped
}

#[cfg(test)]
mod tests {
    use super::escape_glob;

    #[test]
    fn glob_characters_of_the_prefix_are_escaped_but_the_wildcard_is_kept() {
        assert_eq!(escape_glob("cqrs:user:*"), "cqrs:user:*");
        assert_eq!(escape_glob("a*b?:user:*"), "a\\*b\\?:user:*");
    }
}
