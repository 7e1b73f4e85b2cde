//! The user events: the public contract that subscribers rely on. Each type has a JSON
//! Schema in `schemas/events/`; a change of shape is a new schema version, never an edit.

use super::values::{Email, Role, UserName};
use crate::event::{DomainEvent, EventDecodeError};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use serde_json::{Value, json};

/// Something that happened to a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserEvent {
    /// `user.registered` v1: an account was created.
    Registered {
        /// Normalised email address.
        email: Email,
        /// Display name.
        name: UserName,
        /// Initial role.
        role: Role,
    },
    /// `user.renamed` v1: the display name changed.
    Renamed {
        /// The new name.
        name: UserName,
    },
    /// `user.role_changed` v1: an administrator changed the role.
    RoleChanged {
        /// The new role.
        role: Role,
        /// The role before the change.
        previous_role: Role,
    },
    /// `user.password_changed` v1: the password changed (the hash is never in an event).
    PasswordChanged,
    /// `user.deleted` v1: the account was deleted; its personal data must be erased
    /// from read models.
    Deleted,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RegisteredV1 {
    email: Email,
    name: UserName,
    role: Role,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RenamedV1 {
    name: UserName,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RoleChangedV1 {
    role: Role,
    previous_role: Role,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Empty {}

fn read<T: DeserializeOwned>(event_type: &str, data: &Value) -> Result<T, EventDecodeError> {
    T::deserialize(data).map_err(|e| EventDecodeError::Malformed {
        event_type: event_type.to_owned(),
        reason: e.to_string(),
    })
}

impl UserEvent {
    /// Every event type of the user stream with its current schema version.
    pub const TYPES: [(&'static str, i32); 5] = [
        ("user.registered", 1),
        ("user.renamed", 1),
        ("user.role_changed", 1),
        ("user.password_changed", 1),
        ("user.deleted", 1),
    ];
}

impl DomainEvent for UserEvent {
    const STREAM_TYPE: &'static str = "user";

    fn event_type(&self) -> &'static str {
        match self {
            UserEvent::Registered { .. } => "user.registered",
            UserEvent::Renamed { .. } => "user.renamed",
            UserEvent::RoleChanged { .. } => "user.role_changed",
            UserEvent::PasswordChanged => "user.password_changed",
            UserEvent::Deleted => "user.deleted",
        }
    }

    fn schema_version(&self) -> i32 {
        1
    }

    fn to_data(&self) -> Value {
        match self {
            UserEvent::Registered { email, name, role } => json!(RegisteredV1 {
                email: email.clone(),
                name: name.clone(),
                role: *role,
            }),
            UserEvent::Renamed { name } => json!(RenamedV1 { name: name.clone() }),
            UserEvent::RoleChanged { role, previous_role } => json!(RoleChangedV1 {
                role: *role,
                previous_role: *previous_role,
            }),
            UserEvent::PasswordChanged | UserEvent::Deleted => json!({}),
        }
    }

    fn from_stored(event_type: &str, schema_version: i32, data: &Value) -> Result<Self, EventDecodeError> {
        if schema_version != 1 {
            return Err(EventDecodeError::UnsupportedVersion {
                event_type: event_type.to_owned(),
                version: schema_version,
            });
        }
        Ok(match event_type {
            "user.registered" => {
                let v: RegisteredV1 = read(event_type, data)?;
                UserEvent::Registered {
                    email: v.email,
                    name: v.name,
                    role: v.role,
                }
            }
            "user.renamed" => UserEvent::Renamed {
                name: read::<RenamedV1>(event_type, data)?.name,
            },
            "user.role_changed" => {
                let v: RoleChangedV1 = read(event_type, data)?;
                UserEvent::RoleChanged {
                    role: v.role,
                    previous_role: v.previous_role,
                }
            }
            "user.password_changed" => {
                read::<Empty>(event_type, data)?;
                UserEvent::PasswordChanged
            }
            "user.deleted" => {
                read::<Empty>(event_type, data)?;
                UserEvent::Deleted
            }
            other => return Err(EventDecodeError::UnknownType(other.to_owned())),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
            UserEvent::PasswordChanged,
            UserEvent::Deleted,
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
