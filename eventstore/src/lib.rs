//! The Postgres event store and its bridge to NATS JetStream.
//!
//! * [`EventStore`] loads streams and opens a [`UnitOfWork`]: one transaction that
//!   appends events with an expected version, writes their outbox rows, claims unique
//!   values and stores idempotent answers, all or nothing.
//! * [`OutboxRelay`] publishes committed events to JetStream with `Nats-Msg-Id` = event
//!   id and deletes their outbox rows once acknowledged.
//! * [`EventEnvelope`] is the one wire and storage shape of an event.

pub mod consistency;
mod engine;
mod envelope;
mod error;
mod idempotency;
mod relay;
mod store;
mod stream;
mod writer;

pub use consistency::ConsistencyToken;
pub use engine::{Attempts, CommandFailure, Engine, Expect, Loaded, change, version_after};
pub use envelope::{EventEnvelope, EventMetadata, lag_ms};
pub use error::StoreError;
pub use idempotency::{IdempotencyRecord, find_idempotent};
pub use relay::{OutboxRelay, RelayError};
pub use store::{EventStore, UnitOfWork, read_events_after};
pub use stream::{StreamSettings, ensure_stream};
pub use writer::{Claim, Commit, Hook, NewEvent, StreamChange};
