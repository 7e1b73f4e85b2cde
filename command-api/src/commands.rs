//! The command side of users: load the stream, decide, append with the expected
//! version, and change the write-side account tables (credentials, sessions, the
//! email claim, the user's current authority) in the same transaction.
//! Version conflicts are retried here, so clients rarely see them.

use crate::accounts::{self, EMAIL_CLAIM};
use domain::user::{
    Email, Password, Role, UserCommand, UserError, UserEvent, UserName, UserState, decide, evolve,
};
use eventstore::{EventEnvelope, EventMetadata, EventStore, IdempotencyRecord, StoreError};
use uuid::Uuid;

/// How often a command is retried after losing a race for the stream version.
const MAX_ATTEMPTS: u32 = 20;

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// The decider refused it.
    #[error(transparent)]
    Domain(#[from] UserError),
    /// The email belongs to another account.
    #[error("email already registered")]
    EmailTaken,
    /// `If-Match` named another version than the current one.
    #[error("stale version; current is {0}")]
    Stale(i64),
    /// Writers kept colliding.
    #[error("too many concurrent changes")]
    Contention,
    /// A concurrent request with the same idempotency key committed first.
    #[error("idempotency key raced")]
    IdempotencyRaced,
    /// Storage failed.
    #[error(transparent)]
    Store(StoreError),
    /// Password hashing failed.
    #[error(transparent)]
    Password(#[from] auth::PasswordError),
}

impl From<StoreError> for CommandError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::AlreadyClaimed { .. } => CommandError::EmailTaken,
            StoreError::IdempotencyKeyTaken => CommandError::IdempotencyRaced,
            other => CommandError::Store(other),
        }
    }
}

impl From<sqlx::Error> for CommandError {
    fn from(error: sqlx::Error) -> Self {
        CommandError::Store(StoreError::Database(error))
    }
}

/// A user after a command.
#[derive(Debug, Clone)]
pub struct UserOutcome {
    /// User id.
    pub id: Uuid,
    /// State after the command.
    pub state: UserState,
    /// Stream version after the command.
    pub version: i64,
    /// Position of the last event appended, `None` when nothing changed.
    pub position: Option<i64>,
}

/// An idempotent answer to store with a command's events; `body` is filled in by the
/// caller's closure once the outcome is known, inside the same transaction.
pub struct PendingIdempotency<T = UserOutcome> {
    /// Scope, key, request hash, status and location; the body is replaced.
    pub record: IdempotencyRecord,
    /// Builds the `data` of the answer from the outcome.
    pub render: Box<dyn Fn(&T) -> serde_json::Value + Send + Sync>,
}

impl<T> PendingIdempotency<T> {
    /// The record to store for an outcome.
    pub fn complete(self, outcome: &T) -> IdempotencyRecord {
        let mut record = self.record;
        record.body = (self.render)(outcome);
        if let Some(version) = record.body.get("version").and_then(serde_json::Value::as_i64) {
            record.etag = Some(format!("\"{version}\""));
        }
        record
    }
}

/// Registration input, already validated.
pub struct Registration {
    /// Email.
    pub email: Email,
    /// Name.
    pub name: UserName,
    /// Password.
    pub password: Password,
    /// Role.
    pub role: Role,
}

/// The user command service.
#[derive(Clone)]
pub struct Users {
    store: EventStore,
    hasher: auth::PasswordHasher,
}

impl Users {
    /// A service over a store and a hasher.
    pub fn new(store: EventStore, hasher: auth::PasswordHasher) -> Self {
        Self { store, hasher }
    }

    /// The password hasher.
    pub fn hasher(&self) -> &auth::PasswordHasher {
        &self.hasher
    }

    /// Current state and version of a user.
    pub async fn load(&self, user_id: Uuid) -> Result<(UserState, i64), CommandError> {
        Ok(self
            .store
            .load_aggregate::<UserEvent, _>(user_id, UserState::New, evolve)
            .await?)
    }

    /// Registers a new user: email claim, `user.registered`, credentials and the
    /// idempotent answer commit together.
    pub async fn register(
        &self,
        input: Registration,
        metadata: &EventMetadata,
        idempotency: Option<PendingIdempotency>,
    ) -> Result<UserOutcome, CommandError> {
        let hash = self.hasher.hash(input.password.expose()).await?;
        let id = Uuid::now_v7();
        let command = UserCommand::Register {
            email: input.email.clone(),
            name: input.name,
            role: input.role,
        };
        let events = decide(&command, &UserState::New)?;
        let mut uow = self.store.begin().await?;
        uow.claim(EMAIL_CLAIM, input.email.as_str(), id).await?;
        let stored = uow.append(id, 0, &events, metadata).await?;
        accounts::set_password_hash(uow.connection(), id, &hash).await?;
        auth::authority::record_role(uow.connection(), id, input.role).await?;
        let outcome = outcome(id, UserState::New, 0, &events, &stored);
        if let Some(pending) = idempotency {
            uow.save_idempotent(&pending.complete(&outcome)).await?;
        }
        uow.commit().await?;
        Ok(outcome)
    }

    /// Runs a command on an existing user. `if_match` is the version the client saw;
    /// `new_password_hash` accompanies `ChangePassword`.
    pub async fn execute(
        &self,
        user_id: Uuid,
        command: UserCommand,
        if_match: Option<i64>,
        new_password_hash: Option<&str>,
        metadata: &EventMetadata,
    ) -> Result<UserOutcome, CommandError> {
        for attempt in 0..MAX_ATTEMPTS {
            if attempt > 0 {
                backoff(attempt).await;
            }
            let (state, version) = self.load(user_id).await?;
            if let Some(expected) = if_match
                && expected != version
                && matches!(state, UserState::Active { .. })
            {
                return Err(CommandError::Stale(version));
            }
            let events = decide(&command, &state)?;
            if events.is_empty() {
                return Ok(UserOutcome {
                    id: user_id,
                    state,
                    version,
                    position: None,
                });
            }
            let mut uow = self.store.begin().await?;
            let stored = match uow.append(user_id, version, &events, metadata).await {
                Ok(stored) => stored,
                Err(StoreError::VersionConflict { .. }) if if_match.is_some() => {
                    let (_, current) = self.load(user_id).await?;
                    return Err(CommandError::Stale(current));
                }
                Err(StoreError::VersionConflict { .. }) => continue,
                Err(other) => return Err(other.into()),
            };
            for event in &events {
                match event {
                    UserEvent::PasswordChanged => {
                        if let Some(hash) = new_password_hash {
                            accounts::set_password_hash(uow.connection(), user_id, hash).await?;
                        }
                        accounts::revoke_user_sessions(uow.connection(), user_id).await?;
                    }
                    UserEvent::RoleChanged { role, .. } => {
                        auth::authority::record_role(uow.connection(), user_id, *role).await?;
                    }
                    UserEvent::Deleted => {
                        auth::authority::remove(uow.connection(), user_id).await?;
                        accounts::delete_credentials(uow.connection(), user_id).await?;
                        accounts::revoke_user_sessions(uow.connection(), user_id).await?;
                        uow.release_claims(EMAIL_CLAIM, user_id).await?;
                    }
                    _ => {}
                }
            }
            uow.commit().await?;
            return Ok(outcome(user_id, state, version, &events, &stored));
        }
        Err(CommandError::Contention)
    }
}

fn outcome(
    id: Uuid,
    state: UserState,
    version: i64,
    events: &[UserEvent],
    stored: &[EventEnvelope],
) -> UserOutcome {
    let state = events.iter().fold(state, evolve);
    let last = stored.last();
    UserOutcome {
        id,
        state,
        version: last.map_or(version, |e| e.stream_version),
        position: last.map(|e| e.position),
    }
}

/// A short random pause so that colliding writers do not collide again in lockstep.
async fn backoff(attempt: u32) {
    let ceiling_ms = u128::from(2 * attempt.min(10));
    let jitter_ms = Uuid::new_v4().as_u128() % (ceiling_ms + 1);
    tokio::time::sleep(std::time::Duration::from_millis(jitter_ms as u64)).await;
}
