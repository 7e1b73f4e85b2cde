//! The workers service: side effects of events, carried out at least once and sent
//! never twice for one event (DESIGN.md guarantee 5).
//!
//! * [`effects`] and [`registry`]: a side effect is a [`effects::SideEffect`] (its name,
//!   the event types it reacts to, `perform`), registered with one line in
//!   [`registry::EFFECTS`]; everything below is derived from that list.
//! * [`consumer`]: one durable JetStream pull consumer per side effect and event type
//!   (`workers-welcome-email`, `workers-order-confirmation`, `workers-password-reset-email`, `workers-email-change-notice`), each shared by the replicas
//!   as competing consumers.
//! * [`delivery`] and [`ledger`]: the side effect of each event runs under a Postgres
//!   advisory lock and is recorded in `side_effects` in the same transaction; failures
//!   are NAKed with the workspace's backoff ([`retry`]), and after the last attempt
//!   the message becomes a row in `dead_letters`.
//! * [`mail`], [`welcome`] and [`order_confirmation`]: the welcome email on
//!   `user.registered` and the order confirmation on `order.placed` (amounts formatted by
//!   [`amounts`]), over SMTP or into `.eml` files.
//! * [`webhook`]: webhook deliveries: every event fanned out to the endpoints that take
//!   it, sent signed, retried, dead after the last attempt; [`egress`]: the client they
//!   leave by, which connects to public addresses only.
//! * [`api`]: the operator API (dead letters, consumer state), health and docs.
//! * [`app`]: [`Application`], built from [`Settings`], run until cancelled.

pub mod amounts;
pub mod api;
pub mod app;
pub mod bulk_retry;
pub mod consumer;
pub mod dead_letters;
pub mod delivery;
pub mod effects;
pub mod egress;
pub mod email_change;
pub mod ledger;
pub mod mail;
pub mod operator;
pub mod order_confirmation;
pub mod password_reset;
pub mod registry;
pub mod retry;
pub mod settings;
pub mod webhook;
pub mod welcome;

pub use app::{Application, BuildError};
pub use retry::RetryPolicy;
pub use settings::{MailSettings, Settings, WebhookSettings};
