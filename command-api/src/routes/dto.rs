//! Request and response bodies of the command API, and their validation into domain values.

use crate::commands::UserOutcome;
use domain::user::{Email, Password, Role, UserName, UserState, ValueError};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;
use web::{ApiError, FieldError};

/// `POST /api/v1/auth/register`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    /// A valid address, at most 254 characters; unique, case-insensitively.
    #[schema(format = Email, max_length = 254)]
    pub email: String,
    /// 1 to 100 characters.
    #[schema(min_length = 1, max_length = 100)]
    pub name: String,
    /// 8 to 128 characters with at least one letter and one digit.
    #[schema(format = Password, min_length = 8, max_length = 128)]
    pub password: String,
}

/// `POST /api/v1/auth/login`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// Email.
    pub email: String,
    /// Password.
    pub password: String,
}

/// `POST /api/v1/auth/refresh` and `/logout`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RefreshRequest {
    /// The refresh token from login or the last refresh.
    pub refresh_token: String,
}

/// `PATCH /api/v1/users/{id}`: the fields to change, at least one.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUserRequest {
    /// New name, 1 to 100 characters.
    #[schema(min_length = 1, max_length = 100)]
    pub name: Option<String>,
    /// New email address, unique across accounts; the old address is told.
    #[schema(format = Email, max_length = 254)]
    pub email: Option<String>,
    /// The password now in use: required when users change their own email.
    #[serde(rename = "currentPassword")]
    pub current_password: Option<String>,
}

/// `PUT /api/v1/users/{id}`: the whole profile.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplaceUserRequest {
    /// Name, 1 to 100 characters.
    #[schema(min_length = 1, max_length = 100)]
    pub name: String,
    /// Email address, unique across accounts; when it changes, the old address is told.
    #[schema(format = Email, max_length = 254)]
    pub email: String,
    /// The password now in use: required when users change their own email.
    #[serde(rename = "currentPassword")]
    pub current_password: Option<String>,
}

/// `POST /api/v1/users` (admins): an account whose user sets the password through an
/// emailed link.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUserRequest {
    /// A valid address, at most 254 characters; unique, case-insensitively.
    #[schema(format = Email, max_length = 254)]
    pub email: String,
    /// 1 to 100 characters.
    #[schema(min_length = 1, max_length = 100)]
    pub name: String,
    /// `user` or `admin`.
    #[schema(pattern = "^(user|admin)$")]
    pub role: String,
}

/// `PUT /api/v1/users/{id}/role`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleRequest {
    /// `user` or `admin`.
    #[schema(pattern = "^(user|admin)$")]
    pub role: String,
}

/// `PUT /api/v1/users/{id}/password`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PasswordRequest {
    /// The password now in use.
    pub current_password: String,
    /// The new password (same rules as at registration).
    pub new_password: String,
}

/// A user as written, with the write's version and event position.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserResponse {
    /// User id.
    pub id: Uuid,
    /// Email (lower-cased).
    pub email: String,
    /// Display name.
    pub name: String,
    /// `user` or `admin`.
    pub role: String,
    /// Aggregate version after the write (also the `ETag`).
    pub version: i64,
    /// Global position of the last event written; `null` when nothing changed.
    pub position: Option<i64>,
}

/// A token pair.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TokenResponse {
    /// JWT (EdDSA) for `Authorization: Bearer`.
    pub access_token: String,
    /// Opaque token for `/auth/refresh`; single use.
    pub refresh_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    /// The user.
    pub user: UserResponse,
}

impl UserResponse {
    /// From a command outcome; `None` for a user that is not active.
    pub fn from_state(id: Uuid, state: &UserState, version: i64, position: Option<i64>) -> Option<Self> {
        match state {
            UserState::Active { email, name, role } => Some(Self {
                id,
                email: email.to_string(),
                name: name.to_string(),
                role: role.to_string(),
                version,
                position,
            }),
            _ => None,
        }
    }

    /// From a command outcome.
    pub fn from_outcome(outcome: &UserOutcome) -> Option<Self> {
        Self::from_state(outcome.id, &outcome.state, outcome.version, outcome.position)
    }
}

/// Collects field errors while parsing several values.
#[derive(Default)]
pub struct Fields(Vec<FieldError>);

impl Fields {
    /// Parses one field, remembering its error.
    pub fn parse<T>(&mut self, field: &str, result: Result<T, ValueError>) -> Option<T> {
        result.map_err(|e| self.0.push(FieldError::new(field, e.0))).ok()
    }

    /// All values, or 400 with every field at fault.
    pub fn finish<T>(self, values: Option<T>) -> Result<T, ApiError> {
        match values {
            Some(values) if self.0.is_empty() => Ok(values),
            _ => Err(ApiError::validation(self.0)),
        }
    }
}

impl RegisterRequest {
    /// Validates every field at once.
    pub fn validate(&self) -> Result<(Email, UserName, Password), ApiError> {
        let mut fields = Fields::default();
        let email = fields.parse("email", Email::parse(&self.email));
        let name = fields.parse("name", UserName::parse(&self.name));
        let password = fields.parse("password", Password::parse(&self.password));
        fields.finish(email.zip(name).zip(password).map(|((e, n), p)| (e, n, p)))
    }
}

impl RoleRequest {
    /// Validates the role.
    pub fn validate(&self) -> Result<Role, ApiError> {
        let mut fields = Fields::default();
        let role = fields.parse("role", Role::parse(&self.role));
        fields.finish(role)
    }
}
