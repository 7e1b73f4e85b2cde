//! Integration tests of the command API against real Postgres, NATS and Redis.

mod accounts;
mod authority;
mod console;
mod hardening;
mod helpers;
mod orders;
mod outbox;
mod passwords;
mod products;
mod rate_limits;
mod register;
mod reviews;
mod sessions;
mod shapes;
mod users;
mod webhooks;
