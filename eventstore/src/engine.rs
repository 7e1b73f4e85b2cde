//! The engine: one command path for every aggregate.
//!
//! load → decide → append with the expected version, through the group-commit writer:
//!
//! * **load** reads the aggregate cache first: the state and version a stream had after
//!   this process last loaded or wrote it. The cache is never trusted blindly: every
//!   append names the version its decision was made on, so a state that another replica
//!   moved on makes the append conflict, and the command runs again on a fresh load.
//! * **one conflict policy**: a command sent with `If-Match` ([`Expect::Version`]) that
//!   names another version than the stream's is refused with [`CommandFailure::Stale`]
//!   (412), also when it loses the race at append time; any other command that loses a
//!   race is decided again on the fresh state, a few times with backoff, and answered
//!   [`CommandFailure::Contention`] (409) if it keeps losing.
//! * units of work over several streams (an order and its products) build one
//!   [`Commit`] with a change per stream and go through [`Engine::commit`] and
//!   [`Attempts`], the same policy without a second style.

use crate::writer::{GroupWriter, SharedState};
use crate::{Commit, EventEnvelope, EventStore, StoreError};
use domain::{Decider, DomainEvent};
use quick_cache::sync::Cache;
use runtime::backoff::{Backoff, Policy};
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// Streams whose latest state the engine keeps in memory (a few hundred bytes each).
pub const CACHE_ENTRIES: usize = 100_000;
/// Times a command without `If-Match` is decided again after losing a race.
pub const MAX_ATTEMPTS: u32 = 20;
/// Waits between those attempts.
pub const RETRY: Policy = Policy::new(Duration::from_millis(1), Duration::from_millis(50));

#[derive(Clone)]
struct Cached {
    stream_type: &'static str,
    version: i64,
    state: SharedState,
}

/// A stream's state and version as a decider sees them (`default()`: a new stream).
#[derive(Debug, Clone, Default)]
pub struct Loaded<S> {
    /// The folded state.
    pub state: S,
    /// The stream version it was folded up to (0: no event yet).
    pub version: i64,
    cached: bool,
}

/// What version a command expects its stream at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Whatever it is now (conflicts are retried).
    Any,
    /// Exactly this one (`If-Match`); anything else is [`CommandFailure::Stale`].
    Version(i64),
}

impl From<Option<i64>> for Expect {
    fn from(if_match: Option<i64>) -> Self {
        if_match.map_or(Expect::Any, Expect::Version)
    }
}

/// Why a command did not commit.
#[derive(Debug, thiserror::Error)]
pub enum CommandFailure<E> {
    /// The decider (or the caller's plan) refused it.
    #[error("refused")]
    Rejected(E),
    /// `If-Match` named another version than the current one.
    #[error("stale version; current is {current}")]
    Stale {
        /// The stream's version now.
        current: i64,
    },
    /// It kept losing races for its streams.
    #[error("too many concurrent changes")]
    Contention,
    /// Storage failed, or a claim or an idempotency key was taken.
    #[error(transparent)]
    Store(StoreError),
}

/// The engine over one event store. Cheap to clone; start it inside the Tokio runtime
/// (it spawns the writer tasks).
#[derive(Clone)]
pub struct Engine {
    store: EventStore,
    writer: GroupWriter,
    cache: Arc<Cache<Uuid, Cached>>,
}

impl Engine {
    /// An engine writing through `store`.
    pub fn new(store: EventStore) -> Self {
        let writer = GroupWriter::start(store.pool().clone(), store.appended_signal());
        Self {
            store,
            writer,
            cache: Arc::new(Cache::new(CACHE_ENTRIES)),
        }
    }

    /// The event store underneath.
    pub fn store(&self) -> &EventStore {
        &self.store
    }

    /// A stream's state, from the cache when this process knows it.
    pub async fn load<D: Decider>(&self, id: Uuid) -> Result<Loaded<D::State>, StoreError> {
        if let Some(cached) = self.cache.get(&id)
            && cached.stream_type == D::stream_type()
            && let Some(state) = cached.state.downcast_ref::<D::State>()
        {
            return Ok(Loaded {
                state: state.clone(),
                version: cached.version,
                cached: true,
            });
        }
        self.load_fresh::<D>(id).await
    }

    /// A stream's state folded from the store, remembered for the next load.
    pub async fn load_fresh<D: Decider>(&self, id: Uuid) -> Result<Loaded<D::State>, StoreError> {
        let (state, version) = self
            .store
            .load_aggregate::<D::Event, _>(id, D::State::default(), D::evolve)
            .await?;
        self.remember::<D>(id, state.clone(), version);
        Ok(Loaded {
            state,
            version,
            cached: false,
        })
    }

    fn remember<D: Decider>(&self, id: Uuid, state: D::State, version: i64) {
        self.cache.insert(
            id,
            Cached {
                stream_type: D::stream_type(),
                version,
                state: Arc::new(state),
            },
        );
    }

    /// Commits one unit of work with whatever else is being written now. On success the
    /// states it carries are remembered; a stream that lost a race is forgotten, so the
    /// next load reads it fresh.
    pub async fn commit(&self, commit: Commit) -> Result<Vec<EventEnvelope>, StoreError> {
        let streams: Vec<Uuid> = commit.changes.iter().map(|c| c.stream_id).collect();
        match self.writer.commit(commit).await {
            Ok(written) => {
                for (id, stream_type, version, state) in written.states {
                    self.cache.insert(
                        id,
                        Cached {
                            stream_type,
                            version,
                            state,
                        },
                    );
                }
                crate::consistency::record(&written.envelopes);
                Ok(written.envelopes)
            }
            Err(error) => {
                if let StoreError::VersionConflict { stream_id, .. } = &error {
                    self.cache.remove(stream_id);
                } else {
                    // The outcome may be unknown (a lost commit answer): read them fresh.
                    for id in streams {
                        self.cache.remove(&id);
                    }
                }
                Err(error)
            }
        }
    }

    /// The retry policy for a unit of work over several streams.
    pub fn attempts(&self) -> Attempts {
        Attempts::new()
    }

    /// Runs one command on one stream: load, check `expect`, `plan` (which calls the
    /// decider and says what to commit with its events, and what to answer), commit.
    /// A plan whose commit has nothing to write answers without a transaction.
    pub async fn execute<D, T, E>(
        &self,
        id: Uuid,
        expect: Expect,
        mut plan: impl FnMut(&Loaded<D::State>) -> Result<(Commit, T), E>,
    ) -> Result<(T, Vec<EventEnvelope>), CommandFailure<E>>
    where
        D: Decider,
    {
        let mut attempts = self.attempts();
        let mut fresh = false;
        loop {
            let mut loaded = if fresh {
                self.load_fresh::<D>(id).await
            } else {
                self.load::<D>(id).await
            }
            .map_err(CommandFailure::Store)?;
            if let Expect::Version(expected) = expect
                && expected != loaded.version
            {
                if loaded.cached {
                    // The cache may lag behind another replica's writes: ask the store.
                    loaded = self.load_fresh::<D>(id).await.map_err(CommandFailure::Store)?;
                }
                if expected != loaded.version && D::is_live(&loaded.state) {
                    return Err(CommandFailure::Stale {
                        current: loaded.version,
                    });
                }
            }
            let planned = plan(&loaded);
            // A refusal, or a decision that nothing changes, appends nothing, so no
            // version check would catch a cached state that lags: those are only
            // answered from the store's state.
            let unchecked = match &planned {
                Err(_) => true,
                Ok((commit, _)) => commit.changes.is_empty(),
            };
            if unchecked && loaded.cached {
                fresh = true;
                continue;
            }
            let (commit, output) = planned.map_err(CommandFailure::Rejected)?;
            if commit.is_empty() {
                return Ok((output, Vec::new()));
            }
            match self.commit(commit).await {
                Ok(envelopes) => return Ok((output, envelopes)),
                Err(StoreError::VersionConflict { stream_id, .. })
                    if stream_id == id && matches!(expect, Expect::Version(_)) =>
                {
                    let current = self.load_fresh::<D>(id).await.map_err(CommandFailure::Store)?;
                    if Expect::Version(current.version) != expect {
                        return Err(CommandFailure::Stale {
                            current: current.version,
                        });
                    }
                    // The stream is still where the client saw it: the race was lost to a
                    // unit that did not commit. Decide again.
                    if !attempts.again().await {
                        return Err(CommandFailure::Contention);
                    }
                    fresh = true;
                }
                Err(error) if error.is_retryable() => {
                    if !attempts.again().await {
                        return Err(CommandFailure::Contention);
                    }
                    fresh = true;
                }
                Err(error) => return Err(CommandFailure::Store(error)),
            }
        }
    }
}

/// Counts the tries of one unit of work and waits between them (the engine's policy:
/// [`MAX_ATTEMPTS`] tries, [`RETRY`] backoff).
#[derive(Debug)]
pub struct Attempts {
    made: u32,
    backoff: Backoff,
}

impl Attempts {
    fn new() -> Self {
        Self {
            made: 1,
            backoff: RETRY.start(),
        }
    }

    /// After a lost race: waits and answers `true` when another try is allowed.
    pub async fn again(&mut self) -> bool {
        if self.made >= MAX_ATTEMPTS {
            return false;
        }
        self.made += 1;
        tokio::time::sleep(self.backoff.next_delay()).await;
        true
    }

    /// Whether this is a retry (loads should then bypass the cache).
    pub fn retrying(&self) -> bool {
        self.made > 1
    }
}

/// Encodes a decider's events for one stream and remembers the state after them.
pub fn change<D: Decider>(
    id: Uuid,
    loaded: &Loaded<D::State>,
    events: &[D::Event],
) -> (crate::StreamChange, D::State) {
    let after = D::fold(loaded.state.clone(), events);
    let change = crate::StreamChange::of(id, loaded.version, events).remembering(after.clone());
    (change, after)
}

/// The version a stream is at after appending `events` to `loaded`.
pub fn version_after<S, E: DomainEvent>(loaded: &Loaded<S>, events: &[E]) -> i64 {
    loaded.version + events.len() as i64
}
