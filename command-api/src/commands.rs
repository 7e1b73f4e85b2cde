//! The command side of users, through the engine's one command path: load, decide,
//! append with the expected version (conflicts retried by the engine, `If-Match`
//! answered 412), with the write-side account tables (credentials, sessions, the email
//! claim, the user's current authority) changed in the same unit of work.

use crate::accounts::{self, EMAIL_CLAIM};
use domain::Decider;
use domain::user::{
    Email, Password, Role, UserAggregate, UserCommand, UserError, UserEvent, UserName, UserState,
};
use eventstore::{
    CommandFailure, Commit, Engine, EventEnvelope, EventMetadata, Expect, IdempotencyRecord, StoreError,
};
use futures::FutureExt;
use std::sync::Arc;
use uuid::Uuid;

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

impl From<CommandFailure<UserError>> for CommandError {
    fn from(failure: CommandFailure<UserError>) -> Self {
        match failure {
            CommandFailure::Rejected(error) => CommandError::Domain(error),
            CommandFailure::Stale { current } => CommandError::Stale(current),
            CommandFailure::Contention => CommandError::Contention,
            CommandFailure::Store(error) => error.into(),
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

/// An idempotent answer to store with a command's events; `body` is rendered from the
/// outcome inside the same unit of work, once the appended positions are known.
pub struct PendingIdempotency<T = UserOutcome> {
    /// Scope, key, request hash, status and location; the body is replaced.
    pub record: IdempotencyRecord,
    /// Builds the `data` of the answer from the outcome.
    pub render: Arc<dyn Fn(&T) -> serde_json::Value + Send + Sync>,
}

impl<T> Clone for PendingIdempotency<T> {
    fn clone(&self) -> Self {
        Self {
            record: self.record.clone(),
            render: self.render.clone(),
        }
    }
}

impl<T> PendingIdempotency<T> {
    /// The record to store for an outcome.
    pub fn complete(&self, outcome: &T) -> IdempotencyRecord {
        let mut record = self.record.clone();
        record.body = (self.render)(outcome);
        if let Some(version) = record.body.get("version").and_then(serde_json::Value::as_i64) {
            record.etag = Some(format!("\"{version}\""));
        }
        record
    }
}

/// Something a command answers with, whose position is known once its events are appended.
pub trait Positioned: Clone + Send + Sync + 'static {
    /// The outcome with the position of the last appended event.
    fn at(self, envelopes: &[EventEnvelope]) -> Self;
}

impl Positioned for UserOutcome {
    fn at(mut self, envelopes: &[EventEnvelope]) -> Self {
        self.position = envelopes.last().map(|e| e.position).or(self.position);
        self
    }
}

/// The unit of work's idempotent answer for `outcome`, if the request carried a key.
pub fn answer<T: Positioned>(
    pending: Option<&PendingIdempotency<T>>,
    outcome: &T,
) -> Option<impl FnOnce(&[EventEnvelope]) -> IdempotencyRecord + Send + Sync + 'static> {
    let pending = pending?.clone();
    let outcome = outcome.clone();
    Some(move |envelopes: &[EventEnvelope]| pending.complete(&outcome.at(envelopes)))
}

/// Registration input, already validated.
pub struct Registration {
    /// Email.
    pub email: Email,
    /// Name.
    pub name: UserName,
    /// Password; `None` for an account an administrator creates, whose user sets it
    /// through an emailed link (`user.password_reset_requested` in the same unit).
    pub password: Option<Password>,
    /// Role.
    pub role: Role,
}

/// The user command service.
#[derive(Clone)]
pub struct Users {
    engine: Engine,
    hasher: auth::PasswordHasher,
}

impl Users {
    /// A service over the engine and a hasher.
    pub fn new(engine: Engine, hasher: auth::PasswordHasher) -> Self {
        Self { engine, hasher }
    }

    /// The password hasher.
    pub fn hasher(&self) -> &auth::PasswordHasher {
        &self.hasher
    }

    /// Current state and version of a user (from the engine's cache when it knows them).
    pub async fn load(&self, user_id: Uuid) -> Result<(UserState, i64), CommandError> {
        let loaded = self.engine.load::<UserAggregate>(user_id).await?;
        Ok((loaded.state, loaded.version))
    }

    /// Registers a new user: email claim, `user.registered`, credentials, authority and
    /// the idempotent answer commit together.
    pub async fn register(
        &self,
        input: Registration,
        metadata: &EventMetadata,
        idempotency: Option<PendingIdempotency>,
    ) -> Result<UserOutcome, CommandError> {
        let hash = match &input.password {
            Some(password) => Some(self.hasher.hash(password.expose()).await?),
            None => None,
        };
        let id = Uuid::now_v7();
        let command = UserCommand::Register {
            email: input.email.clone(),
            name: input.name,
            role: input.role,
        };
        let role = input.role;
        let (outcome, envelopes) = self
            .engine
            .execute::<UserAggregate, _, _>(id, Expect::Any, |loaded| {
                let mut events = UserAggregate::decide(&command, &loaded.state)?;
                if hash.is_none() {
                    events.push(UserEvent::PasswordResetRequested {});
                }
                let (change, state) = eventstore::change::<UserAggregate>(id, loaded, &events);
                let outcome = UserOutcome {
                    id,
                    state,
                    version: eventstore::version_after(loaded, &events),
                    position: None,
                };
                let mut commit = Commit::new(metadata.clone())
                    .claim(EMAIL_CLAIM, input.email.as_str(), id)
                    .change(change)
                    .hook(move |conn| auth::authority::record_role(conn, id, role).boxed())
                    .idempotent(answer(idempotency.as_ref(), &outcome));
                if let Some(hash) = hash.clone() {
                    commit = commit.hook(move |conn| {
                        async move { accounts::set_password_hash(conn, id, &hash).await }.boxed()
                    });
                }
                Ok((commit, outcome))
            })
            .await?;
        Ok(outcome.at(&envelopes))
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
        self.execute_all(user_id, &[command], if_match, new_password_hash, metadata)
            .await
    }

    /// Runs commands on an existing user in one unit of work, each decided on the state
    /// the ones before it leave (a `PUT` that renames and changes the email).
    pub async fn execute_all(
        &self,
        user_id: Uuid,
        commands: &[UserCommand],
        if_match: Option<i64>,
        new_password_hash: Option<&str>,
        metadata: &EventMetadata,
    ) -> Result<UserOutcome, CommandError> {
        let (outcome, envelopes) = self
            .engine
            .execute::<UserAggregate, _, _>(user_id, Expect::from(if_match), |loaded| {
                let mut events = Vec::new();
                let mut state = loaded.state.clone();
                for command in commands {
                    let decided = UserAggregate::decide(command, &state)?;
                    state = UserAggregate::fold(state, &decided);
                    events.extend(decided);
                }
                let (change, state) = eventstore::change::<UserAggregate>(user_id, loaded, &events);
                let mut commit = Commit::new(metadata.clone()).change(change);
                for event in &events {
                    commit = account_writes(commit, user_id, event, new_password_hash);
                }
                let outcome = UserOutcome {
                    id: user_id,
                    state,
                    version: eventstore::version_after(loaded, &events),
                    position: None,
                };
                Ok((commit, outcome))
            })
            .await?;
        Ok(outcome.at(&envelopes))
    }
}

/// The write-side tables an event changes in its own unit of work.
fn account_writes(commit: Commit, user_id: Uuid, event: &UserEvent, new_hash: Option<&str>) -> Commit {
    match event {
        UserEvent::PasswordChanged {} => {
            let commit = match new_hash.map(str::to_owned) {
                Some(hash) => commit.hook(move |conn| {
                    async move { accounts::set_password_hash(conn, user_id, &hash).await }.boxed()
                }),
                None => commit,
            };
            commit.hook(move |conn| {
                async move {
                    accounts::revoke_user_sessions(&mut *conn, user_id).await?;
                    accounts::retire_reset_tokens(conn, user_id).await
                }
                .boxed()
            })
        }
        // The old address is given up and the new one claimed in the same unit: two
        // accounts racing for one address get one 201/200 and one 409.
        // Links already sent to the old address stop working.
        UserEvent::EmailChanged { email, .. } => commit
            .release(EMAIL_CLAIM, user_id)
            .claim(EMAIL_CLAIM, email.as_str(), user_id)
            .hook(move |conn| accounts::retire_reset_tokens(conn, user_id).boxed()),
        UserEvent::RoleChanged { role, .. } => {
            let role = *role;
            commit.hook(move |conn| auth::authority::record_role(conn, user_id, role).boxed())
        }
        UserEvent::Deleted {} => commit
            .hook(move |conn| {
                async move {
                    auth::authority::remove(&mut *conn, user_id).await?;
                    accounts::delete_credentials(&mut *conn, user_id).await?;
                    accounts::revoke_user_sessions(&mut *conn, user_id).await?;
                    accounts::retire_reset_tokens(conn, user_id).await
                }
                .boxed()
            })
            .release(EMAIL_CLAIM, user_id),
        UserEvent::Registered { .. } | UserEvent::Renamed { .. } | UserEvent::PasswordResetRequested {} => {
            commit
        }
    }
}
