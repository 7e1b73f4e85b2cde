//! Integration tests of the query API against real Postgres and Redis: one binary, one
//! fresh database and Redis prefix per test, so the tests run in parallel.
//!
//! Tests use the multi-threaded runtime: `TestDb`'s `Drop` blocks the dropping thread
//! while it closes the pool, whose connections need the test runtime's I/O driver; on a
//! current-thread runtime that wait never ends.

mod authority;
mod consistency;
mod helpers;
mod http;
mod list_validation;
mod listing;
mod no_n_plus_one;
mod orders;
mod product_list;
mod products;
mod rate_limits;
mod reviews;
mod shop;
mod shop_cache;
mod single_user;
mod tokens;
mod top_products;
mod versions;
