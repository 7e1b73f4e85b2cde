//! The users projection: `users_view` in Postgres and one Redis document per user, built
//! from the `user` stream.

pub mod cache;
mod project;
mod row;
pub mod sql;

pub use project::{Outcome, Projected, project_event};
pub use row::{ROW_COLUMNS, STREAM_TYPE, UserRow, evolve};

/// Durable JetStream consumer of the users projection, shared by every replica.
pub const CONSUMER: &str = "projector-users";

/// Name of the projection in `GET /api/v1/projections`.
pub const NAME: &str = "users";
