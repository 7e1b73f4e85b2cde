//! Integration tests of the workers service against real Postgres, NATS and SMTP.

mod delivery;
mod file_mailer;
mod helpers;
mod nats_outage;
mod operator_api;
mod retries;
mod shutdown;
