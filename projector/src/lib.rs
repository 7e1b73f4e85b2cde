//! The projector: builds the read models from the events on JetStream (DESIGN.md
//! guarantee 3) and can rebuild them from the event store.
//!
//! * [`Settings`]: typed settings from the environment;
//! * [`Projector`]: the HTTP endpoints and the live projections, run until cancelled;
//! * [`rebuild`]: replaces every projection with a replay of the event store (offline);
//! * [`generations`]: rebuilds without downtime, beside the live read models, swapped in;
//! * [`registry`]: the one list of projections everything else derives from;
//! * [`model`]: exactly-once, in-order projection of any one-row-per-stream read model,
//!   a batch of deliveries per transaction;
//! * [`users`], [`products`], [`orders`], [`reviews`]: the projections (fold, SQL, Redis);
//! * [`documents`]: the Redis documents (users, products, orders) of every projection;
//! * [`top`]: the best-seller sorted set in Redis.

mod app;
mod consumer;
pub mod documents;
mod error;
pub mod generations;
pub mod heal;
pub mod http;
pub mod model;
pub mod orders;
pub mod products;
pub mod progress;
mod rebuild;
pub mod registry;
mod retry;
pub mod reviews;
mod settings;
pub mod store;
#[cfg(test)]
mod test_support;
pub mod top;
pub mod users;

pub use app::Projector;
pub use consumer::{ACK_WAIT, BATCH_LINGER, Batching, Consumer, Delivered, LiveProjection, RowOf};
pub use documents::Documents;
pub use error::{ProjectionError, RebuildError};
pub use rebuild::{RebuildLimits, RebuildReport, rebuild};
pub use settings::Settings;
