//! The read models shared by their writer (projector) and their readers (query-api):
//! row and document shapes, and the Redis encoding with its version guard.

pub mod top;
pub mod users;
