//! Opaque cursors for keyset pagination: base64url (no padding) of a small JSON document
//! holding the position of the last row served and the scope (sort, order, filters) it
//! was made for. A cursor only continues the listing it came from.
//!
//! Cursors are not signed: editing one can only move the reader's own position in a
//! list they are allowed to read anyway.

use crate::listing::{ListScope, Position};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

/// Longest accepted cursor; real ones are far shorter.
const MAX_CURSOR_LEN: usize = 1024;
/// Format version written into every cursor.
const FORMAT: u8 = 1;

/// Why a cursor was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CursorError {
    /// Not a cursor this API made.
    #[error("is not a valid cursor")]
    Malformed,
    /// Made for another sort, order or filter.
    #[error("was made for a different sort, order or filter; repeat the original query parameters")]
    OtherScope,
}

#[derive(Serialize, Deserialize)]
struct Document {
    v: u8,
    scope: ListScope,
    after: Position,
}

/// The cursor continuing `scope` after `after`.
pub fn encode(scope: &ListScope, after: &Position) -> String {
    let document = Document {
        v: FORMAT,
        scope: scope.clone(),
        after: after.clone(),
    };
    let json = serde_json::to_vec(&document).expect("a cursor document always serialises");
    URL_SAFE_NO_PAD.encode(json)
}

/// The position in `raw`, provided it was made for `scope`.
pub fn decode(raw: &str, scope: &ListScope) -> Result<Position, CursorError> {
    if raw.len() > MAX_CURSOR_LEN {
        return Err(CursorError::Malformed);
    }
    let bytes = URL_SAFE_NO_PAD.decode(raw).map_err(|_| CursorError::Malformed)?;
    let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(|_| CursorError::Malformed)?;
    if contains_nul(&value) {
        return Err(CursorError::Malformed);
    }
    let document: Document = serde_json::from_value(value).map_err(|_| CursorError::Malformed)?;
    if document.v != FORMAT || !document.after.fits(document.scope.sort) {
        return Err(CursorError::Malformed);
    }
    if &document.scope != scope {
        return Err(CursorError::OtherScope);
    }
    Ok(document.after)
}

/// Whether any string in a decoded cursor holds U+0000, which Postgres text refuses.
fn contains_nul(value: &serde_json::Value) -> bool {
    match value {
        serde_json::Value::String(s) => s.contains('\0'),
        serde_json::Value::Array(items) => items.iter().any(contains_nul),
        serde_json::Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || contains_nul(v)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::listing::{SortField, SortKey, SortOrder};
    use chrono::{TimeZone, Utc};
    use domain::user::Role;
    use uuid::Uuid;

    fn scope() -> ListScope {
        ListScope {
            sort: SortField::Name,
            order: SortOrder::Desc,
            role: Some(Role::User),
            q: Some("a%b".into()),
        }
    }

    fn position() -> Position {
        Position {
            key: SortKey::Text("Ada".into()),
            id: Uuid::now_v7(),
        }
    }

    #[test]
    fn a_cursor_round_trips_for_its_own_scope() {
        let cursor = encode(&scope(), &position());
        assert!(
            cursor
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        let after = position();
        assert_eq!(decode(&encode(&scope(), &after), &scope()), Ok(after));
    }

    #[test]
    fn timestamps_keep_their_microseconds() {
        let time = Utc
            .timestamp_opt(1_800_000_000, 123_456_000)
            .single()
            .expect("valid time");
        let scope = ListScope::default();
        let after = Position {
            key: SortKey::Time(time),
            id: Uuid::now_v7(),
        };
        assert_eq!(decode(&encode(&scope, &after), &scope), Ok(after));
    }

    #[test]
    fn a_cursor_for_another_scope_is_refused() {
        let cursor = encode(&scope(), &position());
        for other in [
            ListScope { q: None, ..scope() },
            ListScope {
                role: Some(Role::Admin),
                ..scope()
            },
            ListScope {
                order: SortOrder::Asc,
                ..scope()
            },
            ListScope {
                sort: SortField::Email,
                ..scope()
            },
        ] {
            assert_eq!(decode(&cursor, &other), Err(CursorError::OtherScope));
        }
    }

    #[test]
    fn garbage_and_mismatched_keys_are_malformed() {
        let text_key_for_time_sort = encode(&ListScope::default(), &position());
        for raw in ["", "abc", "!!!", "e30", text_key_for_time_sort.as_str()] {
            assert_eq!(
                decode(raw, &ListScope::default()),
                Err(CursorError::Malformed),
                "{raw}"
            );
        }
        assert_eq!(decode(&"A".repeat(2000), &scope()), Err(CursorError::Malformed));
    }
}
