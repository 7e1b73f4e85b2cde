//! How command and session failures are answered.

use crate::commands::CommandError;
use crate::sessions::SessionError;
use domain::user::UserError;
use web::{ApiError, FieldError};

impl From<CommandError> for ApiError {
    fn from(error: CommandError) -> Self {
        match error {
            CommandError::Domain(UserError::NotFound) => ApiError::not_found("user"),
            CommandError::Domain(UserError::AlreadyExists) => ApiError::conflict("user already exists"),
            CommandError::EmailTaken => ApiError::conflict("this email is already registered")
                .with_details(vec![FieldError::new("email", "is already registered")]),
            CommandError::Stale(current) => ApiError::precondition_failed(current),
            CommandError::Contention => ApiError::version_conflict(),
            other => ApiError::internal(other),
        }
    }
}

impl From<SessionError> for ApiError {
    fn from(error: SessionError) -> Self {
        match error {
            SessionError::InvalidCredentials => ApiError::unauthorized("invalid email or password"),
            SessionError::InvalidToken => ApiError::unauthorized("invalid or expired refresh token"),
            SessionError::Internal(error) => ApiError::internal(error),
        }
    }
}
