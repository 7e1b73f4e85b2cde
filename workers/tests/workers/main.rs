//! Integration tests of the workers service against real Postgres, NATS and SMTP.

mod bulk_retries;
mod delivery;
mod file_mailer;
mod helpers;
mod nats_outage;
mod operator_api;
mod order_confirmation;
mod order_retries;
mod registry;
mod retries;
mod shutdown;
mod webhook_deliveries;
