//! The projector: builds the read models from the events on JetStream (DESIGN.md
//! guarantee 3) and can rebuild them from the event store.
//!
//! * [`Settings`]: typed settings from the environment;
//! * [`Projector`]: the HTTP endpoints and the live users projection, run until cancelled;
//! * [`rebuild`]: replaces the users projection with a replay of the event store;
//! * [`users`]: the projection itself (fold, SQL, Redis documents).

mod app;
mod consumer;
mod error;
pub mod http;
mod rebuild;
mod settings;
pub mod users;

pub use app::Projector;
pub use consumer::{ACK_WAIT, UsersConsumer};
pub use error::{ProjectionError, RebuildError};
pub use rebuild::{RebuildLimits, RebuildReport, rebuild};
pub use settings::Settings;
