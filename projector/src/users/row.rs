//! One row of `users_view` and how an event changes it: a pure fold shared by the live
//! projection and the rebuild, so both produce the same table.

use crate::store;
use domain::DomainEvent;
use domain::user::UserEvent;
use eventstore::EventEnvelope;
pub use readmodels::users::{ROW_COLUMNS, UserRow};

/// The stream type this projection reads.
pub const STREAM_TYPE: &str = UserEvent::STREAM_TYPE;

/// Applies the next event of a user's stream (its version must be the row's + 1; the
/// caller checks). An event this code cannot read (unknown type, newer schema, malformed
/// payload) advances the version without changing any field and is logged: a later
/// `projector rebuild` with upgraded code picks it up.
pub fn evolve(state: Option<UserRow>, envelope: &EventEnvelope) -> Option<UserRow> {
    let event = UserEvent::from_stored(&envelope.event_type, envelope.schema_version, &envelope.data);
    if let Err(error) = &event {
        store::log_unreadable(envelope, error);
    }
    let Some(mut row) = state else {
        return match event {
            Ok(UserEvent::Registered { email, name, role }) => Some(UserRow {
                id: envelope.stream_id,
                email: Some(email.as_str().to_owned()),
                name: Some(name.as_str().to_owned()),
                role: role.as_str().to_owned(),
                version: envelope.stream_version,
                created_at: envelope.occurred_at,
                updated_at: envelope.occurred_at,
                deleted_at: None,
            }),
            Ok(
                UserEvent::Renamed { .. }
                | UserEvent::EmailChanged { .. }
                | UserEvent::RoleChanged { .. }
                | UserEvent::PasswordChanged {}
                | UserEvent::PasswordResetRequested {}
                | UserEvent::Deleted {},
            )
            | Err(_) => {
                store::log_before_creation(envelope);
                None
            }
        };
    };
    row.version = envelope.stream_version;
    row.updated_at = envelope.occurred_at;
    if row.deleted_at.is_some() {
        return Some(row);
    }
    match event {
        Ok(UserEvent::Registered { email, name, role }) => {
            row.email = Some(email.as_str().to_owned());
            row.name = Some(name.as_str().to_owned());
            row.role = role.as_str().to_owned();
        }
        Ok(UserEvent::Renamed { name }) => row.name = Some(name.as_str().to_owned()),
        Ok(UserEvent::EmailChanged { email, .. }) => row.email = Some(email.as_str().to_owned()),
        Ok(UserEvent::RoleChanged { role, .. }) => row.role = role.as_str().to_owned(),
        Ok(UserEvent::PasswordChanged {} | UserEvent::PasswordResetRequested {}) | Err(_) => {}
        Ok(UserEvent::Deleted {}) => {
            row.email = None;
            row.name = None;
            row.deleted_at = Some(envelope.occurred_at);
        }
    }
    Some(row)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::envelope;
    use serde_json::json;

    fn registered() -> EventEnvelope {
        envelope(
            1,
            "user.registered",
            json!({"email": "ada@example.com", "name": "Ada", "role": "user"}),
        )
    }

    #[test]
    fn registration_creates_a_live_row() {
        let row = evolve(None, &registered()).expect("a row");
        assert_eq!(row.email.as_deref(), Some("ada@example.com"));
        assert_eq!(row.version, 1);
        assert!(row.view().is_some());
    }

    #[test]
    fn deletion_erases_personal_data_and_later_events_cannot_restore_it() {
        let row = evolve(None, &registered());
        let row = evolve(row, &envelope(2, "user.deleted", json!({})));
        let row = evolve(row, &envelope(3, "user.renamed", json!({"name": "Eve"}))).expect("a row");
        assert_eq!(
            (row.email.as_deref(), row.name.as_deref(), row.version),
            (None, None, 3)
        );
        assert!(row.deleted_at.is_some());
        assert!(row.view().is_none());
    }

    #[test]
    fn unknown_events_advance_the_version_only() {
        let before = evolve(None, &registered()).expect("a row");
        let after = evolve(Some(before.clone()), &envelope(2, "user.nicknamed", json!({}))).expect("a row");
        assert_eq!(after.version, 2);
        assert_eq!(
            (after.email, after.name, after.role),
            (before.email, before.name, before.role)
        );
    }

    #[test]
    fn an_event_before_registration_creates_nothing() {
        assert!(evolve(None, &envelope(1, "user.renamed", json!({"name": "Eve"}))).is_none());
    }
}
