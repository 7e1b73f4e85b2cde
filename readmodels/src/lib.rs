//! The read models shared by their writer (projector) and their readers (query-api), one
//! module per aggregate: the table rows as the projector writes them, the shapes readers
//! get, their column lists, and their Redis documents with the version guard ([`cache`]).

pub mod cache;
pub mod orders;
pub mod products;
pub mod reviews;
pub mod top;
pub mod users;
