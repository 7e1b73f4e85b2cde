//! The user decider: which commands are allowed in which state, and what they cause.

use super::events::UserEvent;
use super::values::{Email, Role, UserName};

/// Everything the decider needs to know about one user.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum UserState {
    /// No event yet: the id is free.
    #[default]
    New,
    /// A live account.
    Active {
        /// Normalised email.
        email: Email,
        /// Display name.
        name: UserName,
        /// Current role.
        role: Role,
    },
    /// Deleted: no command applies any more.
    Deleted,
}

/// What a caller asks of a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserCommand {
    /// Create the account.
    Register {
        /// Normalised email.
        email: Email,
        /// Display name.
        name: UserName,
        /// Initial role.
        role: Role,
    },
    /// Change the display name.
    Rename {
        /// New name.
        name: UserName,
    },
    /// Change the email address (its uniqueness is the command API's claim).
    ChangeEmail {
        /// New address.
        email: Email,
    },
    /// Change the role.
    ChangeRole {
        /// New role.
        role: Role,
    },
    /// Record that the password changed (the hash itself is stored elsewhere).
    ChangePassword,
    /// Ask for a link to set a new password.
    RequestPasswordReset,
    /// Delete the account.
    Delete,
}

/// Why a command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserError {
    /// Register on an id that already has events.
    #[error("user already exists")]
    AlreadyExists,
    /// Any other command on a user that does not exist or was deleted.
    #[error("user not found")]
    NotFound,
}

/// Decides which events a command causes in a state. Commands that change nothing
/// (renaming to the current name) cause no event.
pub fn decide(command: &UserCommand, state: &UserState) -> Result<Vec<UserEvent>, UserError> {
    match (command, state) {
        (UserCommand::Register { email, name, role }, UserState::New) => Ok(vec![UserEvent::Registered {
            email: email.clone(),
            name: name.clone(),
            role: *role,
        }]),
        (UserCommand::Register { .. }, _) => Err(UserError::AlreadyExists),
        (_, UserState::New | UserState::Deleted) => Err(UserError::NotFound),
        (UserCommand::Rename { name }, UserState::Active { name: current, .. }) => {
            if name == current {
                Ok(vec![])
            } else {
                Ok(vec![UserEvent::Renamed { name: name.clone() }])
            }
        }
        (UserCommand::ChangeEmail { email }, UserState::Active { email: current, .. }) => {
            if email == current {
                Ok(vec![])
            } else {
                Ok(vec![UserEvent::EmailChanged {
                    email: email.clone(),
                    previous_email: current.clone(),
                }])
            }
        }
        (UserCommand::ChangeRole { role }, UserState::Active { role: current, .. }) => {
            if role == current {
                Ok(vec![])
            } else {
                Ok(vec![UserEvent::RoleChanged {
                    role: *role,
                    previous_role: *current,
                }])
            }
        }
        (UserCommand::ChangePassword, UserState::Active { .. }) => Ok(vec![UserEvent::PasswordChanged {}]),
        (UserCommand::RequestPasswordReset, UserState::Active { .. }) => {
            Ok(vec![UserEvent::PasswordResetRequested {}])
        }
        (UserCommand::Delete, UserState::Active { .. }) => Ok(vec![UserEvent::Deleted {}]),
    }
}

/// Applies one event to a state.
pub fn evolve(state: UserState, event: &UserEvent) -> UserState {
    match (state, event) {
        (_, UserEvent::Registered { email, name, role }) => UserState::Active {
            email: email.clone(),
            name: name.clone(),
            role: *role,
        },
        (_, UserEvent::Deleted {}) => UserState::Deleted,
        (UserState::Active { email, role, .. }, UserEvent::Renamed { name }) => UserState::Active {
            email,
            name: name.clone(),
            role,
        },
        (UserState::Active { name, role, .. }, UserEvent::EmailChanged { email, .. }) => UserState::Active {
            email: email.clone(),
            name,
            role,
        },
        (UserState::Active { email, name, .. }, UserEvent::RoleChanged { role, .. }) => UserState::Active {
            email,
            name,
            role: *role,
        },
        // Password changes and reset requests leave the decider's state as it is; events
        // on an account that does not exist (or no longer does) change nothing.
        (
            state @ UserState::Active { .. },
            UserEvent::PasswordChanged {} | UserEvent::PasswordResetRequested {},
        )
        | (
            state @ (UserState::New | UserState::Deleted),
            UserEvent::Renamed { .. }
            | UserEvent::EmailChanged { .. }
            | UserEvent::RoleChanged { .. }
            | UserEvent::PasswordChanged {}
            | UserEvent::PasswordResetRequested {},
        ) => state,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn email() -> Email {
        Email::parse("ada@example.com").expect("valid")
    }
    fn name(n: &str) -> UserName {
        UserName::parse(n).expect("valid")
    }
    fn registered() -> UserEvent {
        UserEvent::Registered {
            email: email(),
            name: name("Ada"),
            role: Role::User,
        }
    }

    /// given(events).when(command).then(expected)
    fn given(events: &[UserEvent]) -> UserState {
        events.iter().fold(UserState::New, evolve)
    }

    fn then(events: &[UserEvent], command: UserCommand, expected: Result<Vec<UserEvent>, UserError>) {
        assert_eq!(decide(&command, &given(events)), expected);
    }

    #[test]
    fn registering_a_new_user_emits_registered() {
        then(
            &[],
            UserCommand::Register {
                email: email(),
                name: name("Ada"),
                role: Role::User,
            },
            Ok(vec![registered()]),
        );
    }

    #[test]
    fn registering_an_existing_id_is_refused() {
        then(
            &[registered()],
            UserCommand::Register {
                email: email(),
                name: name("Ada"),
                role: Role::User,
            },
            Err(UserError::AlreadyExists),
        );
    }

    #[test]
    fn renaming_emits_renamed_and_renaming_to_the_same_name_emits_nothing() {
        then(
            &[registered()],
            UserCommand::Rename { name: name("Grace") },
            Ok(vec![UserEvent::Renamed { name: name("Grace") }]),
        );
        then(
            &[registered()],
            UserCommand::Rename { name: name("Ada") },
            Ok(vec![]),
        );
    }

    #[test]
    fn changing_role_records_the_previous_role() {
        then(
            &[registered()],
            UserCommand::ChangeRole { role: Role::Admin },
            Ok(vec![UserEvent::RoleChanged {
                role: Role::Admin,
                previous_role: Role::User,
            }]),
        );
        then(
            &[registered()],
            UserCommand::ChangeRole { role: Role::User },
            Ok(vec![]),
        );
    }

    #[test]
    fn an_email_change_names_both_addresses_and_the_same_address_changes_nothing() {
        let new = Email::parse("ada@lovelace.org").expect("valid");
        then(
            &[registered()],
            UserCommand::ChangeEmail { email: new.clone() },
            Ok(vec![UserEvent::EmailChanged {
                email: new.clone(),
                previous_email: email(),
            }]),
        );
        then(
            &[registered()],
            UserCommand::ChangeEmail { email: email() },
            Ok(vec![]),
        );
        let changed = given(&[
            registered(),
            UserEvent::EmailChanged {
                email: new.clone(),
                previous_email: email(),
            },
        ]);
        assert!(matches!(changed, UserState::Active { email, .. } if email == new));
    }

    #[test]
    fn a_reset_request_is_recorded_and_changes_nothing_else() {
        then(
            &[registered()],
            UserCommand::RequestPasswordReset,
            Ok(vec![UserEvent::PasswordResetRequested {}]),
        );
        let before = given(&[registered()]);
        assert_eq!(
            given(&[registered(), UserEvent::PasswordResetRequested {}]),
            before
        );
    }

    #[test]
    fn changing_password_emits_password_changed() {
        then(
            &[registered()],
            UserCommand::ChangePassword,
            Ok(vec![UserEvent::PasswordChanged {}]),
        );
    }

    #[test]
    fn deleting_emits_deleted_once() {
        then(
            &[registered()],
            UserCommand::Delete,
            Ok(vec![UserEvent::Deleted {}]),
        );
        then(
            &[registered(), UserEvent::Deleted {}],
            UserCommand::Delete,
            Err(UserError::NotFound),
        );
    }

    #[test]
    fn commands_on_unknown_or_deleted_users_are_not_found() {
        for command in [
            UserCommand::Rename { name: name("X") },
            UserCommand::ChangeRole { role: Role::Admin },
            UserCommand::ChangeEmail { email: email() },
            UserCommand::ChangePassword,
            UserCommand::RequestPasswordReset,
            UserCommand::Delete,
        ] {
            then(&[], command.clone(), Err(UserError::NotFound));
            then(
                &[registered(), UserEvent::Deleted {}],
                command,
                Err(UserError::NotFound),
            );
        }
    }

    #[test]
    fn evolve_folds_profile_changes() {
        let state = given(&[
            registered(),
            UserEvent::Renamed { name: name("Grace") },
            UserEvent::RoleChanged {
                role: Role::Admin,
                previous_role: Role::User,
            },
            UserEvent::PasswordChanged {},
        ]);
        assert_eq!(
            state,
            UserState::Active {
                email: email(),
                name: name("Grace"),
                role: Role::Admin
            }
        );
    }
}
