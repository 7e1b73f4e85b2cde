//! Read-your-writes: a read that carries a write's `X-Consistency-Token` (see
//! `eventstore::consistency`) is answered once every stream the token names has its
//! read-model row at that version or later, waiting at most `CONSISTENCY_WAIT_MS`; past
//! that it is 503 with `Retry-After`, and nothing is read.
//!
//! Once caught up, the request reads Postgres only ([`fresh`]): the Redis documents and the
//! remembered pages are written just after the rows and could still be a moment behind.
//! The wait polls, with growing pauses ([`FIRST_POLL`] to [`LAST_POLL`]), because one
//! look-up per table is cheaper than a listener per request and a write's rows usually
//! land within a few milliseconds; each look-up is bounded by the same deadline.

use crate::state::AppState;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use eventstore::ConsistencyToken;
use eventstore::consistency::HEADER;
use sqlx::PgPool;
use std::collections::BTreeMap;
use std::time::Duration;
use uuid::Uuid;
use web::{ApiError, FieldError};

/// The first pause of a waiting read before it looks again; each pause doubles up to
/// [`LAST_POLL`], so a read that waits the whole 2 s looks about 25 times, not 200.
pub const FIRST_POLL: Duration = Duration::from_millis(5);
/// The longest pause between two looks.
pub const LAST_POLL: Duration = Duration::from_millis(100);

tokio::task_local! {
    static FRESH: ();
}

/// Whether the request being handled must read Postgres rather than a cache.
pub fn fresh() -> bool {
    FRESH.try_with(|()| ()).is_ok()
}

/// The read-model table of each stream type: one row per stream, with its version.
fn table_of(stream_type: &str) -> Option<&'static str> {
    match stream_type {
        "user" => Some("users_view"),
        "product" => Some("products_view"),
        "order" => Some("orders_view"),
        "review" => Some("reviews_view"),
        _ => None,
    }
}

/// Waits for the request's token, if any, then handles the request.
pub async fn wait(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let Some(raw) = request.headers().get(HEADER) else {
        return next.run(request).await;
    };
    let token = match raw
        .to_str()
        .map_err(|_| "not ASCII".to_owned())
        .and_then(|raw| ConsistencyToken::parse(raw).map_err(|e| e.to_string()))
        .and_then(by_table)
    {
        Ok(token) => token,
        Err(reason) => {
            return ApiError::validation(vec![FieldError::new("X-Consistency-Token", reason)])
                .into_response();
        }
    };
    let deadline = tokio::time::Instant::now() + state.consistency_wait;
    let not_yet = || {
        ApiError::unavailable(
            "the read models have not caught up with X-Consistency-Token yet; retry shortly",
        )
        .into_response()
    };
    let mut pause = FIRST_POLL;
    loop {
        // The look-up itself is bounded too: a slow pool must not stretch the wait.
        match tokio::time::timeout_at(deadline, caught_up(&state.pool, &token)).await {
            Ok(Ok(true)) => break,
            Ok(Ok(false)) => {}
            Ok(Err(error)) => return ApiError::internal(error).into_response(),
            Err(_) => return not_yet(),
        }
        if tokio::time::Instant::now() + pause > deadline {
            return not_yet();
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(LAST_POLL);
    }
    FRESH.scope((), next.run(request)).await
}

/// The token's streams by read-model table: ids and versions.
type ByTable = BTreeMap<&'static str, (Vec<Uuid>, Vec<i64>)>;

fn by_table(token: ConsistencyToken) -> Result<ByTable, String> {
    let mut tables = ByTable::new();
    for (stream_type, id, version) in token.entries() {
        let table = table_of(stream_type).ok_or_else(|| format!("unknown stream type `{stream_type}`"))?;
        let (ids, versions) = tables.entry(table).or_default();
        ids.push(id);
        versions.push(version);
    }
    Ok(tables)
}

/// Whether every stream's row is at its token version or later.
async fn caught_up(pool: &PgPool, token: &ByTable) -> Result<bool, sqlx::Error> {
    for (table, (ids, versions)) in token {
        let sql = format!(
            "SELECT count(*) FROM unnest($1::uuid[], $2::int8[]) AS t(id, version) \
             JOIN {table} row ON row.id = t.id AND row.version >= t.version"
        );
        let current: i64 = sqlx::query_scalar(&sql)
            .bind(ids)
            .bind(versions)
            .fetch_one(pool)
            .await?;
        if usize::try_from(current).ok() != Some(ids.len()) {
            return Ok(false);
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_stream_type_of_the_domain_has_its_read_model_table() {
        use domain::DomainEvent;
        for stream_type in [
            domain::user::UserEvent::STREAM_TYPE,
            domain::product::ProductEvent::STREAM_TYPE,
            domain::order::OrderEvent::STREAM_TYPE,
            domain::review::ReviewEvent::STREAM_TYPE,
        ] {
            let table = table_of(stream_type).unwrap_or_else(|| panic!("{stream_type} has no table"));
            assert!(runtime::changes::TABLES.contains(&table), "{table}");
        }
        assert_eq!(table_of("invoice"), None);
    }
}
