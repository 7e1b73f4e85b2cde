//! Opaque cursors for keyset pagination: base64url (no padding) of a small JSON document
//! holding the list it belongs to, the position of the last row served and the scope
//! (sort, order, filters) it was made for. A cursor only continues the listing it came
//! from.
//!
//! Cursors are not signed: editing one can only move the reader's own position in a
//! list they are allowed to read anyway (the scope of a per-user list names the user).

use crate::pagination::{Position, SortKey};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Longest accepted cursor: room for a 100-character `q` and a 200-character product
/// name as sort key, in any script; real ones are mostly far shorter.
const MAX_CURSOR_LEN: usize = 4096;
/// Format version written into every cursor.
const FORMAT: u8 = 1;

/// What a list binds its cursors to: its sort, order and filters.
pub trait CursorScope: Serialize + DeserializeOwned + PartialEq {
    /// Names the list, so a cursor of one list is refused by another.
    const LIST: &'static str;

    /// Whether `key` has the type of this scope's sort column.
    fn fits(&self, key: &SortKey) -> bool;
}

/// Why a cursor was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CursorError {
    /// Not a cursor this API made for this list.
    #[error("is not a valid cursor")]
    Malformed,
    /// Made for another sort, order or filter.
    #[error("was made for a different sort, order or filter; repeat the original query parameters")]
    OtherScope,
}

#[derive(Serialize)]
struct DocumentRef<'a, S> {
    v: u8,
    list: &'a str,
    scope: &'a S,
    after: &'a Position,
}

#[derive(Deserialize)]
struct Document<S> {
    v: u8,
    list: String,
    scope: S,
    after: Position,
}

/// The cursor continuing `scope` after `after`.
pub fn encode<S: CursorScope>(scope: &S, after: &Position) -> String {
    let document = DocumentRef {
        v: FORMAT,
        list: S::LIST,
        scope,
        after,
    };
    let json = serde_json::to_vec(&document).expect("a cursor document always serialises");
    URL_SAFE_NO_PAD.encode(json)
}

/// The position in `raw`, provided it was made for `scope`.
pub fn decode<S: CursorScope>(raw: &str, scope: &S) -> Result<Position, CursorError> {
    if raw.len() > MAX_CURSOR_LEN {
        return Err(CursorError::Malformed);
    }
    let bytes = URL_SAFE_NO_PAD.decode(raw).map_err(|_| CursorError::Malformed)?;
    let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(|_| CursorError::Malformed)?;
    if contains_nul(&value) {
        return Err(CursorError::Malformed);
    }
    let document: Document<S> = serde_json::from_value(value).map_err(|_| CursorError::Malformed)?;
    if document.v != FORMAT || document.list != S::LIST || !document.scope.fits(&document.after.key) {
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
    use crate::listing::{ListScope, SortField};
    use crate::pagination::SortOrder;
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
        assert_eq!(decode(&"A".repeat(5000), &scope()), Err(CursorError::Malformed));
    }

    /// A scope of another list with the same fields.
    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct OtherList(ListScope);

    impl CursorScope for OtherList {
        const LIST: &'static str = "other";

        fn fits(&self, key: &SortKey) -> bool {
            self.0.fits(key)
        }
    }

    #[test]
    fn a_cursor_of_another_list_is_malformed_even_with_an_equal_scope() {
        let cursor = encode(&scope(), &position());
        assert_eq!(decode(&cursor, &OtherList(scope())), Err(CursorError::Malformed));
    }
}
