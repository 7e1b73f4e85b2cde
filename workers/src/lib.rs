//! The workers service: side effects of events, carried out at least once and sent
//! never twice for one event (DESIGN.md guarantee 5).
//!
//! * [`consumer`]: a durable JetStream pull consumer (`workers-welcome-email`) that
//!   replicas share as competing consumers.
//! * [`delivery`] and [`ledger`]: the side effect of each event runs under a Postgres
//!   advisory lock and is recorded in `side_effects` in the same transaction; failures
//!   are NAKed with exponential backoff and jitter ([`retry`]), and after the last attempt
//!   the message becomes a row in `dead_letters`.
//! * [`mail`] and [`welcome`]: the welcome email, over SMTP or into `.eml` files.
//! * [`api`]: the operator API (dead letters, consumer state), health and docs.
//! * [`app`]: [`Application`], built from [`Settings`], run until cancelled.

pub mod api;
pub mod app;
pub mod consumer;
pub mod dead_letters;
pub mod delivery;
pub mod effects;
pub mod ledger;
pub mod mail;
pub mod operator;
pub mod retry;
pub mod settings;
pub mod welcome;

pub use app::{Application, BuildError};
pub use retry::RetryPolicy;
pub use settings::{MailSettings, Settings};
