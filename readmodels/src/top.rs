//! The best-seller ranking's Redis keys, shared by its writer (projector) and its readers
//! (query-api): the sorted set `<prefix>:products:top` (member = product id, score = units
//! sold) and the marker `<prefix>:products:top:seeded`, present only while the set is
//! complete. Readers trust the set only while the marker exists, so both sides must name
//! the same keys.

/// The sorted set of best sellers under `prefix`.
pub fn top_key(prefix: &str) -> String {
    format!("{prefix}:products:top")
}

/// The marker that says the set under `prefix` is complete.
pub fn seeded_key(prefix: &str) -> String {
    format!("{}:seeded", top_key(prefix))
}
