//! HTTP handlers of the query API.

pub mod users;
