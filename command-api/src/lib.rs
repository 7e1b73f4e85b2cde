//! The command API: validates requests and turns them into events appended to the
//! Postgres event store (and, through the outbox relay, to NATS JetStream).

mod account_limit;
pub mod accounts;
mod app;
pub mod asyncapi;
mod bootstrap;
pub mod commands;
pub mod console;
mod idempotency;
mod routes;
pub mod sessions;
pub mod settings;
pub mod shop;
mod state;

pub use app::Application;
pub use routes::{ApiDoc, TokenResponse, UserResponse};
pub use settings::{AdminAccount, ConsoleSettings, Settings};
