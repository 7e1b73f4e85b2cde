//! The user events: the public contract that subscribers rely on. Each type has a JSON
//! Schema in `schemas/events/`; a change of shape is a new schema version, never an edit.

use super::values::{Email, Role, UserName};

crate::events! {
    /// Something that happened to a user.
    pub enum UserEvent in "user", upcast = crate::event::current_only {
        /// `user.registered` v1: an account was created.
        Registered = "user.registered" version 1 {
            /// Normalised email address.
            email: Email,
            /// Display name.
            name: UserName,
            /// Initial role.
            role: Role,
        },
        /// `user.renamed` v1: the display name changed.
        Renamed = "user.renamed" version 1 {
            /// The new name.
            name: UserName,
        },
        /// `user.email_changed` v1: the account's email address changed; the old address
        /// is told.
        EmailChanged = "user.email_changed" version 1 {
            /// The new normalised address.
            email: Email,
            /// The address before the change.
            previous_email: Email,
        },
        /// `user.role_changed` v1: an administrator changed the role.
        RoleChanged = "user.role_changed" version 1 {
            /// The new role.
            role: Role,
            /// The role before the change.
            previous_role: Role,
        },
        /// `user.password_changed` v1: the password changed (the hash is never in an event).
        PasswordChanged = "user.password_changed" version 1 {},
        /// `user.password_reset_requested` v1: someone asked for a link to set a new
        /// password; the workers email one to the account's address. The link's token is
        /// never in an event.
        PasswordResetRequested = "user.password_reset_requested" version 1 {},
        /// `user.deleted` v1: the account was deleted; its personal data must be erased
        /// from read models.
        Deleted = "user.deleted" version 1 {},
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{DomainEvent, EventDecodeError};
    use serde_json::json;

    fn samples() -> Vec<UserEvent> {
        vec![
            UserEvent::Registered {
                email: Email::parse("ada@example.com").expect("valid"),
                name: UserName::parse("Ada").expect("valid"),
                role: Role::User,
            },
            UserEvent::Renamed {
                name: UserName::parse("Ada L.").expect("valid"),
            },
            UserEvent::RoleChanged {
                role: Role::Admin,
                previous_role: Role::User,
            },
            UserEvent::EmailChanged {
                email: Email::parse("ada@lovelace.org").expect("valid"),
                previous_email: Email::parse("ada@example.com").expect("valid"),
            },
            UserEvent::PasswordChanged {},
            UserEvent::PasswordResetRequested {},
            UserEvent::Deleted {},
        ]
    }

    #[test]
    fn every_event_round_trips_through_its_stored_form() {
        for event in samples() {
            let data = event.to_data();
            let back = UserEvent::from_stored(event.event_type(), event.schema_version(), &data);
            assert_eq!(back, Ok(event));
        }
    }

    #[test]
    fn every_event_type_is_listed_with_its_version() {
        for event in samples() {
            assert!(UserEvent::TYPES.contains(&(event.event_type(), event.schema_version())));
        }
    }

    #[test]
    fn registered_payload_is_camel_case_and_has_no_secret() {
        let data = samples()[0].to_data();
        assert_eq!(
            data,
            json!({"email": "ada@example.com", "name": "Ada", "role": "user"})
        );
    }

    #[test]
    fn unknown_versions_and_types_are_refused() {
        assert!(matches!(
            UserEvent::from_stored("user.renamed", 9, &json!({"name": "x"})),
            Err(EventDecodeError::UnsupportedVersion { .. })
        ));
        assert!(matches!(
            UserEvent::from_stored("user.exploded", 1, &json!({})),
            Err(EventDecodeError::UnknownType(_))
        ));
        assert!(matches!(
            UserEvent::from_stored("user.renamed", 1, &json!({"nom": "x"})),
            Err(EventDecodeError::Malformed { .. })
        ));
    }
}
